"""Crash safety of pre-training: SIGKILL a run at random moments, resume it each time, check it.

One reference run trains a tiny model to the end without interruption. Then the same run
(same seed, CPU) is started, killed with SIGKILL after a random delay, and resumed with
``--resume`` (started afresh with ``--overwrite`` when no checkpoint exists yet), over and
over. After every kill:

* every checkpoint under ``checkpoints/`` is complete and readable: ``trainer_state.json``
  parses, and each ``.safetensors`` file loads (a half-written file fails its header check);
* no step before the last checkpoint is lost: the newest checkpoint's step never goes back,
  and ``metrics.csv`` holds a row for every step up to it.

When the run finishes, its losses must equal the reference run's exactly, step for step, and
its final weights too. If the trials are not used up, a new run starts. Ends after
``--trials`` kills or ``--max-seconds``; exit status 0 when every check passed.

    python benchmarks/kill_resume.py --trials 20
    python benchmarks/kill_resume.py --trials 3 --max-seconds 240   # the short form the tests run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
# One torch thread unless told otherwise: the tiny model gains nothing from more, and two threads
# on a core that other work is using made each step ~10x slower, so the kills ran out of time.
ENV = {"OMP_NUM_THREADS": "1", **os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def pretrain_command(out: Path, tokenizer: Path, steps: int, save_every: int, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "spanbert", "pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"),
           "--corpus", str(DATA / "tiny_corpus.txt"), "--tokenizer", str(tokenizer), "--preset", "tiny",
           "--max-length", "48", "--batch-size", "4", "--max-steps", str(steps), "--save-every", str(save_every),
           "--lr", "3e-3", "--seed", "7", "--precision", "no", "--output", str(out), "--no-progress"]
    return cmd + (["--resume"] if resume else ["--overwrite"])  # afresh: over what a run killed early left


def metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete-looking checkpoint, oldest first."""
    root = out / "checkpoints"
    found = []
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith("step-") and d.name[5:].isdigit():
                found.append((int(d.name[5:]), d))
    return sorted(found)


def check_checkpoints(out: Path) -> list[str]:
    """Problems with the checkpoints under ``out`` (empty when every one is complete and readable)."""
    from safetensors.torch import load_file

    problems = []
    for step, d in checkpoints(out):
        try:
            state = json.loads((d / "trainer_state.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            problems.append(f"{d.name}: trainer_state.json unreadable ({e})")
            continue
        recorded = (state.get("state") or {}).get("step")
        if recorded != step:
            problems.append(f"{d.name}: trainer_state.json says step {recorded}")
        files = sorted(d.glob("*.safetensors"))
        if not files:
            problems.append(f"{d.name}: no safetensors files")
        for f in files:
            try:
                load_file(str(f))
            except Exception as e:  # noqa: BLE001 - any failure to load is what we look for
                problems.append(f"{d.name}/{f.name}: does not load ({str(e).splitlines()[0]})")
    return problems


def run_to_end(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20, help="SIGKILLs to deliver")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps of each run")
    p.add_argument("--save-every", type=int, default=10)
    p.add_argument("--max-seconds", type=float, default=900, help="stop starting new trials after this long")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    p.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary folder)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    start = time.monotonic()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kill_resume."))
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = work / "tokenizer"
    if not tokenizer.exists():
        shutil.copytree(DATA / "tiny_wordpiece", tokenizer)

    reference = work / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    t0 = time.monotonic()
    done = run_to_end(pretrain_command(reference, tokenizer, args.steps, args.save_every, False), 600)
    if done.returncode != 0:
        print(f"the reference run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return 1
    run_seconds = time.monotonic() - t0
    expected = [(r["step"], r["loss"], r["mlm_loss"], r["sbo_loss"]) for r in metrics(reference / "metrics.csv")]
    print(f"reference run: {args.steps} steps in {run_seconds:.1f} s; final loss {expected[-1][1]}", flush=True)

    kills, finished_runs, failures, series = 0, 0, [], 0
    out = work / f"run-{series}"
    shutil.rmtree(out, ignore_errors=True)
    last_step, run_kills = 0, 0
    while kills < args.trials and time.monotonic() - start < args.max_seconds:
        resume = bool(checkpoints(out))
        proc = subprocess.Popen(pretrain_command(out, tokenizer, args.steps, args.save_every, resume), env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        delay = rng.uniform(0.3, run_seconds)  # anywhere from start-up to the end of training
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            run_kills += 1
            newest = checkpoints(out)[-1][0] if checkpoints(out) else 0
            problems = check_checkpoints(out)
            if newest < last_step:
                problems.append(f"the newest checkpoint went back from step {last_step} to {newest}")
            logged = {int(r["step"]) for r in metrics(out / "metrics.csv")}
            missing = [s for s in range(1, newest + 1) if s not in logged]
            if missing:
                problems.append(f"metrics.csv lacks steps {missing[:5]} before the last checkpoint (step {newest})")
            last_step = max(last_step, newest)
            print(f"kill {kills}: after {delay:.1f} s; newest checkpoint step {newest}; "
                  f"{'OK' if not problems else 'PROBLEMS: ' + '; '.join(problems)}", flush=True)
            failures += [f"kill {kills}: {x}" for x in problems]
            continue
        if proc.returncode != 0:
            failures.append(f"run {series} exited with {proc.returncode}: {proc.stderr.read()[-500:]}")
            break
        got = [(r["step"], r["loss"], r["mlm_loss"], r["sbo_loss"]) for r in metrics(out / "metrics.csv")]
        same_weights = (out / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
        if got != expected:
            diff = next((a, b) for a, b in zip(got + [None] * len(expected), expected) if a != b)
            failures.append(f"run {series}: losses differ from the uninterrupted run, first at {diff}")
        if not same_weights:
            failures.append(f"run {series}: final weights differ from the uninterrupted run")
        finished_runs += 1
        print(f"run {series} finished after {run_kills} kill(s); losses {'equal' if got == expected else 'DIFFERENT'} to the "
              f"uninterrupted run at all {len(got)} steps; final weights {'identical' if same_weights else 'DIFFERENT'}",
              flush=True)
        series += 1
        out, last_step, run_kills = work / f"run-{series}", 0, 0

    if checkpoints(out) or (out / "metrics.csv").exists():  # finish the run in progress and compare it too
        done = run_to_end(pretrain_command(out, tokenizer, args.steps, args.save_every, bool(checkpoints(out))), 600)
        got = [(r["step"], r["loss"], r["mlm_loss"], r["sbo_loss"]) for r in metrics(out / "metrics.csv")]
        ok = done.returncode == 0 and got == expected and \
            (out / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
        finished_runs += 1
        if not ok:
            failures.append(f"run {series}: the final resume did not end where the uninterrupted run did")
        print(f"run {series} finished: losses and weights {'equal' if ok else 'DIFFERENT'} to the uninterrupted run",
              flush=True)
    print(f"{kills} kills, {finished_runs} runs finished, {len(failures)} problems, "
          f"{time.monotonic() - start:.0f} s", flush=True)
    for f in failures:
        print(f"  {f}", flush=True)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failures and kills >= min(args.trials, 1) else 1


if __name__ == "__main__":
    raise SystemExit(main())
