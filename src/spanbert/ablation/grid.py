"""The grid's cells, their folders, and a runner that does the missing ones and skips the rest.

Layout under the grid's output folder::

    config.json                                   the resolved config of the last run
    prepare/                                      logs of the [[prepare]] commands
    pretrain/<objective>/run/                     a `spanbert pretrain` run folder (checkpoints, model)
    pretrain/<objective>/cell.json                written last: the cell is done (+ metrics.csv, held-out metrics)
    finetune/<task>/<objective>/seed-<s>/model/   the fine-tuned model (removed when done, unless keep_models)
    finetune/<task>/<objective>/seed-<s>/test/    test metrics and gzipped predictions, scored once
    finetune/<task>/<objective>/seed-<s>/cell.json (+ finetune_summary.json, dev_history.jsonl, log.txt)

A finished grid folder without the ``pretrain/*/run/`` folders is small (a few MB) and holds all
the report needs, so it can be kept in version control and a grid can go on in another session
on another machine: a pre-training cell whose weights are gone is run again (it is seeded) when
fine-tuning cells still need it.

Every cell runs in its own process (``python -m spanbert ...``) with its output in ``log.txt``.
A cell is done when its ``cell.json`` exists (written atomically after everything else); a
rerun skips done cells, resumes a pre-training cell from its newest checkpoint, and starts an
unfinished fine-tuning cell over. ``cell.json`` records a fingerprint of what decides the
cell's result, so a changed config never silently reuses an old cell.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from spanbert.core.atomic import atomic_write_json
from spanbert.core.errors import ConfigError, SpanBertError
from spanbert.ablation.config import OBJECTIVES, AblationConfig, TaskSpec

CELL_FILE = "cell.json"


class CellFailed(SpanBertError):
    """A cell's command ended with a non-zero exit status."""


@dataclass(frozen=True)
class Cell:
    """One unit of work: a pre-training run of an objective, or one fine-tune + test of (task, objective, seed)."""

    kind: str  # "pretrain" or "finetune"
    objective: str
    task: TaskSpec | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "pretrain":
            return f"pretrain/{self.objective}"
        return f"finetune/{self.task.name}/{self.objective}/seed-{self.seed}"

    def folder(self, config: AblationConfig) -> Path:
        return config.output / self.name

    def fingerprint(self, config: AblationConfig) -> str:
        """A hash of everything that decides this cell's result."""
        parts = {"objective": self.objective}
        if self.objective != "none":
            parts["pretrain"] = config.pretrain_fingerprint()
        else:  # the starting point only
            raw = config.raw_pretrain
            parts["start"] = {k: raw.get(k) for k in ("init_from", "preset", "tokenizer", "seed")} if raw else \
                (config.pretrain.init_from or f"{config.pretrain.preset}:{config.pretrain.seed}")
        if self.kind == "finetune":
            parts.update(task=config.task_fingerprint(self.task), seed=self.seed)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def cells(config: AblationConfig) -> list[Cell]:
    """Every cell in run order: objective by objective, its pre-training then its fine-tuning cells,
    so that a grid stopped part-way has whole objectives done."""
    out = []
    for objective in config.objectives:
        if OBJECTIVES[objective] is not None or config.pretrain.init_from is None:
            out.append(Cell("pretrain", objective))
        for task in config.tasks:
            for seed in config.seeds:
                out.append(Cell("finetune", objective, task, seed))
    return out


def read_cell(cell: Cell, config: AblationConfig) -> dict | None:
    """The cell's record if it is done (and was made by this config), else None."""
    path = cell.folder(config) / CELL_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("fingerprint") != cell.fingerprint(config):
        raise ConfigError(f"{path}: this cell was made with another config (fingerprint {record.get('fingerprint')} != "
                          f"{cell.fingerprint(config)}); use another output folder or delete the cell")
    return record


def encoder_folder(config: AblationConfig, objective: str) -> Path:
    """The encoder the fine-tuning cells of ``objective`` start from."""
    if objective == "none" and config.pretrain.init_from is not None:
        return Path(config.pretrain.init_from)
    return config.output / "pretrain" / objective / "run"


# -- running commands -------------------------------------------------------------------------


def _env(config: AblationConfig) -> dict[str, str]:
    env = dict(os.environ)
    if config.threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(config.threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def machine(config: AblationConfig) -> dict:
    """Where a cell ran: the CPU's model name (from /proc/cpuinfo where there is one) and its torch threads."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "threads": config.threads}


def _run(argv: list[str], log_path: Path, config: AblationConfig, what: str) -> None:
    """Run one command with its output appended to ``log_path``; a failure is one line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, env=_env(config))
    if code != 0:
        lines = [x for x in log_path.read_text(errors="replace").splitlines() if x.strip()]
        raise CellFailed(f"{what} failed (exit {code}): {lines[-1] if lines else ''} (log: {log_path})")


def spanbert_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "spanbert", *args]


def run_prepare(config: AblationConfig, echo: Callable[[str], None]) -> None:
    """The [[prepare]] commands whose ``creates`` path is missing."""
    for i, step in enumerate(config.prepare):
        stamp = config.output / "prepare" / f"step-{i}.json"
        # as written in the config (placeholders unexpanded): another clone or interpreter is not a change
        command = config.raw_prepare[i] if i < len(config.raw_prepare) else {"run": list(step.run), "creates": step.creates}
        if Path(step.creates).exists():
            if stamp.is_file() and json.loads(stamp.read_text()) != command:
                raise ConfigError(f"prepare[{i}]: the command changed since it made {step.creates}; delete that "
                                  "(and the cells that used it) to make it again")
            continue
        echo(f"prepare[{i}]: {' '.join(step.run)}")
        _run(list(step.run), config.output / "prepare" / f"step-{i}.log", config, f"prepare[{i}]")
        if not Path(step.creates).exists():
            raise CellFailed(f"prepare[{i}]: finished but did not create {step.creates}")
        atomic_write_json(stamp, command)


def _last_metrics_row(run: Path) -> dict[str, str]:
    with (run / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise CellFailed(f"{run / 'metrics.csv'}: no rows")
    return rows[-1]


def _pretrain_record(config: AblationConfig, run: Path) -> dict:
    """Steps, tokens, FLOPs, losses and held-out metrics of a finished pre-training run."""
    from spanbert.core.flops import pretraining_step_flops

    last = _last_metrics_row(run)
    steps, tokens = int(last["step"]), int(float(last["tokens"]))
    cfg = json.loads((run / "config.json").read_text())
    if last.get("flops"):
        flops, flops_source = float(last["flops"]), "counted per step"
    else:  # the loop did not count them: full-width batches, 15% masked, every masked token an SBO target
        from transformers import BertConfig

        bert = BertConfig(**{k: cfg[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size")})
        shape = (config.pretrain.batch_size, config.pretrain.max_length)
        masked = int(0.15 * shape[0] * shape[1])
        flops, flops_source = steps * pretraining_step_flops(bert, shape, masked, masked), "estimated (full-width batches)"
    record = {"steps": steps, "tokens": tokens, "token_slots": steps * config.pretrain.tokens_per_step, "flops": flops,
              "flops_source": flops_source, "train_seconds": float(last["elapsed_s"]),
              "final": {k: float(last[k]) for k in ("loss", "mlm_loss", "sbo_loss")}}
    heldout = run / "heldout_summary.json"
    if heldout.is_file():
        record["heldout"] = json.loads(heldout.read_text())
    return record


def run_pretrain_cell(cell: Cell, config: AblationConfig, echo: Callable[[str], None]) -> dict:
    """Pre-train one objective (resuming its run if it has checkpoints), or save the random
    initial weights for the from-scratch control."""
    folder = cell.folder(config)
    run = folder / "run"
    start = time.perf_counter()
    spec = config.pretrain
    if OBJECTIVES[cell.objective] is None:  # from scratch, no pre-training: the seeded initial weights
        save_initial_model(config, run)
        record = {"steps": 0, "tokens": 0, "token_slots": 0, "flops": 0.0}
    else:
        scheme, sbo_weight = OBJECTIVES[cell.objective]
        argv = spanbert_argv("pretrain", "--output", str(run), "--masking", scheme, "--sbo-weight", str(sbo_weight),
                             "--max-length", str(spec.max_length), "--batch-size", str(spec.batch_size),
                             "--max-steps", str(spec.steps), "--lr", str(spec.lr), "--seed", str(spec.seed),
                             "--mixed-precision", spec.mixed_precision, "--save-every", str(spec.save_every),
                             "--no-progress")
        for c in spec.corpus:
            argv += ["--corpus", c]
        if spec.init_from:
            argv += ["--init-from", spec.init_from]
        else:
            argv += ["--preset", spec.preset, "--tokenizer", spec.tokenizer]
        if spec.warmup_steps is not None:
            argv += ["--warmup-steps", str(spec.warmup_steps)]
        if (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir()):
            argv.append("--resume")
            echo(f"{cell.name}: resuming from its newest checkpoint")
        else:  # afresh, over whatever an attempt killed before its first checkpoint left
            argv.append("--overwrite")
        argv += list(spec.args)
        _run(argv, folder / "log.txt", config, cell.name)
        record = _pretrain_record(config, run)
        for name in ("metrics.csv", "heldout_metrics.jsonl", "heldout_summary.json", "training_args.json"):
            if (run / name).is_file():  # the run folder is large and local; these stay with the cell
                shutil.copy2(run / name, folder / name)
    record.update(cell=cell.name, kind="pretrain", objective=cell.objective, fingerprint=cell.fingerprint(config),
                  **machine(config), seconds=round(time.perf_counter() - start, 1), finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    atomic_write_json(folder / CELL_FILE, record)
    return record


def save_initial_model(config: AblationConfig, folder: Path) -> None:
    """The from-scratch control: the preset's initial weights under the pre-training seed (as
    `spanbert pretrain` would start them) and the grid's tokenizer, saved as a model folder."""
    import torch

    from spanbert.pretrain.modeling import SpanBertForPreTraining, config_from_preset
    from spanbert.core.checkpoints import load_tokenizer
    from spanbert.pretrain.train import save_final_model

    spec = config.pretrain
    tokenizer = load_tokenizer(spec.tokenizer)
    torch.manual_seed(spec.seed)
    model = SpanBertForPreTraining(config_from_preset(spec.preset, vocab_size=len(tokenizer),
                                                      max_position_embeddings=max(512, spec.max_length),
                                                      pad_token_id=tokenizer.pad_token_id))
    folder.mkdir(parents=True, exist_ok=True)
    save_final_model(folder, model, tokenizer)


# headline test metric of each task kind, read from the evaluation's metrics.json, in percent
def headline_metric(kind: str, metrics: dict) -> float:
    """The number a task is compared on: SQuAD F1, entity micro F1 (seqeval), SemEval official macro-F1
    (micro F1 without no-relation for TACRED-style data); all in percent."""
    if kind == "qa":
        return float(metrics["f1"])
    if kind == "ner":
        return 100.0 * float(metrics["f1"])
    return float(metrics.get("official_macro_f1", metrics.get("micro_f1")))


def run_finetune_cell(cell: Cell, config: AblationConfig, echo: Callable[[str], None]) -> dict:
    """Fine-tune the objective's encoder on the task with dev selection, then score test once."""
    folder = cell.folder(config)
    if folder.exists():  # an unfinished earlier attempt: start over
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    task = cell.task
    encoder = encoder_folder(config, cell.objective)
    if not (encoder / "config.json").is_file():
        raise CellFailed(f"{cell.name}: the encoder {encoder} is missing (its pre-training cell has not run)")
    model_dir, test_dir = folder / "model", folder / "test"
    argv = spanbert_argv("finetune", task.kind, "--model", str(encoder), "--train", task.train, "--dev", task.dev,
                         "--output", str(model_dir), "--seed", str(cell.seed), "--no-progress", *task.args)
    _run(argv, folder / "log.txt", config, f"{cell.name} (finetune)")
    eval_argv = spanbert_argv("evaluate", task.kind, "--model", str(model_dir), "--data", task.test,
                              "--output", str(test_dir), *task.eval_args)
    _run(eval_argv, folder / "log.txt", config, f"{cell.name} (test)")
    summary = json.loads((model_dir / "finetune_summary.json").read_text())
    test = json.loads((test_dir / "metrics.json").read_text())
    trim_finetune_cell(folder, keep_model=config.keep_models)
    record = {
        "cell": cell.name, "kind": "finetune", "objective": cell.objective, "task": task.name, "task_kind": task.kind,
        "seed": cell.seed, "fingerprint": cell.fingerprint(config), "encoder": str(encoder),
        "selected_on_dev": summary.get("selected_on_dev"), "dev_metrics": summary.get("dev_metrics"),
        "steps": summary.get("steps"), "train_seconds": summary.get("train_seconds"),
        "test_score": headline_metric(task.kind, test["metrics"]), "test_metrics": _scalars(test["metrics"]),
        **machine(config),
        "seconds": round(time.perf_counter() - start, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(folder / CELL_FILE, record)
    return record


# what a finished fine-tuning cell keeps (small enough to commit): the report's inputs and the summaries
KEPT_TEST_FILES = ("metrics.json", "predictions.json", "predictions.conll", "predictions.jsonl")
KEPT_MODEL_FILES = ("finetune_summary.json", "dev_history.jsonl", "finetune_metrics.csv")


def trim_finetune_cell(folder: Path, keep_model: bool = False) -> None:
    """Drop what the report does not read: the model folder (unless ``keep_model``; its summary,
    dev history and training curve move up into the cell), the n-best and scorer copies of the
    test predictions; the predictions themselves are gzipped."""
    import gzip

    model_dir, test_dir = folder / "model", folder / "test"
    for name in KEPT_MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, folder / name)
    if not keep_model:
        shutil.rmtree(model_dir)
    for path in test_dir.iterdir():
        if path.name not in KEPT_TEST_FILES:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif path.name.startswith("predictions."):
            with path.open("rb") as src, path.with_name(path.name + ".gz").open("wb") as raw, \
                    gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as dst:  # same bytes every run
                shutil.copyfileobj(src, dst)
            path.unlink()


def _scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}


def run_grid(config: AblationConfig, echo: Callable[[str], None] = print, only_objectives: set[str] | None = None,
             max_cells: int | None = None) -> int:
    """Run every missing cell in order (``only_objectives``: those objectives only; ``max_cells``:
    stop after running that many). Returns the number of cells run."""
    config.output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.output / "config.json", _resolved(config))
    run_prepare(config, echo)
    todo = [c for c in cells(config) if only_objectives is None or c.objective in only_objectives]
    ran = 0
    for cell in todo:
        if read_cell(cell, config) is not None:
            continue
        if max_cells is not None and ran >= max_cells:
            break
        if cell.kind == "finetune" and (cell.objective != "none" or config.pretrain.init_from is None):
            pre = Cell("pretrain", cell.objective)
            if read_cell(pre, config) is None:
                raise CellFailed(f"{cell.name}: its pre-training cell {pre.name} is not done")
            if not (encoder_folder(config, cell.objective) / "model.safetensors").is_file():
                echo(f"{pre.name}: its weights are gone; pre-training again (the run is seeded)")
                before = read_cell(pre, config)
                shutil.rmtree(pre.folder(config))
                recreate_encoder(pre, config, echo, before)
        echo(f"{cell.name}: running")
        record = (run_pretrain_cell if cell.kind == "pretrain" else run_finetune_cell)(cell, config, echo)
        ran += 1
        done = f"test {record['test_score']:.2f}" if cell.kind == "finetune" else f"{record.get('tokens', 0):,} tokens"
        echo(f"{cell.name}: done in {record['seconds']:.0f} s ({done})")
    return ran


def recreate_encoder(cell: Cell, config: AblationConfig, echo: Callable[[str], None], before: dict) -> dict:
    """Pre-train ``cell`` again because its weights are gone (they are not kept with the grid: a
    new clone or machine), and say whether the new run reproduced the recorded one: the same final
    loss to 1e-4 (another CPU or precision can give other weights, and the objective's fine-tuning
    cells then mix two encoders). The new cell.json keeps the earlier record as ``previous``."""
    record = run_pretrain_cell(cell, config, echo)
    old, new = (before.get("final") or {}).get("loss"), (record.get("final") or {}).get("loss")
    same = old is not None and new is not None and abs(old - new) <= 1e-4
    if not same:
        echo(f"{cell.name}: WARNING: the new run ends at loss {new} where the recorded one ended at {old} "
             f"(recorded on {before.get('cpu', 'an unrecorded CPU')}); its fine-tuning cells now mix two encoders")
    record.update(previous={k: before.get(k) for k in ("final", "cpu", "threads", "finished")}, reproduced=same)
    atomic_write_json(cell.folder(config) / CELL_FILE, record)
    return record


def _resolved(config: AblationConfig) -> dict:
    out = asdict(config)
    out["output"], out["source"] = str(config.output), str(config.source)
    out["pretrain_fingerprint"] = config.pretrain_fingerprint()
    return out


def grid_status(config: AblationConfig) -> list[dict]:
    """One row per cell: name, state (done / started / pending), seconds and result when done."""
    rows = []
    for cell in cells(config):
        folder = cell.folder(config)
        record = read_cell(cell, config)
        if record is not None:
            result = (f"test {record['test_score']:.2f}" if cell.kind == "finetune"
                      else f"{record.get('tokens', 0):,} tokens, {record.get('steps', 0)} steps")
            rows.append({"cell": cell.name, "state": "done", "seconds": record["seconds"], "result": result})
        else:
            rows.append({"cell": cell.name, "state": "started" if folder.exists() else "pending", "seconds": None,
                         "result": ""})
    return rows


__all__ = ["Cell", "CellFailed", "cells", "encoder_folder", "grid_status", "headline_metric", "read_cell", "run_grid"]
