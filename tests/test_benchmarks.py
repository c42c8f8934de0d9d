"""The benchmark scripts still run (tiny sizes; no timing is asserted: speed lives in benchmarks/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_pretrain_benchmark_runs(minilm_dir):
    out = run("bench_pretrain.py", "--steps", "1", "--batch", "2", "--length", "32", "--profile", "1")
    assert "ratio (ours / baseline tokens/s):" in out and "MFU" in out and "CPU: " in out
    # the profile names the matrix products and the share of the rest
    assert "| `aten::" in out and "matrix products" in out


@pytest.mark.slow
def test_finetune_benchmark_runs(minilm_dir):
    sample = Path(__file__).parent / "data" / "squad" / "xquad_en_sample.json"
    out = run("bench_finetune_qa.py", "--steps", "4", "--warmup", "1", "--batch", "2", "--questions", "8",
              "--data", str(sample))
    assert "ratio (ours / baseline windows/s):" in out and "CPU: " in out
    # both sides trained on the same 8 questions, cut into windows the same way
    line = next(x for x in out.splitlines() if x.startswith("training windows:"))
    assert line.split("ours ")[1].split()[0] == line.split("run_qa.py ")[1].split()[0]


@pytest.mark.slow
def test_collator_benchmark_runs(minilm_dir):
    out = run("bench_collator.py", "--batches", "2", "--repeats", "1", "--batch-size", "4")
    assert "ratio ours / transformers:" in out


@pytest.mark.slow
def test_gpu_benchmark_runs_on_cpu():
    out = run("bench_gpu_pretrain.py", "--device", "cpu", "--preset", "tiny", "--batch", "2", "--length", "32",
              "--steps", "1", "--peak-tflops", "0.1", "--profile", "1")
    assert "tokens/s" in out and "MFU" in out
    assert "baseline BertForMaskedLM (sdpa)" in out and "ratio (ours / baseline tokens/s):" in out
    # the profile's table of top kernels (CPU operators here), with the per-step total
    assert "| kernel | self CPU ms/step |" in out and "| `aten::" in out and "| all |" in out


@pytest.mark.slow
def test_shape_memory_benchmark_runs():
    out = run("bench_shape_memory.py", "--steps", "8", "--preset", "tiny", "--batch", "2", "--max-length", "32",
              "--vocab", "500")
    assert "unbucketed" in out and "bucketed (ours)" in out and "MB per 100 steps" in out
