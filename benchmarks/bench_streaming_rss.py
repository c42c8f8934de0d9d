"""RSS of streaming pre-training over a corpus larger than the memory it is allowed: does it stay flat?

A corpus of real-looking English is written to disk first (``--corpus-gb`` of uncompressed
text): sentences of the Brown corpus, the State of the Union addresses and Moby Dick
(``shared/data/corpus``) drawn at random into documents of 10-120 sentences, as gzipped JSON
Lines shards with a ``.manifest.json`` (documents, characters, bytes). Then, in one process:

* phase 1, the data path over the WHOLE corpus: ``load_corpus(streaming=True)`` ->
  ``pack_documents`` -> the shuffle buffer ``spanbert pretrain`` streams through ->
  ``SpanMaskingCollator`` batches, to the last document. RSS is sampled every few batches
  (and by a thread); reported: tokens/s, RSS at 0/25/50/75/100 % of the documents read, peak
  RSS, and that every document written was read;
* phase 2, training: ``spanbert.pretrain.pipeline.run_pretrain_job`` with ``streaming=True`` (the tiny
  preset, a WordPiece vocabulary trained once on the shared corpus) for ``--steps`` optimizer
  steps, RSS sampled from a thread that maps samples to steps by following ``metrics.csv``.

Each phase reports the mean RSS over the first and the last quarter of its steps after a
warm-up (at least the steps that fill the shuffle buffer once), the slope (MB per 1000 steps)
and the peak (``VmHWM``, reset between phases). RSS counts as flat when the last-quarter mean
is at most 10 % + 50 MB above the first-quarter mean. ``--memory-limit-gb`` is enforced: a
sampler thread interrupts the phase as soon as RSS passes it. Exit status 0 only when both
phases stayed under the limit, were flat, and phase 1 read every document and saw every
``example_id`` once.

    OMP_NUM_THREADS=1 python benchmarks/bench_streaming_rss.py --workdir /work/runs/stream \\
        --corpus-gb 3 --memory-limit-gb 1.5 --steps 1500
    python benchmarks/bench_streaming_rss.py --corpus my_corpus/ --tokenizer tok/ --phases data

Two switches bring back known memory costs that ``spanbert pretrain`` now avoids:
``--max-buffer-input-shards 10`` feeds phase 1's shuffle buffer from 10 corpus files at once
(datasets' default, which clones the packing pipeline per file and restarts ``example_id``;
the trainer uses one); ``--onednn-cache N`` sets oneDNN's primitive cache, which keeps memory
for every new tensor shape (the trainer pads batch widths and head rows to a few shapes).
Phase 1 also checks that ``example_id`` numbers the segments once each.

The allocator is what ``spanbert pretrain`` sets on a CPU (``spanbert.pretrain.train.tune_glibc_malloc``,
applied before phase 1 too; ``--default-malloc`` keeps glibc's own for phase 1). The Rust
tokenizer runs single-threaded (``TOKENIZERS_PARALLELISM=false``) unless the variable is set.
The report is also written as JSON (``--report``, default ``WORKDIR/report.json``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import resource
import shlex
import shutil
import signal
import sys
import threading
import time
import _thread
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core: the machine is shared
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPANBERT_SHARED_DATA", REPO.parent / "shared" / "data"))
MB = 1 << 20
GENERATOR_VERSION = 1  # bump when write_corpus would write different text for the same settings


# --------------------------------------------------------------------------- memory


def rss_bytes() -> int:
    """Resident set size of this process now (psutil, else /proc/self/status VmRSS)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return _status_kb("VmRSS") * 1024


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status: no {key}")


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak RSS since the last :func:`reset_peak_rss` (VmHWM), else the lifetime peak (getrusage)."""
    try:
        return _status_kb("VmHWM") * 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class MemoryLimitExceeded(RuntimeError):
    """RSS went over the limit the benchmark enforces."""


EXCEEDED: list[str] = []  # messages of every sampler that passed its limit, in this process
_LIMIT_SIGNAL = signal.SIGUSR1
_ACTIVE: list[RssSampler] = []  # the armed sampler, if any


def _on_limit_signal(signum: int, frame: object) -> None:
    """Raise MemoryLimitExceeded in the main thread, but only while the sampler that asked is armed."""
    if _ACTIVE and _ACTIVE[-1].armed and _ACTIVE[-1].exceeded:
        _ACTIVE[-1].armed = False
        raise MemoryLimitExceeded(_ACTIVE[-1].exceeded)


class RssSampler:
    """Thread sampling RSS every ``interval_s``; over ``limit_bytes`` it stops the main thread.

    ``step_of`` (called from the thread) gives the step/batch a sample belongs to. Over the
    limit the thread sends the main thread a (simulated) SIGUSR1 whose handler raises
    :class:`MemoryLimitExceeded` there, wherever the main thread is (inside
    ``run_pretrain_job`` too); the handler does nothing once the ``with`` block is left, so a
    late signal cannot escape. With ``hard_exit``, past 1.5x the limit (the main thread stuck
    in native code) the process exits with status 3 before the machine runs out of memory.
    Use it from the main thread.
    """

    def __init__(self, limit_bytes: int, interval_s: float = 0.1, step_of: Callable[[], int] | None = None,
                 hard_exit: bool = True):
        self.limit_bytes = limit_bytes
        self.interval_s = interval_s
        self.step_of = step_of
        self.hard_exit = hard_exit
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, step, rss bytes)
        self.exceeded: str | None = None
        self.armed = False
        self._go = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> RssSampler:
        if signal.getsignal(_LIMIT_SIGNAL) is not _on_limit_signal:
            signal.signal(_LIMIT_SIGNAL, _on_limit_signal)
        _ACTIVE.append(self)
        self._t0 = time.perf_counter()
        self._thread.start()
        self.armed = True
        self._go.set()  # the thread samples only once the handler may raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.armed = False
        self._stop.set()
        self._thread.join()
        _ACTIVE.remove(self)

    def _run(self) -> None:
        self._go.wait()
        while not self._stop.is_set():
            rss = rss_bytes()
            step = self.step_of() if self.step_of is not None else -1
            self.samples.append((time.perf_counter() - self._t0, step, rss))
            if rss > self.limit_bytes and self.exceeded is None:
                self.exceeded = (f"RSS {rss / MB:.0f} MB passed the limit of {self.limit_bytes / MB:.0f} MB "
                                 f"at step {step}")
                EXCEEDED.append(self.exceeded)
                _thread.interrupt_main(_LIMIT_SIGNAL)
                return
            if self.hard_exit and rss > 1.5 * self.limit_bytes:
                print(f"error: RSS {rss / MB:.0f} MB is 1.5x the limit; exiting", file=sys.stderr, flush=True)
                os._exit(3)
            self._stop.wait(self.interval_s)


def flatness(steps: Sequence[int], rss: Sequence[int], warmup_steps: int) -> dict[str, Any]:
    """Is RSS flat over steps after ``warmup_steps``?

    Returns first/last-quarter means (MB) of the samples after the warm-up (quarters of the
    step range), the least-squares slope in MB per 1000 steps, and ``flat``: last-quarter
    mean <= 1.10 x first-quarter mean + 50 MB. With too few samples ``flat`` is None.
    """
    s = np.asarray(steps, dtype=np.float64)
    r = np.asarray(rss, dtype=np.float64) / MB
    keep = s > warmup_steps
    s, r = s[keep], r[keep]
    out: dict[str, Any] = {"warmup_steps": int(warmup_steps), "samples": int(s.size)}
    if s.size < 4 or s.max() <= s.min():
        return {**out, "first_quarter_mb": None, "last_quarter_mb": None, "slope_mb_per_1000_steps": None,
                "flat": None}
    lo, hi = s.min(), s.max()
    first = r[s <= lo + (hi - lo) / 4]
    last = r[s >= hi - (hi - lo) / 4]
    q1, q4 = float(first.mean()), float(last.mean())
    slope = float(np.polyfit(s, r, 1)[0]) * 1000.0
    return {**out, "first_quarter_mb": q1, "last_quarter_mb": q4, "slope_mb_per_1000_steps": slope,
            "flat": bool(q4 <= 1.10 * q1 + 50.0)}


# --------------------------------------------------------------------------- corpus


def sentence_pool(data_dir: Path = SHARED_DATA) -> tuple[list[str], list[str]]:
    """Real English sentences (Brown, State of the Union, Moby Dick) and the files they came from."""
    from spanbert.pretrain.corpus import iter_documents, sentence_starts

    corpus = data_dir / "corpus"
    files = [corpus / "brown.jsonl.gz", corpus / "sotu.jsonl.gz", corpus / "moby_dick.txt.gz"]
    files = [f for f in files if f.is_file()]
    if not files:
        raise SystemExit(f"error: no corpus files under {corpus}; set SPANBERT_SHARED_DATA")
    pool: list[str] = []
    for path in files:
        for doc in iter_documents([path], doc_per="blank_line"):
            if path.name.startswith("brown"):  # one sentence a line already
                pool.extend(line.strip() for line in doc.splitlines() if line.strip())
                continue
            text = " ".join(doc.split())  # unwrap Moby Dick's hard line breaks
            bounds = [0, *sentence_starts(text).tolist(), len(text)]
            pool.extend(text[a:b].strip() for a, b in zip(bounds[:-1], bounds[1:]) if text[a:b].strip())
    return pool, [str(f) for f in files]


def _documents(pool: list[str], rng: np.random.Generator) -> Iterator[str]:
    """Endless documents: 10-120 random pool sentences in paragraphs of 2-8, blank-line separated."""
    n_pool = len(pool)
    while True:
        n = int(rng.integers(10, 121))
        picks = rng.integers(0, n_pool, size=n)
        cuts = np.cumsum(rng.integers(2, 9, size=n))
        paragraphs, start = [], 0
        for end in cuts.tolist():
            if start >= n:
                break
            paragraphs.append(" ".join(pool[i] for i in picks[start:end].tolist()))
            start = end
        yield "\n\n".join(paragraphs)


def write_corpus(out_dir: Path, total_bytes: int, *, seed: int = 0, shard_bytes: int = 256 * MB,
                 compress: bool = True, data_dir: Path = SHARED_DATA) -> dict[str, Any]:
    """Write ``total_bytes`` (UTF-8 text, at least) of documents as JSON Lines shards into ``out_dir``.

    Reuses ``out_dir`` when its ``.manifest.json`` records the same settings. Each shard is
    written under a hidden name and renamed when complete; the manifest (written last,
    atomically) holds ``documents``, ``text_chars``, ``text_bytes`` (the ``text`` fields,
    UTF-8), ``file_bytes`` and the shard ``files``.
    """
    from spanbert.core.atomic import atomic_write_json

    settings = {"version": GENERATOR_VERSION, "total_bytes": int(total_bytes), "seed": seed,
                "shard_bytes": int(shard_bytes), "compress": compress}
    manifest_path = out_dir / ".manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings") == settings and all(Path(f).is_file() for f in manifest["files"]):
            return {**manifest, "reused": True}
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    pool, sources = sentence_pool(data_dir)
    docs = _documents(pool, np.random.default_rng(seed))
    suffix = ".jsonl.gz" if compress else ".jsonl"
    files: list[str] = []
    documents = chars = text_bytes = 0
    t0 = time.perf_counter()
    while text_bytes < total_bytes:
        final = out_dir / f"shard-{len(files):05d}{suffix}"
        tmp = out_dir / f".{final.name}.tmp"
        handle = gzip.open(tmp, "wb", compresslevel=1) if compress else open(tmp, "wb")
        shard_text = 0
        with handle:
            lines: list[bytes] = []
            while shard_text < shard_bytes and text_bytes < total_bytes:
                doc = next(docs)
                size = len(doc.encode("utf-8"))
                lines.append(json.dumps({"text": doc}, ensure_ascii=False).encode("utf-8") + b"\n")
                documents += 1
                chars += len(doc)
                text_bytes += size
                shard_text += size
                if len(lines) >= 256:
                    handle.write(b"".join(lines))
                    lines = []
            handle.write(b"".join(lines))
        os.replace(tmp, final)
        files.append(str(final))
    manifest = {
        "settings": settings,
        "sources": sources,
        "pool_sentences": len(pool),
        "documents": documents,
        "text_chars": chars,
        "text_bytes": text_bytes,
        "file_bytes": sum(Path(f).stat().st_size for f in files),
        "files": files,
        "write_s": time.perf_counter() - t0,
    }
    atomic_write_json(manifest_path, manifest)
    return {**manifest, "reused": False}


def count_documents(sources: Sequence[str]) -> dict[str, Any]:
    """Documents and characters of user corpus files (read once with ``iter_documents``)."""
    from spanbert.pretrain.corpus import iter_documents

    documents = chars = 0
    for doc in iter_documents(list(sources)):
        documents += 1
        chars += len(doc)
    return {"documents": documents, "text_chars": chars, "text_bytes": None, "files": list(sources)}


def ensure_tokenizer(workdir: Path, vocab_size: int, data_dir: Path = SHARED_DATA) -> Path:
    """A cased WordPiece vocabulary trained once on the shared corpus files (cached in ``workdir``)."""
    from spanbert.pretrain.tokenizer import train_tokenizer_from_files

    out = workdir / f"tokenizer-{vocab_size}"
    if not (out / "tokenizer.json").is_file():
        corpus = data_dir / "corpus"
        sources = [p for p in (corpus / "brown.jsonl.gz", corpus / "sotu.jsonl.gz", corpus / "moby_dick.txt.gz")
                   if p.is_file()]
        train_tokenizer_from_files(sources, out, vocab_size=vocab_size, overwrite=True)
    return out


# --------------------------------------------------------------------------- phase 1


@dataclass
class DocCounter:
    """A batched ``IterableDataset.map`` function that counts the documents passing through."""

    documents: int = 0
    chars: int = 0

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        texts = batch["text"]
        self.documents += len(texts)
        self.chars += sum(len(t) for t in texts if isinstance(t, str))
        return {}  # the batch passes unchanged


@dataclass
class DataPathSettings:
    """Phase 1 settings (the defaults are ``spanbert pretrain``'s)."""

    max_length: int = 512
    batch_size: int = 32
    shuffle_buffer: int = 10_000
    seed: int = 0
    sample_every: int = 20  # batches between RSS samples in the loop
    max_buffer_input_shards: int | None = None  # None: as spanbert.pretrain.train (one file at a time)
    warmup_fraction: float = 0.10
    progress_every_s: float = 30.0


def run_data_path(sources: Sequence[str], tokenizer_dir: Path, expected: dict[str, Any],
                  settings: DataPathSettings, limit_bytes: int) -> dict[str, Any]:
    """Phase 1: stream every document through packing, the shuffle buffer and the collator.

    ``expected`` holds ``documents`` and ``text_chars`` of the corpus. Returns the report dict
    (documents/characters seen, segments, tokens, tokens/s, RSS at 0/25/50/75/100 %, peak,
    flatness over batches, whether the limit was kept).
    """
    from spanbert.pretrain.collator import SpanMaskingCollator
    from spanbert.pretrain.corpus import load_corpus, pack_documents
    from spanbert.core.checkpoints import load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_dir))
    counter = DocCounter()
    docs = load_corpus(list(sources), streaming=True)
    docs = docs.map(counter, batched=True, batch_size=256)
    packed = pack_documents(docs, tokenizer, max_length=settings.max_length)
    if settings.shuffle_buffer > 0:  # as spanbert.pretrain.train._local_micro_batches does in epoch 0
        if settings.max_buffer_input_shards is None:
            from spanbert.pretrain.train import _shuffle_stream

            packed = _shuffle_stream(packed, settings.seed, settings.shuffle_buffer)
        else:
            packed = packed.shuffle(seed=settings.seed, buffer_size=settings.shuffle_buffer,
                                    max_buffer_input_shards=settings.max_buffer_input_shards)
    collator = SpanMaskingCollator(tokenizer, seed=settings.seed)

    total_docs = max(int(expected["documents"]), 1)
    checkpoints = [0.0, 0.25, 0.5, 0.75, 1.0]
    at_fraction: dict[str, float] = {}
    loop_samples: list[tuple[int, int, float]] = []  # (batch, rss, fraction of documents read)
    segments = tokens = batches = 0
    max_example_id = -1
    seen_ids = bytearray()  # one byte per segment: a set of ints would grow RSS with the corpus
    duplicate_ids = 0
    reset_peak_rss()
    start_rss = rss_bytes()
    at_fraction["0%"] = start_rss / MB
    t0 = last_print = time.perf_counter()
    with RssSampler(limit_bytes, step_of=lambda: batches) as sampler:
        rows = iter(packed)
        while True:
            chunk = list(islice(rows, settings.batch_size))
            if not chunk:
                break
            if sampler.exceeded:
                raise MemoryLimitExceeded(sampler.exceeded)
            batch = collator(chunk)
            batches += 1
            segments += len(chunk)
            tokens += int(batch["attention_mask"].sum())
            for row in chunk:
                example_id = int(row["example_id"])
                if example_id >= len(seen_ids):
                    seen_ids.extend(bytes(max(example_id + 1 - len(seen_ids), 1 << 16)))
                duplicate_ids += seen_ids[example_id]
                seen_ids[example_id] = 1
                max_example_id = max(max_example_id, example_id)
            if batches % settings.sample_every == 0:
                rss = rss_bytes()
                frac = counter.documents / total_docs
                loop_samples.append((batches, rss, frac))
                for q in checkpoints[1:-1]:
                    key = f"{round(q * 100)}%"
                    if frac >= q and key not in at_fraction:
                        at_fraction[key] = rss / MB
            now = time.perf_counter()
            if now - last_print >= settings.progress_every_s:
                last_print = now
                print(f"  [data] {counter.documents / total_docs:6.1%} of documents, {batches} batches, "
                      f"RSS {rss_bytes() / MB:.0f} MB, {tokens / (now - t0):,.0f} tokens/s", flush=True)
    elapsed = time.perf_counter() - t0
    end_rss = rss_bytes()
    at_fraction["100%"] = end_rss / MB
    peak = max(peak_rss_bytes(), max((s[2] for s in sampler.samples), default=0))
    warmup = max(math.ceil(settings.shuffle_buffer / settings.batch_size) + 1,
                 int(settings.warmup_fraction * batches))
    steps = [b for b, _, _ in loop_samples] + [s for _, s, _ in sampler.samples]
    values = [r for _, r, _ in loop_samples] + [r for _, _, r in sampler.samples]
    return {
        "documents_expected": int(expected["documents"]),
        "documents_seen": counter.documents,
        "chars_expected": int(expected["text_chars"]),
        "chars_seen": counter.chars,
        "all_documents_read": counter.documents == int(expected["documents"])
        and counter.chars == int(expected["text_chars"]),
        "segments": segments,
        "duplicate_example_ids": duplicate_ids,
        "example_ids_unique": duplicate_ids == 0 and max_example_id + 1 == segments,
        "batches": batches,
        "tokens": tokens,
        "seconds": elapsed,
        "tokens_per_s": tokens / max(elapsed, 1e-9),
        "text_mb_per_s": counter.chars / MB / max(elapsed, 1e-9),
        "rss_mb_at_documents_read": at_fraction,
        "peak_rss_mb": peak / MB,
        "limit_mb": limit_bytes / MB,
        "under_limit": peak <= limit_bytes,
        "flatness": flatness(steps, values, warmup),
        "settings": {"max_length": settings.max_length, "batch_size": settings.batch_size,
                     "shuffle_buffer": settings.shuffle_buffer, "seed": settings.seed,
                     "max_buffer_input_shards": settings.max_buffer_input_shards},
    }


# --------------------------------------------------------------------------- phase 2


class MetricsFollower:
    """The number of steps ``metrics.csv`` holds, read incrementally (rows after the header)."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._newlines = 0

    def __call__(self) -> int:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        if size < self._offset:  # rewritten (a new run or a resume)
            self._offset = self._newlines = 0
        if size > self._offset:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read(size - self._offset)
            self._offset += len(data)
            self._newlines += data.count(b"\n")
        return max(self._newlines - 1, 0)


@dataclass
class TrainSettings:
    """Phase 2 settings."""

    steps: int = 1500
    batch_size: int = 32
    max_length: int = 128
    preset: str = "tiny"
    shuffle_buffer: int = 10_000
    save_every: int = 0  # 0: a checkpoint every quarter of the run
    seed: int = 0
    precision: str = "no"  # spanbert pretrain's default; "auto" is bf16 on CPUs with AVX512-BF16/AMX
    warmup_fraction: float = 0.10


def run_training(sources: Sequence[str], tokenizer_dir: Path, out_dir: Path, settings: TrainSettings,
                 limit_bytes: int) -> dict[str, Any]:
    """Phase 2: ``run_pretrain_job(streaming=True)`` for ``settings.steps`` steps, RSS sampled by step."""
    from spanbert.pretrain.arguments import PretrainArguments, PretrainJob
    from spanbert.pretrain.pipeline import run_pretrain_job

    if out_dir.exists():
        shutil.rmtree(out_dir)
    save_every = settings.save_every or max(1, settings.steps // 4)
    args = PretrainArguments(
        output_dir=str(out_dir), batch_size=settings.batch_size, max_steps=settings.steps, save_every=save_every,
        log_every=50, seed=settings.seed, progress=False, mixed_precision=settings.precision,
        stream_shuffle_buffer=settings.shuffle_buffer,
    )
    job = PretrainJob(corpus=list(sources), train=args, tokenizer=str(tokenizer_dir), preset=settings.preset,
                      max_length=settings.max_length, streaming=True)
    follower = MetricsFollower(out_dir / "metrics.csv")
    reset_peak_rss()
    start_rss = rss_bytes()
    t0 = time.perf_counter()
    with RssSampler(limit_bytes, interval_s=0.1, step_of=follower) as sampler:
        result = run_pretrain_job(job)
    elapsed = time.perf_counter() - t0
    peak = max(peak_rss_bytes(), max((s[2] for s in sampler.samples), default=0))
    samples = [(step, rss) for _, step, rss in sampler.samples if step > 0]
    warmup = max(math.ceil(settings.shuffle_buffer / settings.batch_size) + 1,
                 int(settings.warmup_fraction * settings.steps))
    by_quarter = {}
    for q in (0.25, 0.5, 0.75, 1.0):
        target = math.ceil(q * settings.steps)
        near = [rss for step, rss in samples if step <= target]
        by_quarter[f"step {target}"] = (near[-1] / MB) if near else None
    return {
        "steps": result.state.step,
        "tokens": result.state.tokens,
        "seconds": elapsed,
        "tokens_per_s": result.state.tokens / max(result.state.elapsed_s, 1e-9),
        "last_loss": result.state.last.get("loss"),
        "rss_mb_start": start_rss / MB,
        "rss_mb_at_step": by_quarter,
        "peak_rss_mb": peak / MB,
        "limit_mb": limit_bytes / MB,
        "under_limit": peak <= limit_bytes,
        "flatness": flatness([s for s, _ in samples], [r for _, r in samples], warmup),
        "settings": {"steps": settings.steps, "batch_size": settings.batch_size, "max_length": settings.max_length,
                     "preset": settings.preset, "shuffle_buffer": settings.shuffle_buffer,
                     "save_every": save_every, "seed": settings.seed, "precision": settings.precision},
    }


# --------------------------------------------------------------------------- report


def _fmt(value: Any, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The compact result table."""
    c = report["corpus"]
    lines = [
        f"corpus: {c['documents']:,} documents, {c['text_chars'] / 1e9:.2f} G characters of text"
        + (f" ({c['file_bytes'] / 1e9:.2f} GB on disk)" if c.get("file_bytes") else "")
        + f"; limit {report['memory_limit_mb']:.0f} MB; text / limit = {report['corpus_to_limit']:.1f}x",
        f"baseline RSS after imports: {report['baseline_rss_mb']:.0f} MB; cpus {report['cpus']}, "
        f"load average {report['load_average']}",
    ]
    d = report.get("data_path")
    if d:
        at = d["rss_mb_at_documents_read"]
        f = d["flatness"]
        lines += [
            f"phase 1, data path (stream -> pack -> shuffle buffer {d['settings']['shuffle_buffer']} "
            f"(input shards {d['settings']['max_buffer_input_shards'] or '1, as pretrain'}) -> collator), whole corpus:",
            f"  documents {d['documents_seen']:,} / {d['documents_expected']:,} read"
            f" ({'all' if d['all_documents_read'] else 'NOT ALL'}), {d['segments']:,} segments "
            f"({d['duplicate_example_ids']:,} repeated example_ids), "
            f"{d['tokens']:,} tokens in {d['seconds']:.0f} s = {d['tokens_per_s']:,.0f} tokens/s "
            f"({d['text_mb_per_s']:.2f} MB text/s)",
            "  RSS MB at documents read: " + ", ".join(f"{k} {_fmt(v)}" for k, v in at.items()),
            f"  after warm-up ({f['warmup_steps']} batches): first quarter {_fmt(f['first_quarter_mb'])} MB, "
            f"last quarter {_fmt(f['last_quarter_mb'])} MB, slope {_fmt(f['slope_mb_per_1000_steps'], '+.2f')} "
            f"MB/1000 batches; peak {d['peak_rss_mb']:.0f} MB; flat {f['flat']}; under limit {d['under_limit']}",
        ]
    t = report.get("training")
    if t:
        f = t["flatness"]
        lines += [
            f"phase 2, run_pretrain_job(streaming=True), preset {t['settings']['preset']}, "
            f"batch {t['settings']['batch_size']} x {t['settings']['max_length']}, "
            f"shuffle buffer {t['settings']['shuffle_buffer']}, precision {t['settings']['precision']}, "
            f"oneDNN primitive cache {report.get('onednn_primitive_cache_capacity') or 'default'}:",
            f"  {t['steps']} steps, {t['tokens']:,} tokens in {t['seconds']:.0f} s = "
            f"{t['tokens_per_s']:,.0f} tokens/s, last loss {_fmt(t['last_loss'], '.3f')}",
            f"  RSS MB: start {t['rss_mb_start']:.0f}, "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in t["rss_mb_at_step"].items()),
            f"  after warm-up ({f['warmup_steps']} steps): first quarter {_fmt(f['first_quarter_mb'])} MB, "
            f"last quarter {_fmt(f['last_quarter_mb'])} MB, slope {_fmt(f['slope_mb_per_1000_steps'], '+.2f')} "
            f"MB/1000 steps; peak {t['peak_rss_mb']:.0f} MB; flat {f['flat']}; under limit {t['under_limit']}",
        ]
    if report.get("aborted"):
        lines.append(f"ABORTED: {report['aborted']}")
    lines.append(f"result: {'PASS' if report['passed'] else 'FAIL'}")
    return lines


def passed(report: dict[str, Any]) -> bool:
    """Every phase run stayed under the limit, was flat (when measurable) and read every document."""
    if report.get("aborted"):
        return False
    for key in ("data_path", "training"):
        phase = report.get(key)
        if phase is None:
            continue
        if not phase["under_limit"] or phase["flatness"]["flat"] is False:
            return False
        if key == "data_path" and not (phase["all_documents_read"] and phase["example_ids_unique"]):
            return False
    return True


def _command(args: argparse.Namespace) -> str:
    parts = ["OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", ""), "python", "benchmarks/bench_streaming_rss.py"]
    for key, value in vars(args).items():
        if args.corpus and key in ("corpus_gb", "shard_mb", "plain"):
            continue  # no corpus is generated
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                parts.append(flag)
        elif isinstance(value, list):
            for v in value:
                parts += [flag, str(v)]
        elif value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) if i > 0 else p for i, p in enumerate(parts))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/spanbert-stream"),
                        help="corpus shards, tokenizer, training output and report.json go here")
    parser.add_argument("--corpus", action="append", default=None,
                        help="use these corpus files/directories instead of generating one (repeatable)")
    parser.add_argument("--corpus-gb", type=float, default=3.0, help="uncompressed text to generate, GB (1e9 bytes)")
    parser.add_argument("--shard-mb", type=float, default=256.0, help="uncompressed text per shard, MB")
    parser.add_argument("--plain", action="store_true", help="write plain .jsonl shards instead of gzip")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="tokenizer directory (default: train a WordPiece of --vocab-size once)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--memory-limit-gb", type=float, default=1.5, help="RSS limit enforced, GiB")
    parser.add_argument("--phases", choices=("both", "data", "train"), default="both")
    parser.add_argument("--max-length", type=int, default=512, help="phase 1 segment length")
    parser.add_argument("--batch-size", type=int, default=32, help="phase 1 and 2 batch size")
    parser.add_argument("--shuffle-buffer", type=int, default=10_000,
                        help="stream shuffle buffer, rows (spanbert pretrain's default; 0: none in phase 1)")
    parser.add_argument("--steps", type=int, default=1500, help="phase 2 optimizer steps")
    parser.add_argument("--train-max-length", type=int, default=128, help="phase 2 segment length")
    parser.add_argument("--preset", default="tiny", help="phase 2 model size")
    parser.add_argument("--save-every", type=int, default=0, help="phase 2 checkpoint interval (0: every quarter)")
    parser.add_argument("--precision", choices=("no", "bf16", "auto"), default="no", help="phase 2 autocast")
    parser.add_argument("--onednn-cache", type=int, default=None,
                        help="set ONEDNN_PRIMITIVE_CACHE_CAPACITY (oneDNN's default: 1024 primitives)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-buffer-input-shards", type=int, default=None,
                        help="phase 1: shards feeding the shuffle buffer at once (default: one, as spanbert "
                        "pretrain does; 10 is datasets' own default)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="phase 1 under glibc's default malloc instead of spanbert pretrain's tuning")
    parser.add_argument("--report", type=Path, default=None, help="JSON report path (default WORKDIR/report.json)")
    args = parser.parse_args(argv)
    if args.onednn_cache is not None:  # read once, when oneDNN creates its first primitive
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.onednn_cache)

    import logging

    import datasets
    import transformers

    from spanbert.core.atomic import atomic_write_json
    from spanbert.pretrain.train import tune_glibc_malloc

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("spanbert").setLevel(logging.WARNING)

    command = _command(args)
    print(f"command: {command}", flush=True)
    workdir = args.workdir.expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    limit = int(args.memory_limit_gb * (1 << 30))

    if args.corpus:
        corpus = count_documents(args.corpus)
        sources = list(args.corpus)
    else:
        t0 = time.perf_counter()
        corpus = write_corpus(workdir / "corpus", int(args.corpus_gb * 1e9), seed=args.seed,
                              shard_bytes=int(args.shard_mb * MB), compress=not args.plain)
        sources = corpus["files"]
        print(f"corpus: {'reused' if corpus['reused'] else 'written in'} "
              f"{'' if corpus['reused'] else f'{time.perf_counter() - t0:.0f} s '}"
              f"{workdir / 'corpus'} ({len(sources)} shards)", flush=True)
    tokenizer_dir = args.tokenizer or ensure_tokenizer(workdir, args.vocab_size)

    malloc_tuned = False if args.default_malloc else tune_glibc_malloc()
    baseline = rss_bytes()
    report: dict[str, Any] = {
        "command": command,
        "corpus": {k: v for k, v in corpus.items() if k != "files"} | {"shards": len(sources)},
        "tokenizer": str(tokenizer_dir),
        "memory_limit_mb": limit / MB,
        "corpus_to_limit": corpus["text_chars"] / limit,
        "baseline_rss_mb": baseline / MB,
        "phase1_malloc_tuned": malloc_tuned,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
        "onednn_primitive_cache_capacity": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
    }
    try:
        if args.phases in ("both", "data"):
            print("phase 1: data path over the whole corpus ...", flush=True)
            report["data_path"] = run_data_path(
                sources, tokenizer_dir, corpus,
                DataPathSettings(max_length=args.max_length, batch_size=args.batch_size,
                                 shuffle_buffer=args.shuffle_buffer, seed=args.seed,
                                 max_buffer_input_shards=args.max_buffer_input_shards),
                limit,
            )
        if args.phases in ("both", "train"):
            print(f"phase 2: streaming pre-training, {args.steps} steps ...", flush=True)
            report["training"] = run_training(
                sources, tokenizer_dir, workdir / "train",
                TrainSettings(steps=args.steps, batch_size=args.batch_size, max_length=args.train_max_length,
                              preset=args.preset, shuffle_buffer=args.shuffle_buffer, save_every=args.save_every,
                              seed=args.seed, precision=args.precision),
                limit,
            )
    except MemoryLimitExceeded as err:
        report["aborted"] = str(err)
        print(f"error: memory limit exceeded: {err}", file=sys.stderr)
    report["passed"] = passed(report)
    report["lifetime_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    atomic_write_json(args.report or workdir / "report.json", report)
    print("\n".join(summary_lines(report)))
    print(f"command: {command}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
