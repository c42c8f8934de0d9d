"""The QA benchmarks run in-process at tiny sizes, and their two sides agree (no timing asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inference_bench():
    return load("bench_qa_inference")


@pytest.fixture(scope="module")
def features_bench():
    return load("bench_qa_features")


@pytest.mark.slow
def test_inference_benchmark_quick_answers_match(inference_bench, shared_data, minilm_dir, capsys):
    results = inference_bench.main(["--quick", "--data", str(shared_data)])
    out = capsys.readouterr().out
    assert "ratio (ours fp32 / reference questions/s):" in out and "peak RSS" in out
    assert results["questions"] == 3 and results["docs"] == 1
    assert results["windows"] > results["questions"]  # several windows per question: max-context matters
    assert results["window_mismatches"] == {}
    assert results["peak_rss_mb"] > 0
    sides = results["sides"]
    assert {"reference", "ours fp32"} <= set(sides)
    assert ("ours bf16" in sides) == results["bf16"] == ("reference bf16" in sides)
    for name, side in sides.items():
        assert side["questions_per_s"] > 0 and side["seconds"] > 0
        assert len(side["answers"]) == 3
        assert "model" in side["stages"]
        if name.startswith("ours"):  # compared with the fp32 reference and the one at its precision
            assert 0 <= side["identical"] <= 1 and side["ratio"] > 0
            assert 0 <= side["identical_equal_precision"] <= 1 and side["ratio_equal_precision"] > 0
    fp32 = sides["ours fp32"]
    assert fp32["identical"] == 1.0 and fp32["differences"] == []
    assert fp32["answers"] == sides["reference"]["answers"]
    assert all(text for text, _, _ in fp32["answers"])  # a span, not "no answer" (SQuAD 1.1 settings)


@pytest.mark.slow
def test_inference_window_check_catches_different_windows(inference_bench, minilm_dir):
    """Sanity of the checker: equal windows pass; a question over 64 tokens (ours truncates it,
    the reference does not) is reported."""
    from transformers import AutoTokenizer

    from spanbert.tasks.qa.data import QAExample
    from spanbert.tasks.qa.settings import QASettings

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir))
    context = " ".join(f"word{i % 97} and sentence {i}." for i in range(400))
    short = QAExample("s", "What is word12?", context)
    long = QAExample("l", " ".join(["why"] * 80) + "?", context)
    assert inference_bench.check_windows(tokenizer, short, QASettings()) is None
    assert inference_bench.check_windows(tokenizer, long, QASettings()) is not None


def test_inference_benchmark_skips_without_data(inference_bench, tmp_path, capsys):
    assert inference_bench.main(["--quick", "--data", str(tmp_path)]) is None
    assert "skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_features_benchmark_quick_same_coverage(features_bench, shared_data, minilm_dir, capsys):
    results = features_bench.main(["--quick", "--data", str(shared_data)])
    out = capsys.readouterr().out
    assert "ratio ours / reference examples/s:" in out
    n = results["examples"]
    assert n == 300
    assert results["same_coverage"] and results["covered_ours"] == results["covered_reference"] == n
    assert results["differing_examples"] == []
    for side in ("ours", "reference"):
        assert results[side]["examples_per_s"] > 0 and results[side]["windows"] >= n
    if results["long_questions"] == 0:
        assert results["ours"]["windows"] == results["reference"]["windows"]
    assert results["ratio"] > 0


def test_features_benchmark_skips_without_data(features_bench, tmp_path, capsys):
    assert features_bench.main(["--quick", "--data", str(tmp_path)]) is None
    assert "skipped" in capsys.readouterr().out
