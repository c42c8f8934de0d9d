"""Run the same `spanbert` command as one process and as two under torchrun, both with --batch-size 4
(the global batch: 2 sequences each in two processes), in fp32 (--precision no)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def one_and_two_processes(common: list[str], out: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """``common`` run into ``out/one`` by one process and into ``out/two`` by two; both must succeed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    common = [*common, "--batch-size", "4", "--precision", "no"]
    one = subprocess.run([sys.executable, "-m", "spanbert", *common, "--output", str(out / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "spanbert", *common, "--output", str(out / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    return one, two
