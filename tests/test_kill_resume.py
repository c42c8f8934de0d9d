"""The crash-safety script in its short form (3 SIGKILLs at random moments, each resumed): every
checkpoint stays readable, no step before the last checkpoint is lost, and the resumed runs end
with exactly the losses and weights of an uninterrupted run. `python benchmarks/kill_resume.py
--trials 20` is the full form."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_three_random_kills_resume_to_the_uninterrupted_run(tmp_path, capsys):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import kill_resume
    finally:
        sys.path.remove(str(BENCHMARKS))
    rc = kill_resume.main(["--trials", "3", "--steps", "120", "--max-seconds", "240", "--seed", "1",
                           "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "3 kills" in out and "0 problems" in out
    assert "DIFFERENT" not in out and "PROBLEMS" not in out
