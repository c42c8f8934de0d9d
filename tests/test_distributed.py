"""Two CPU processes (torchrun, gloo DDP) give the loss and gradient of one process on the full batch."""

from __future__ import annotations

import csv

import pytest

from .conftest import DATA
from .ddp_runs import one_and_two_processes


def _metrics(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_full_batch(tiny_tokenizer_dir, tmp_path):
    common = [
        "pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"), "--corpus", str(DATA / "tiny_corpus.txt"),
        "--tokenizer", str(tiny_tokenizer_dir), "--preset", "tiny", "--max-length", "48", "--dropout", "0",
        "--max-steps", "2", "--save-every", "0", "--no-progress",
    ]
    one, two = one_and_two_processes(common, tmp_path)
    assert two.stdout.count("model:") == 1  # one summary, from rank 0
    a, b = _metrics(tmp_path / "one" / "metrics.csv"), _metrics(tmp_path / "two" / "metrics.csv")
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        # grad_norm is measured after DDP's all-reduce: equal norms mean equal global gradients
        for key in ("loss", "mlm_loss", "sbo_loss", "grad_norm", "tokens"):
            assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-6), (ra["step"], key)
