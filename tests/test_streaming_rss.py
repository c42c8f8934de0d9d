"""benchmarks/bench_streaming_rss.py at a tiny size.

The streaming data path reads every document the generator wrote (counted by the reader
itself and by an independent ``iter_documents`` pass), the training phase runs its steps, and
the pieces that decide pass/fail (the flatness rule, the metrics follower, the memory-limit
guard) behave as documented. No timing or memory level is asserted: those live in the
benchmark's output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
GB = 1 << 30


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_streaming_rss
    finally:
        sys.path.remove(str(BENCH))
    return bench_streaming_rss


@pytest.fixture(scope="module")
def corpus(bench, shared_data, tmp_path_factory):
    """~0.3 MB of generated documents in several gzipped shards, and its manifest."""
    out = tmp_path_factory.mktemp("stream") / "corpus"
    return bench.write_corpus(out, 300_000, seed=3, shard_bytes=80_000, data_dir=shared_data)


def test_corpus_manifest_matches_an_independent_read(bench, corpus):
    from spanbert.pretrain.corpus import iter_documents

    assert len(corpus["files"]) >= 3 and not corpus["reused"]
    docs = list(iter_documents(corpus["files"]))
    assert len(docs) == corpus["documents"]
    assert sum(len(d) for d in docs) == corpus["text_chars"]
    assert sum(len(d.encode("utf-8")) for d in docs) == corpus["text_bytes"] >= 300_000


def test_corpus_is_reused_with_the_same_settings(bench, corpus, shared_data):
    again = bench.write_corpus(Path(corpus["files"][0]).parent, 300_000, seed=3, shard_bytes=80_000,
                               data_dir=shared_data)
    assert again["reused"] and again["files"] == corpus["files"]


@pytest.mark.parametrize("input_shards", [1, None])
def test_data_path_reads_every_document(bench, corpus, tiny_tokenizer_dir, input_shards):
    settings = bench.DataPathSettings(max_length=64, batch_size=8, shuffle_buffer=40, sample_every=2,
                                      max_buffer_input_shards=input_shards)
    report = bench.run_data_path(corpus["files"], tiny_tokenizer_dir, corpus, settings, limit_bytes=8 * GB)
    assert report["documents_seen"] == report["documents_expected"] == corpus["documents"]
    assert report["chars_seen"] == corpus["text_chars"] and report["all_documents_read"]
    assert report["segments"] > report["batches"] > 0 and report["tokens"] > report["segments"]
    assert set(report["rss_mb_at_documents_read"]) == {"0%", "25%", "50%", "75%", "100%"}
    assert all(v > 0 for v in report["rss_mb_at_documents_read"].values())
    assert report["peak_rss_mb"] > 0 and report["under_limit"]
    assert set(report["flatness"]) >= {"first_quarter_mb", "last_quarter_mb", "slope_mb_per_1000_steps", "flat"}
    if input_shards == 1:  # one pipeline numbers the segments 0, 1, 2, ...
        assert report["example_ids_unique"] and report["duplicate_example_ids"] == 0


def test_training_phase_runs_its_steps(bench, corpus, tiny_tokenizer_dir, tmp_path):
    settings = bench.TrainSettings(steps=4, batch_size=4, max_length=32, shuffle_buffer=16, save_every=2)
    report = bench.run_training(corpus["files"], tiny_tokenizer_dir, tmp_path / "train", settings,
                                limit_bytes=8 * GB)
    assert report["steps"] == 4 and report["tokens"] > 0 and report["under_limit"]
    assert list(report["rss_mb_at_step"]) == ["step 1", "step 2", "step 3", "step 4"]
    assert report["peak_rss_mb"] >= report["rss_mb_start"] > 0
    assert (tmp_path / "train" / "metrics.csv").is_file()
    lines = bench.summary_lines({"corpus": corpus, "memory_limit_mb": 8192.0, "corpus_to_limit": 0.0,
                                 "baseline_rss_mb": 1.0, "cpus": 2, "load_average": [0.0], "training": report,
                                 "passed": bench.passed({"training": report})})
    assert lines[-1] in ("result: PASS", "result: FAIL") and any("4 steps" in line for line in lines)


def test_flatness_rule(bench):
    mb = bench.MB
    steps = list(range(1, 101))
    flat = bench.flatness(steps, [500 * mb] * 100, warmup_steps=0)
    assert flat["first_quarter_mb"] == flat["last_quarter_mb"] == 500.0
    assert flat["slope_mb_per_1000_steps"] == pytest.approx(0.0, abs=1e-9) and flat["flat"] is True
    # 5 MB a step: first quarter (steps 1-25) mean 565, last (76-100) 940 > 1.1 * 565 + 50
    rising = bench.flatness(steps, [(500 + 5 * s) * mb for s in steps], warmup_steps=0)
    assert rising["first_quarter_mb"] == pytest.approx(565.0) and rising["last_quarter_mb"] == pytest.approx(940.0)
    assert rising["slope_mb_per_1000_steps"] == pytest.approx(5000.0) and rising["flat"] is False
    # growth confined to the warm-up does not count
    warm = bench.flatness(steps, [(500 + 10 * min(s, 50)) * mb for s in steps], warmup_steps=50)
    assert warm["samples"] == 50 and warm["flat"] is True
    assert bench.flatness([1, 2, 3], [mb] * 3, warmup_steps=0)["flat"] is None


def test_metrics_follower_counts_rows(bench, tmp_path):
    path = tmp_path / "metrics.csv"
    follow = bench.MetricsFollower(path)
    assert follow() == 0
    path.write_text("step,loss\n1,2.0\n2,1.9\n3,1.8\n")
    assert follow() == 3
    with path.open("a") as f:
        f.write("4,1.7\n5,1.6\n")
    assert follow() == 5
    path.write_text("step,loss\n1,2.0\n")  # rewritten by a new session
    assert follow() == 1


def test_memory_limit_interrupts_the_phase(bench, monkeypatch):
    monkeypatch.setattr(bench, "EXCEEDED", [])
    with pytest.raises(bench.MemoryLimitExceeded, match="passed the limit"):
        with bench.RssSampler(limit_bytes=1, interval_s=0.01, hard_exit=False) as sampler:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.005)
    assert bench.EXCEEDED and sampler.exceeded == bench.EXCEEDED[0]
    time.sleep(0.05)  # a late signal would surface here; the handler ignores it once the block is left
    with bench.RssSampler(limit_bytes=1 << 50, interval_s=0.01) as quiet:  # under the limit: no interruption
        time.sleep(0.05)
    assert quiet.exceeded is None and quiet.samples
