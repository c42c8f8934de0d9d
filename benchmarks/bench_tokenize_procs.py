"""Packing an Arrow corpus with ``datasets`` worker processes: num_proc=1 vs num_proc=2.

``pack_documents`` hands ``num_proc`` to ``Dataset.map`` for an Arrow-backed (non-streaming)
corpus. This script builds a ~50 MB corpus of real-looking English (the generator of
``bench_streaming_rss.py``: Brown, State of the Union and Moby Dick sentences), loads it with
``load_corpus`` (an Arrow Dataset, one document a row) and packs it with each ``num_proc``
in turn, ``--repeats`` times, alternating, in one parent process. It reports the median
tokens/s of each, the speed-up, and whether the packed rows (``input_ids``, ``word_starts``,
``example_id``) are identical and in the same order.

    OMP_NUM_THREADS=1 python benchmarks/bench_tokenize_procs.py --workdir /work/runs/tokprocs --corpus-mb 50

The map cache is off (``datasets.disable_caching``), so each run tokenises again. The Rust
tokenizer runs single-threaded (``TOKENIZERS_PARALLELISM=false``) unless the variable is set,
so num_proc=1 really uses one core. The speed-up can only approach 2 on a machine whose two
cores are both free: the CPU count and load average are printed with the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_streaming_rss import MB, ensure_tokenizer, write_corpus  # noqa: E402


def packed_tokens(packed) -> int:
    """Tokens in a packed Arrow Dataset (special tokens included)."""
    import pyarrow.compute as pc

    lengths = pc.list_value_length(packed.data.table.column("input_ids"))
    return int(pc.sum(lengths).as_py() or 0)


def same_rows(a, b, batch_size: int = 10_000) -> bool:
    """Whether two packed Datasets hold the same rows in the same order (all three columns)."""
    if len(a) != len(b):
        return False
    columns = ["input_ids", "word_starts", "example_id"]
    for start in range(0, len(a), batch_size):
        stop = min(start + batch_size, len(a))
        left = a.data.table.slice(start, stop - start).select(columns).combine_chunks()
        right = b.data.table.slice(start, stop - start).select(columns).combine_chunks()
        if not left.equals(right):
            return False
    return True


def time_pack(docs, tokenizer, num_proc: int, max_length: int) -> tuple[float, Any]:
    """Seconds to pack ``docs`` with ``num_proc`` processes, and the packed Dataset."""
    from spanbert.pretrain.corpus import pack_documents

    t0 = time.perf_counter()
    packed = pack_documents(docs, tokenizer, max_length=max_length, num_proc=num_proc)
    return time.perf_counter() - t0, packed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/spanbert-tokprocs"))
    parser.add_argument("--corpus-mb", type=float, default=50.0, help="uncompressed text, MB (1e6 bytes)")
    parser.add_argument("--tokenizer", type=Path, default=None, help="default: a WordPiece of 8000 trained once")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="num_proc values compared")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import datasets
    import transformers

    from spanbert.pretrain.corpus import load_corpus
    from spanbert.core.checkpoints import load_tokenizer

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.disable_caching()  # every map tokenises again (the cache would answer the repeats)
    transformers.logging.set_verbosity_error()

    command = "python benchmarks/bench_tokenize_procs.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"command: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} {command}", flush=True)
    workdir = args.workdir.expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = write_corpus(workdir / "corpus", int(args.corpus_mb * 1e6), shard_bytes=1 << 40)
    tokenizer = load_tokenizer(str(args.tokenizer or ensure_tokenizer(workdir, 8000)))
    docs = load_corpus(manifest["files"], cache_dir=str(workdir / "cache"))  # an Arrow Dataset
    load_before = os.getloadavg()

    seconds: dict[int, list[float]] = {p: [] for p in args.procs}
    results: dict[int, Any] = {}
    for _ in range(args.repeats):
        for procs in args.procs:
            elapsed, packed = time_pack(docs, tokenizer, procs, args.max_length)
            seconds[procs].append(elapsed)
            results[procs] = packed
    tokens = packed_tokens(results[args.procs[0]])
    base = args.procs[0]
    print(f"corpus: {len(docs):,} documents, {manifest['text_bytes'] / 1e6:.1f} MB text -> "
          f"{len(results[base]):,} segments, {tokens:,} tokens (max_length {args.max_length})")
    print(f"cpus {os.cpu_count()}; load average before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in os.getloadavg())}; TOKENIZERS_PARALLELISM="
          f"{os.environ.get('TOKENIZERS_PARALLELISM')}")
    medians = {p: statistics.median(s) for p, s in seconds.items()}
    for procs in args.procs:
        runs = ", ".join(f"{s:.1f}" for s in seconds[procs])
        print(f"num_proc={procs}: median {medians[procs]:.1f} s ({runs}) = {tokens / medians[procs]:,.0f} tokens/s "
              f"({manifest['text_bytes'] / MB / medians[procs]:.2f} MB text/s)")
    identical = all(same_rows(results[base], results[p]) for p in args.procs[1:])
    for procs in args.procs[1:]:
        print(f"speed-up num_proc={procs} / num_proc={base}: {medians[base] / medians[procs]:.2f}x")
    print(f"packed rows identical and in the same order: {identical}")
    print("caveat: the machine is shared (a background run may hold a core); compare the speed-up with the "
          "load average above, not with the core count alone")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
