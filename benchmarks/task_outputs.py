"""Golden outputs of the six fine-tuning tasks, through the command line only, to prove that a
rewrite of the task code leaves what they produce unchanged.

    OMP_NUM_THREADS=1 python benchmarks/task_outputs.py OUT_DIR [--tasks qa,classify,relations,ner,summarize,coref]
    python benchmarks/task_outputs.py --compare A/digest.json B/digest.json

The first builds one tiny random BERT encoder (plain transformers, fixed seed, the committed
``tests/data/tiny_wordpiece`` vocabulary), then for each task runs ``spanbert finetune`` (a few
fp32 steps, fixed seed, with ``--dev``), ``spanbert evaluate`` and ``spanbert predict`` as
subprocesses of this Python (``python -m spanbert``: put the source tree to test first on
PYTHONPATH), on the committed samples under ``tests/data``. Everything lands in OUT_DIR/TASK/,
and OUT_DIR/digest.json holds, per task and file, the sha256 of a normalised content (timings,
dates, versions and absolute paths dropped, floats rounded to 6 significant digits; per tensor
for model.safetensors) and that content itself (the metrics files also under ``metrics``). It
never imports spanbert: the CLI commands and options are the interface under test. Left out:
the model cards (README.md name module paths), the finetune/evaluate stdout (prose with
timings; their numbers are in the files), stderr, checkpoints and the inputs.
``--compare`` prints ``same`` or ``DIFFERENT`` (with the first differing key) per task and
file and exits 1 on any difference. A full run takes about 3.5 minutes on one thread.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
TASKS = ("qa", "classify", "relations", "ner", "summarize", "coref")
# the encoder: the size of the tests' tiny models (tests/test_coref_cli.py)
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
COMMON = ["--seed", "0", "--precision", "no", "--no-progress"]  # dropout: the checkpoint's 0.1
# keys (any depth, not in tokenizer.json: its vocabulary is a dict) that hold timings, dates or versions
VOLATILE = re.compile(r"seconds$|^elapsed|_per_s$|^(date|timestamp|version|versions)$|^(transformers|torch|python|tokenizers|"
                      r"datasets|spanbert)_version$")
Step = tuple[str, list[str]]  # (name, CLI arguments after `python -m spanbert`)


def build_encoder(out: Path) -> None:
    """A tiny random BERT (with pooler) and the committed tiny WordPiece vocabulary, with plain transformers."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel
    from transformers.utils import logging

    logging.disable_progress_bar()

    tokenizer = AutoTokenizer.from_pretrained(DATA / "tiny_wordpiece")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), **TINY)).save_pretrained(out)
    tokenizer.save_pretrained(out)


def qa_steps(enc: Path, d: Path) -> list[Step]:
    """SQuAD 2.0 (the null threshold is fitted on dev): the 40 committed cs224n questions."""
    data = str(DATA / "squad" / "cs224n_dev_v2_sample.json")
    small = ["--max-seq-length", "128", "--max-question-tokens", "32", "--window-overlap", "32"]
    context = json.loads(Path(data).read_text(encoding="utf-8"))["data"][0]["paragraphs"][0]["context"]  # trained on
    return [("finetune", ["finetune", "qa", "-m", str(enc), "--train", data, "--dev", data, "-o", str(d / "model"),
                          "--max-steps", "100", "--batch-size", "8", "--lr", "3e-3", "--eval-every", "50", *small, *COMMON]),
            ("evaluate", ["evaluate", "qa", "-m", str(d / "model"), "--data", data, "-o", str(d / "eval"), "--fit-threshold",
                          "--precision", "no", "--no-progress"]),
            ("predict", ["predict", "qa", "-m", str(d / "model"), "--context", context, "-q", "In what country is Normandy located?",
                         "-q", "Who was the Norse leader?", "-q", "What is France a region of?", "--top-k", "3", "--json", "--precision", "no"])]


def classify_steps(enc: Path, d: Path) -> list[Step]:
    """The 60 committed SST-2 sentences; predict a short and a long (several windows) text."""
    data = str(DATA / "classify" / "sst2_dev_sample.tsv")
    texts = d / "texts.txt"
    texts.write_text("a gorgeous , witty , seductive movie . \n" + "the story is bogus and its characters are paper thin . " * 30
                     + "\n", encoding="utf-8")
    return [("finetune", ["finetune", "classify", "-m", str(enc), "--train", data, "--dev", data, "-o", str(d / "model"),
                          "--max-steps", "60", "--batch-size", "20", "--lr", "1e-2", "--max-seq-length", "64",
                          "--window-overlap", "8", "--eval-every", "30", *COMMON]),
            ("evaluate", ["evaluate", "classify", "-m", str(d / "model"), "--data", data, "-o", str(d / "eval"),
                          "--precision", "no", "--no-progress"]),
            ("predict", ["predict", "classify", "-m", str(d / "model"), "--input", str(texts), "--json", "--precision", "no"])]


def relations_steps(enc: Path, d: Path) -> list[Step]:
    """The 24 committed SemEval-2010 Task 8 training sentences (the test sample has unseen labels)."""
    data = str(DATA / "relations" / "semeval_train_sample.txt")
    return [("finetune", ["finetune", "relations", "-m", str(enc), "--train", data, "--dev", data, "-o", str(d / "model"),
                          "--max-steps", "60", "--batch-size", "8", "--lr", "3e-3", "--eval-every", "30", *COMMON]),
            ("evaluate", ["evaluate", "relations", "-m", str(d / "model"), "--data", data, "-o", str(d / "eval"),
                          "--precision", "no", "--no-progress"]),
            ("predict", ["predict", "relations", "-m", str(d / "model"), "--json", "--top-k", "3", "--precision", "no",
                         "-t", "The <e1>author</e1> of a keygen uses a <e2>disassembler</e2> to look at the raw assembly code.",
                         "-t", "The <e1>student</e1> <e2>association</e2> is the voice of the undergraduate student population."])]


def ner_steps(enc: Path, d: Path) -> list[Step]:
    """The 50 committed WNUT-17 training sentences (also dev and evaluation: the tiny model finds nothing in others)."""
    train = str(DATA / "ner" / "wnut17_train_sample.conll")
    return [("finetune", ["finetune", "ner", "-m", str(enc), "--train", train, "--dev", train, "-o", str(d / "model"),
                          "--max-steps", "100", "--batch-size", "10", "--lr", "3e-3", "--max-seq-length", "64",
                          "--eval-every", "50", *COMMON]),
            ("evaluate", ["evaluate", "ner", "-m", str(d / "model"), "--data", train, "-o", str(d / "eval"), "--precision", "no"]),
            ("predict", ["predict", "ner", "-m", str(d / "model"), "--json", "--precision", "no",
                         "-t", "Empire State Building = ESB . Pretty bad storm here last evening .",
                         "-t", "@paulwalk It 's the view from where I 'm living for two weeks ."])]


def summarize_steps(enc: Path, d: Path) -> list[Step]:
    """8 committed SciTLDR-A abstracts (oracle labels), dev on the 10 dev ones; predict on a speech."""
    train, dev = str(DATA / "summarize" / "scitldr_a_train_sample.jsonl"), str(DATA / "summarize" / "scitldr_a_dev_sample.jsonl")
    return [("finetune", ["finetune", "summarize", "-m", str(enc), "--train", train, "--dev", dev, "-o", str(d / "model"),
                          "--max-train-examples", "8", "--max-steps", "40", "--batch-size", "4", "--lr", "3e-3",
                          "--warmup-ratio", "0", "--max-seq-length", "64", "--cross-attention-heads", "2",
                          "--oracle-sentences", "1", "--eval-every", "20", *COMMON]),
            ("evaluate", ["evaluate", "summarize", "-m", str(d / "model"), "--data", dev, "-o", str(d / "eval"),
                          "--precision", "no", "--no-progress"]),
            ("predict", ["predict", "summarize", "-m", str(d / "model"), "--input", str(DATA / "sotu_1790_washington.txt"),
                         "--max-sentences", "3", "--json", "--precision", "no"])]


def coref_steps(enc: Path, d: Path) -> list[Step]:
    """The first 40 token lines of the two committed LitBank documents (as tests/test_coref_cli.py)."""
    data = d / "data"
    data.mkdir(parents=True, exist_ok=True)
    words = []
    for name in ("1342_pride_and_prejudice_brat_head.conll", "11_alices_adventures_in_wonderland_brat_head.conll"):
        lines = (DATA / "coref" / name).read_text(encoding="utf-8").split("\n")[:41]
        (data / name).write_text("\n".join([*lines, "", "#end document", ""]), encoding="utf-8")
        words = [line.split("\t")[3] for line in lines if line and not line.startswith("#")]
    head = ["--max-segment-length", "64", "--max-span-width", "10", "--ffnn-size", "64", "--feature-size", "8",
            "--max-antecedents", "10", "--mention-loss-weight", "1"]
    return [("finetune", ["finetune", "coref", "-m", str(enc), "--train", str(data), "--dev", str(data), "-o", str(d / "model"),
                          "--max-steps", "100", "--lr", "3e-3", "--eval-every", "50", *head, *COMMON]),
            ("evaluate", ["evaluate", "coref", "-m", str(d / "model"), "--data", str(data), "-o", str(d / "eval"),
                          "--precision", "no"]),
            ("predict", ["predict", "coref", "-m", str(d / "model"), "--text", " ".join(words), "--json",
                         "--html", str(d / "predict.html"), "--precision", "no"])]


PLANS: dict[str, Callable[[Path, Path], list[Step]]] = {
    "qa": qa_steps, "classify": classify_steps, "relations": relations_steps, "ner": ner_steps,
    "summarize": summarize_steps, "coref": coref_steps}


def sig(x: float) -> float:
    """``x`` rounded to 6 significant digits (non-finite values as they are)."""
    return float(f"{x:.6g}") if math.isfinite(x) else x


def normalise(value: Any, out: Path, drop: bool = True) -> Any:
    """Volatile keys dropped (when ``drop``), floats rounded, ``out`` and the repository in paths made symbolic."""
    if isinstance(value, dict):
        return {k: normalise(v, out, drop) for k, v in value.items() if not (drop and VOLATILE.search(str(k)))}
    if isinstance(value, list):
        return [normalise(v, out, drop) for v in value]
    if isinstance(value, float):
        return sig(value)
    if isinstance(value, str):
        return value.replace(str(out), "<out>").replace(str(REPO), "<repo>")
    return value


def number(text: str) -> Any:
    """A CSV cell as int, rounded float or the text itself."""
    for kind in (int, float):
        try:
            return kind(text) if kind is int else sig(float(text))
        except ValueError:
            pass
    return text


def load_normalised(path: Path, out: Path) -> Any:
    """The file's content, parsed where it has a structure, then normalised."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return {name: {"shape": list(t.shape), "dtype": str(t.dtype),
                       "sha256": hashlib.sha256(" ".join(f"{v:.6g}" for v in t.ravel().tolist()).encode()).hexdigest()}
                for name, t in sorted(load_file(path).items())}
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".json", ".stdout"):  # the predict commands print JSON (classify, relations: JSON lines)
        try:
            return normalise(json.loads(text), out, drop=path.name != "tokenizer.json")
        except json.JSONDecodeError:
            pass
    if path.suffix in (".jsonl", ".stdout"):
        return [normalise(json.loads(line), out) for line in text.splitlines() if line.strip()]
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        return [{k: number(v) for k, v in row.items() if not VOLATILE.search(k)} for row in rows]
    return normalise(text, out).split("\n")  # lines, for the first differing one


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The path of the first place where ``a`` and ``b`` differ (None when they are equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{where}/{k} (only in {'B' if k not in a else 'A'})"
            if (found := first_difference(a[k], b[k], f"{where}/{k}")) is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if (found := first_difference(x, y, f"{where}[{i}]")) is not None:
                return found
        return None if len(a) == len(b) else f"{where} (length {len(a)} vs {len(b)})"
    return None if a == b else f"{where or '/'}: {str(a)[:80]!r} vs {str(b)[:80]!r}"


def run_task(task: str, encoder: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run the task's three commands into OUT/TASK; its digest entry: per file sha256 and content."""
    d = out / task
    d.mkdir(parents=True)
    files: dict[str, Any] = {}
    started = time.perf_counter()
    for name, args in PLANS[task](encoder, d):
        done = subprocess.run([sys.executable, "-m", "spanbert", *args], env=env, capture_output=True, text=True)
        (d / f"{name}.stdout").write_text(done.stdout, encoding="utf-8")
        (d / f"{name}.stderr").write_text(done.stderr, encoding="utf-8")
        if done.returncode != 0:
            raise SystemExit(f"{task} {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    for path in sorted(d.rglob("*")):
        rel = path.relative_to(d).as_posix()
        keep = path.is_file() and not rel.startswith(("data/", "model/checkpoints/")) and path.suffix != ".stderr" \
            and path.name not in ("README.md", "texts.txt", "finetune.stdout", "evaluate.stdout")
        if keep:
            content = load_normalised(path, out)
            files[rel] = {"sha256": hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest(),
                          "content": content}
    metrics = {rel: f["content"] for rel, f in files.items() if rel.endswith(("metrics.json", "finetune_summary.json"))}
    print(f"{task}: {len(files)} files in {time.perf_counter() - started:.0f} s", flush=True)
    return {"files": files, "metrics": metrics}


def produce(out: Path, tasks: list[str]) -> int:
    """Build the encoder, run the tasks, write OUT/digest.json."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=False)
    encoder = out / "encoder"
    build_encoder(encoder)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(out / "hf_datasets_cache"), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("SPANBERT_DEBUG", None)
    where = subprocess.run([sys.executable, "-c", "import spanbert; print(spanbert.__file__)"], env=env,
                           capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(Path(where).parent), "describe", "--always", "--dirty", "--abbrev=40"],
                            capture_output=True, text=True).stdout.strip()
    print(f"spanbert from {where} ({commit or 'not a git checkout'})", flush=True)
    started = time.perf_counter()
    digest = {"meta": {"spanbert": where, "commit": commit, "tasks": tasks},  # not compared
              "tasks": {task: run_task(task, encoder, out, env) for task in tasks}}
    (out / "digest.json").write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{out / 'digest.json'} ({time.perf_counter() - started:.0f} s)")
    return 0


def compare(a_path: Path, b_path: Path) -> int:
    """Print same/DIFFERENT per task and file; 1 when anything differs (or is missing on one side)."""
    a, b = (json.loads(p.read_text(encoding="utf-8"))["tasks"] for p in (a_path, b_path))
    different = 0
    for task in list(a) + [t for t in b if t not in a]:
        if task not in a or task not in b:
            print(f"{task}: DIFFERENT (only in {'B' if task not in a else 'A'})")
            different += 1
            continue
        fa, fb = a[task]["files"], b[task]["files"]
        for rel in sorted(set(fa) | set(fb)):
            if rel not in fa or rel not in fb:
                verdict = f"DIFFERENT (only in {'B' if rel not in fa else 'A'})"
            elif fa[rel]["sha256"] == fb[rel]["sha256"]:
                verdict = "same"
            else:
                verdict = f"DIFFERENT at {first_difference(fa[rel]['content'], fb[rel]['content'])}"
            different += verdict != "same"
            print(f"{task}/{rel}: {verdict}")
    print("all same" if not different else f"{different} DIFFERENT")
    return 1 if different else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, help="a new folder for the runs and digest.json")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated, of: " + ",".join(TASKS))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="two digest.json files")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    tasks = [t for t in args.tasks.split(",") if t]
    if args.out is None or not tasks or set(tasks) - set(TASKS):
        parser.error(f"give OUT_DIR, and --tasks from {','.join(TASKS)}")
    return produce(args.out, tasks)


if __name__ == "__main__":
    sys.exit(main())
