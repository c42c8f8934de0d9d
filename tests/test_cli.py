"""The command line end to end: bad input gives one line and a non-zero exit; a killed run resumes exactly."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DATA

ENV = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("SPANBERT_DEBUG", None)


def spanbert(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spanbert", *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def assert_one_line_error(run: subprocess.CompletedProcess, *needles: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


def tiny_pretrain_args(tokenizer_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"), "--corpus", str(DATA / "tiny_corpus.txt"),
            "--tokenizer", str(tokenizer_dir), "--preset", "tiny", "--max-length", "48", "--batch-size", "4",
            "--output", str(out), "--no-progress", *extra]


def test_missing_corpus(tmp_path, tiny_tokenizer_dir):
    missing = tmp_path / "nope.txt"
    run = spanbert(*tiny_pretrain_args(tiny_tokenizer_dir, tmp_path / "out")[:1], "--corpus", str(missing),
                   "--tokenizer", str(tiny_tokenizer_dir), "--output", str(tmp_path / "out"))
    assert_one_line_error(run, str(missing))


def test_empty_corpus(tmp_path, tiny_tokenizer_dir):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n")
    run = spanbert("pretrain", "--corpus", str(empty), "--tokenizer", str(tiny_tokenizer_dir), "--output", str(tmp_path / "o"))
    assert_one_line_error(run, "empty.txt")


def test_non_utf8_corpus_names_file_and_line(tmp_path, tiny_tokenizer_dir):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("first line is fine\nsecond line: caf\xe9\n".encode("latin-1"))
    run = spanbert("pretrain", "--corpus", str(bad), "--tokenizer", str(tiny_tokenizer_dir), "--output", str(tmp_path / "o"))
    assert_one_line_error(run, "latin1.txt", "2")


def test_malformed_jsonl_names_file_and_line(tmp_path, tiny_tokenizer_dir):
    bad = tmp_path / "docs.jsonl.gz"
    with gzip.open(bad, "wt") as f:
        f.write(json.dumps({"text": "A fine document."}) + "\n" + "{not json\n")
    run = spanbert("pretrain", "--corpus", str(bad), "--tokenizer", str(tiny_tokenizer_dir), "--output", str(tmp_path / "o"))
    assert_one_line_error(run, "docs.jsonl.gz", "2")


def test_unknown_preset(tmp_path, tiny_tokenizer_dir):
    run = spanbert(*tiny_pretrain_args(tiny_tokenizer_dir, tmp_path / "o", "--preset", "gigantic"))
    assert_one_line_error(run, "--preset", "gigantic")


def test_tokenizer_without_mask_token(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "the": 2, "union": 3}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(tmp_path / "tok")
    run = spanbert("pretrain", "--corpus", str(DATA / "tiny_corpus.txt"), "--tokenizer", str(tmp_path / "tok"),
                   "--output", str(tmp_path / "o"))
    assert_one_line_error(run, "mask token")


def test_missing_tokenizer_dir(tmp_path):
    run = spanbert("pretrain", "--corpus", str(DATA / "tiny_corpus.txt"), "--tokenizer", str(tmp_path / "no-tok"),
                   "--output", str(tmp_path / "o"))
    assert_one_line_error(run, "no-tok")


def test_resume_without_checkpoint(tmp_path, tiny_tokenizer_dir):
    run = spanbert(*tiny_pretrain_args(tiny_tokenizer_dir, tmp_path / "o", "--resume"))
    assert_one_line_error(run, "--resume")


def test_fill_needs_trained_heads(minilm_dir):
    run = spanbert("fill", "--model", str(minilm_dir), "The [MASK] of the Union.")
    assert_one_line_error(run, "MLM/SBO head")


def _metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_losses(tmp_path, tiny_tokenizer_dir):
    """SIGKILL a run after its second checkpoint; --resume must end exactly where an uninterrupted run does."""
    args = ("--max-steps", "40", "--save-every", "5", "--lr", "3e-3")
    whole = spanbert(*tiny_pretrain_args(tiny_tokenizer_dir, tmp_path / "whole", *args))
    assert whole.returncode == 0, whole.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "spanbert", *tiny_pretrain_args(tiny_tokenizer_dir, out, *args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "step-00000010" / "trainer_state.json").exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists()  # it really was cut short

    resumed = spanbert(*tiny_pretrain_args(tiny_tokenizer_dir, out, *args, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _metrics(tmp_path / "whole" / "metrics.csv"), _metrics(out / "metrics.csv")
    assert [r["step"] for r in b] == [str(i) for i in range(1, 41)]
    for ra, rb in zip(a, b):
        for key in ("loss", "mlm_loss", "sbo_loss", "lr", "grad_norm", "tokens"):
            assert ra[key] == rb[key], (ra["step"], key)


@pytest.mark.slow
def test_pretrain_then_fill_from_the_command_line(tmp_path, tiny_tokenizer_dir):
    out = tmp_path / "run"
    run = spanbert(*tiny_pretrain_args(tiny_tokenizer_dir, out, "--max-steps", "3", "--save-every", "0"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "loss curve:" in run.stdout
    fill = spanbert("fill", "--model", str(out), "--json", "The people of the [MASK] [MASK] have spoken.")
    assert fill.returncode == 0, fill.stderr[-2000:]
    result = json.loads(fill.stdout)[0]
    span = result["spans"][0]
    assert span["end"] - span["start"] == 1
    assert set(span["predictions"]) == {"mlm", "sbo", "joint", "iterative"}
    for head in ("mlm", "sbo", "joint", "iterative"):
        assert len(span["predictions"][head]["token_ids"]) == 2
    no_mask = spanbert("fill", "--model", str(out), "Nothing to fill here.")
    assert_one_line_error(no_mask, "no [MASK]")


@pytest.mark.slow
def test_demo_entry_point_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    run = spanbert("demo", "--output", str(out), "--init-from", "none", "--steps", "30", "--minutes", "5", "--no-progress")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "trained 30 of 30 planned steps" in run.stdout and "cut short by the time cap" not in run.stdout
    assert "held-out test split" in run.stdout and "unigram baseline" in run.stdout
    assert run.stdout.count("truth -> [") == 3 and "Prompts:" in run.stdout
    assert f"loss curve: {out / 'loss_curve.png'}" in run.stdout
    assert (out / "loss_curve.png").is_file() and (out / "model.safetensors").is_file()
    report = json.loads((out / "heldout_scores.json").read_text())
    assert report["steps"] == 30 and not report["cut_short_by_time_cap"]
    for split in ("dev", "test"):
        for head in ("mlm", "sbo", "joint", "unigram"):
            assert 0 <= report[split][f"{head}_top1"] <= report[split][f"{head}_top5"] <= 1
    held_out = set(report["splits"]["test"]["blocks"]) | set(report["splits"]["dev"]["blocks"])
    assert held_out and not held_out & set(report["splits"]["train"]["blocks"])
    capped = spanbert("demo", "--output", str(tmp_path / "capped"), "--init-from", "none", "--steps", "1000",
                      "--minutes", "0.0001", "--no-progress")
    assert capped.returncode == 0, capped.stderr[-2000:]
    assert "cut short by the time cap" in capped.stdout and "of 1,000 planned steps" in capped.stdout
