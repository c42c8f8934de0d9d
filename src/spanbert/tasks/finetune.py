"""A fine-tuning loop shared by the span tasks (QA, classification, NER, relations, ...).

The task supplies a model whose ``forward(**batch)`` returns ``.loss`` (a mean over the
batch), the number of training items, and a ``collate(indices) -> batch`` function. Batches
group items of similar length (shuffled groups of 50 batches, sorted inside) so that padding
stays small; the order depends only on (seed, epoch). AdamW with linear warm-up and decay,
gradient clipping, gradient accumulation, bf16 autocast where the CPU/GPU has it, a wall-clock
budget, and a metrics CSV. Runs as one process, or as one of many under
``torchrun``/``accelerate launch``.

With a :class:`DevEvaluation`, the loop scores the model on the task's dev data at the end of
every epoch (or every ``eval_every`` steps) and, unless ``select_best`` is off, ends with the
weights of the best evaluation: the number of epochs (or steps) is chosen on dev, never on
test. Every evaluation is a line of ``dev_history.jsonl``; ``early_stopping`` ends the run
after that many evaluations without a better score.

The output folder belongs to one run (:mod:`spanbert.core.run_folder`). Checkpoints
(``checkpoints/step-N``: weights, optimizer, schedule, the RNGs of torch, numpy and Python, the
position in the epoch's batch order, the dev history and the best score so far) are written
atomically at every dev evaluation (or epoch end, or every ``save_every`` steps); ``resume``
continues from the newest intact one to the same weights and metrics as an uninterrupted run.
``training_args.json`` records every setting, the data, the precision used and the versions.

    spanbert finetune qa --model run/ --train train.json --dev dev.json --output qa/
    spanbert finetune qa ... --output qa/ --resume        # after a crash or a kill
    torchrun --standalone --nproc-per-node 2 -m spanbert finetune qa ...
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import CheckpointError, ConfigError, one_line
from spanbert.core.run_folder import (HISTORY_FILE, METRICS_FILE, TRAINING_ARGS_FILE, check_output_folder, first_missing_folder,
                                      recover_output, remove_empty_folders, remove_previous_run)
from spanbert.core.training import (MetricsCSV, TimeBudget, adamw, capture_rng, check_resume_settings, checkpoint_folder,
                                    flatten_settings, gather_objects, library_versions, load_checkpoint, load_weights,
                                    newest_intact_checkpoint, progress_bar, prune_checkpoints, restore_rng, rng_tensors,
                                    set_aside_checkpoints_after, stored_run_arguments, write_checkpoint)
from spanbert.core.precision import allow_new_precision, describe_precision, resolve_precision
from spanbert.tasks.arguments import SESSION_OPTIONS, TRAJECTORY_ARGS, FinetuneArguments

logger = logging.getLogger(__name__)
FIELDS = ["step", "epoch", "loss", "lr", "grad_norm", "items_per_s", "elapsed_s"]  # of finetune_metrics.csv


@dataclass(frozen=True)
class DevEvaluation:
    """How the loop scores the model on dev while it trains.

    ``evaluate(model) -> metrics`` runs on the main process with the model in eval mode (the
    loop switches modes around it); ``metric`` names the entry of the returned dict to maximise.
    """

    evaluate: Callable[[torch.nn.Module], dict[str, float]]
    metric: str


@dataclass
class FinetuneResult:
    steps: int
    epochs_done: float
    elapsed_s: float
    last_loss: float
    stopped_by_budget: bool
    metrics_csv: Path
    dev_history: list[dict] = field(default_factory=list)  # one entry per dev evaluation: step, epoch, metrics
    best_step: int | None = None  # the step whose weights the model ends with (with dev selection)
    best_score: float | None = None  # its dev metric
    selected_metric: str | None = None
    stopped_early: bool = False  # early_stopping ended the run
    resumed_from: int | None = None  # the step of the checkpoint this session continued from
    training_args: dict[str, Any] = field(default_factory=dict)  # what training_args.json records


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group: int = 50) -> list[np.ndarray]:
    """One epoch of batches of item indices with similar lengths; ``len % batch_size`` items,
    drawn at random each epoch, are left out so every batch is full.

    Items are shuffled, cut into groups of ``group * batch_size``, sorted by length inside each
    group and cut into batches; the batch order is shuffled again. Depends on (seed, epoch) only.
    """
    rng = np.random.default_rng([seed, epoch, 0xF1])
    order = rng.permutation(len(lengths))
    order = order[: len(order) - len(order) % batch_size]  # the items left out differ every epoch
    batches = []
    size = group * batch_size
    for g in range(0, len(order), size):
        chunk = order[g : g + size]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


# -- checkpoints ----------------------------------------------------------------------------------


def _best_of(ckpt: Path) -> int | None:
    """The best dev step a checkpoint points to (None when unreadable or none)."""
    try:
        return json.loads((ckpt / "trainer_state.json").read_text())["finetune"]["best_step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- the run's record ------------------------------------------------------------------------------


def _absolute(value: Any) -> Any:
    """A local path (an existing file or folder) as an absolute path string; anything else as it is."""
    if isinstance(value, (list, tuple)):
        return [_absolute(v) for v in value]
    if isinstance(value, (str, os.PathLike)) and str(value) and os.path.exists(value):
        return str(Path(value).resolve())
    return str(value) if isinstance(value, os.PathLike) else value


def _check_resume_record(output_dir: Path, stored: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Refuse to resume when a setting that changes the training differs from the stored run's."""
    stored_flat, current_flat = flatten_settings(stored), flatten_settings(current)
    options = {f"arguments.{k}": v for k, v in TRAJECTORY_ARGS.items()}
    options["resolved.processes"] = "the number of processes"
    for key in current_flat:
        head, _, name = key.partition(".")
        if head == "data":
            options[key] = f"--{name}"
        elif head == "options" and name.split(".")[0] not in SESSION_OPTIONS:
            options[key] = "--" + name.replace("_", "-")
    check_resume_settings(output_dir, stored_flat, current_flat, options, hint="give the run's value again")


# -- the loop ---------------------------------------------------------------------------------------


def finetune(
    model: torch.nn.Module,
    lengths: Sequence[int] | np.ndarray,
    collate: Callable[[Sequence[int]], dict[str, torch.Tensor]],
    args: FinetuneArguments,
    loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None = None,
    dev: DevEvaluation | None = None,
    data: Mapping[str, Any] | None = None,
) -> FinetuneResult:
    """Train ``model`` on items ``0..len(lengths)-1``; ``collate(indices)`` builds their batch.

    ``lengths`` (tokens per item) drives length-grouped batching. The loss is
    ``model(**batch).loss``, or ``loss_fn(model, batch)`` (a mean over the batch's items, so
    that processes' and micro-batches' slices average to the whole batch's loss). A ``collate``
    with ``state_dict()``/``load_state_dict()`` (e.g. one that samples negatives) has its state
    checkpointed too. With ``dev``, the model is scored on dev at every epoch end (or every
    ``args.eval_every`` steps) and after the last step, and ends with the weights of the best
    score when ``args.select_best`` (ties: the earlier step); ``args.early_stopping`` = N stops
    after N evaluations in a row without a better score. ``data`` (e.g. ``{"model": ..., "train":
    ..., "dev": ...}``) is recorded in training_args.json, local paths made absolute.

    The output folder: see :mod:`spanbert.core.run_folder` (a fresh run refuses a non-empty one
    unless ``args.overwrite``) and the module doc (checkpoints; ``args.resume`` continues the run
    there, refusing settings that differ from the stored run's). The model is left in eval mode
    with the stock attention, ready to save.
    """
    from accelerate import Accelerator

    from spanbert.core.dropout import use_hashed_dropout

    lengths = np.asarray(lengths)
    precision = resolve_precision(args.mixed_precision)
    allow_new_precision(precision)
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    is_main = accelerator.is_main_process
    out = Path(args.output_dir)

    # Every check comes before anything is written into the output folder.
    if is_main:
        recover_output(out)
    accelerator.wait_for_everyone()
    check_output_folder(out, resume=args.resume, overwrite=args.overwrite)
    if dev is None and args.early_stopping:
        raise ConfigError("--early-stopping: needs --dev (it counts dev evaluations without a better score)")
    share = world * args.grad_accum
    if args.batch_size % share:
        raise ConfigError(f"--batch-size {args.batch_size}: must be a multiple of {world} process(es) x --grad-accum "
                          f"{args.grad_accum} = {share} (it is the batch of an optimizer step, split evenly into every "
                          "process's micro-batches)")
    per_process, micro = args.batch_size // world, args.batch_size // share
    steps_per_epoch = len(lengths) // args.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"training data: {len(lengths)} items are fewer than one batch of {args.batch_size}")
    max_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    warmup = args.warmup_steps if args.warmup_steps is not None else int(args.warmup_ratio * max_steps)
    arguments = {k: v for k, v in asdict(args).items() if k not in ("run_settings", "resume", "overwrite", "output_dir")}
    record = {
        "command": args.run_settings.get("command"), "output_dir": _absolute(out),
        "options": {k: _absolute(v) if k in ("model", "train", "dev", "output") else v
                    for k, v in (args.run_settings.get("options") or {}).items()},
        "data": {k: _absolute(v) for k, v in (data or {}).items()},
        "arguments": arguments,
        "resolved": {"precision": precision, "max_steps": max_steps, "warmup_steps": warmup,
                     "steps_per_epoch": steps_per_epoch, "processes": world, "micro_batch_size": micro,
                     "device": device.type, "train_items": len(lengths)},
        "versions": library_versions(),
    }
    resumed = None
    if args.resume:
        stored = stored_run_arguments(out)
        if stored is not None:
            _check_resume_record(out, stored, record)
        resumed = newest_intact_checkpoint(out, warn=is_main)
    fresh = resumed is None
    accelerator.wait_for_everyone()  # every process has checked the folder before the main one changes it
    created = first_missing_folder(out)
    if is_main:
        if args.overwrite or (args.resume and fresh):
            removed = remove_previous_run(out)
            if removed:
                logger.info("removed the previous run's %s from %s", ", ".join(removed), out)
        out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed + rank)
    model.to(device)
    attn_before = model.config._attn_implementation
    # No glibc malloc tuning here (unlike pre-training): batches of varying shapes fragment the
    # kept heap, peak RSS 8.7 vs 6.3 GB over 30 QA steps at 32 x 384, at no measured speed gain.
    if device.type == "cpu" and args.hashed_dropout:
        use_hashed_dropout(model)
    model.train()
    opt = adamw(((n, p) for n, p in model.named_parameters() if p.requires_grad), args.lr, args.weight_decay,
                head_lr=args.head_lr, encoder_prefix=f"{model.base_model_prefix}.")
    scheduler = get_linear_schedule_with_warmup(opt, warmup, max_steps)
    ddp_model, opt = accelerator.prepare(model, opt)
    scaler = getattr(accelerator, "scaler", None)
    collate_state = getattr(collate, "state_dict", None)

    step, epoch, batch_in_epoch, elapsed_before = 0, 0, 0, 0.0
    last_loss, stop = float("nan"), None  # stop: why the run ended ("max_steps", "time_budget", "early_stopping")
    history: list[dict] = []
    best_step = best_score = None
    best_weights: dict[str, torch.Tensor] | None = None  # on the CPU, with select_best
    resumed_from = resumed_rng = None
    if resumed is not None:
        rng = load_checkpoint(resumed, model, opt, scheduler, scaler, rank, device)
        state, loop = resumed.meta["state"], resumed.meta["finetune"]
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        elapsed_before, last_loss = state.get("elapsed_s", 0.0), state.get("last", {}).get("loss", float("nan"))
        history, stop = loop["history"], loop["stop"]
        best_step, best_score = loop["best_step"], loop["best_score"]
        processes = loop["processes"]
        if args.select_best and best_step is not None and is_main:
            best_path = resumed.path if best_step == step else checkpoint_folder(out, best_step)
            if best_path == resumed.path:
                best_weights = {k: v.clone() for k, v in resumed.weights.items()}
            else:
                from safetensors.torch import load_file

                try:
                    best_weights = load_file(str(best_path / "model.safetensors"))
                except (OSError, ValueError, RuntimeError) as e:
                    raise CheckpointError(f"--resume: the weights of the best dev evaluation (step {best_step}) are not "
                                          f"readable in {best_path} ({one_line(e, None)})") from None
        if collate_state is not None and processes[rank]["collate"] is not None:
            collate.load_state_dict(processes[rank]["collate"])
        resumed_rng = {**rng, "numpy": processes[rank]["numpy"], "python": processes[rank]["python"]}
        resumed_from = step
        logger.info("resumed from %s at step %d", resumed.path, step)
        resumed = None  # its tensors are loaded: free them
        if is_main:
            set_aside_checkpoints_after(out, step)

    metrics_path, history_path = out / METRICS_FILE, out / HISTORY_FILE
    metrics = bar = None
    try:
        if is_main:
            logger.info(describe_precision(args.mixed_precision, precision, device))
            atomic_write_json(out / TRAINING_ARGS_FILE, record)
            metrics = MetricsCSV(metrics_path, FIELDS, step)
            if dev is not None:
                atomic_write_text(history_path, "".join(json.dumps(h) + "\n" for h in history))
        bar = progress_bar(max_steps, step, "finetune", is_main and args.progress)
        budget = TimeBudget(args.time_budget_s, accelerator)  # this session's, dev evaluations included
        window_start, window_items = budget.start, 0

        def elapsed() -> float:
            return elapsed_before + budget.elapsed()

        def evaluate_dev() -> bool:
            """Score the model on dev (main process; the others get the result), log the line, keep
            the weights when best; returns whether the score is a new best."""
            nonlocal best_step, best_score, best_weights
            entry = None
            if is_main:
                model.eval()
                metrics = dev.evaluate(model)
                model.train()
                if dev.metric not in metrics:
                    raise ConfigError(f"dev metric {dev.metric!r} is not among the evaluation's: {', '.join(metrics)}")
                score = float(metrics[dev.metric])
                entry = {"step": step, "epoch": round(step / steps_per_epoch, 4), "metric": dev.metric, "score": score,
                         "metrics": metrics, "elapsed_s": round(elapsed(), 1)}
                with history_path.open("a") as f:
                    f.write(json.dumps(entry) + "\n")
                logger.info("dev at step %d (epoch %.2f): %s = %.4f", step, entry["epoch"], dev.metric, score)
            entry = gather_objects(accelerator, entry)[0]  # every process keeps the same history (early stopping)
            history.append(entry)
            score = entry["score"]
            better = math.isfinite(score) and (best_score is None or score > best_score)
            if better:
                best_step, best_score = step, score
                if args.select_best and is_main:
                    best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            accelerator.wait_for_everyone()
            return better

        def save() -> None:
            """Checkpoint every process's state (a collective); the random state is put back afterwards,
            so that whatever saving draws, the run goes on as a run resumed from this checkpoint does."""
            state = {"step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "elapsed_s": elapsed(),
                     "last": {"loss": last_loss}}
            loop = {"history": history, "stop": stop, "best_step": best_step, "best_score": best_score,
                    "max_steps": max_steps, "steps_per_epoch": steps_per_epoch}
            mine = {"rng": capture_rng(device), "collate": collate_state() if collate_state is not None else None}
            processes = gather_objects(accelerator, mine)
            if is_main:  # torch's RNG in rng.safetensors, numpy's and Python's in trainer_state.json
                loop["processes"] = [{"numpy": p["rng"]["numpy"], "python": p["rng"]["python"], "collate": p["collate"]}
                                     for p in processes]
                write_checkpoint(out, step, model, opt, scheduler, scaler, state, record,
                                 rng_tensors([p["rng"] for p in processes]), extra={"finetune": loop})
                # the newest, and (select_best) those the kept ones' best dev weights are in
                prune_checkpoints(out, args.keep_checkpoints, _best_of if args.select_best else None)
            restore_rng(mine["rng"], device)
            accelerator.wait_for_everyone()

        batches, batches_epoch = None, None
        if resumed_rng is not None:  # last: nothing may draw from the generators between here and the next batch
            restore_rng(resumed_rng, device)
        while step < max_steps and stop is None:
            if batches_epoch != epoch:
                batches, batches_epoch = length_grouped_batches(lengths, args.batch_size, args.seed, epoch), epoch
            mine = batches[batch_in_epoch][rank * per_process : (rank + 1) * per_process]
            loss_sum = torch.zeros((), device=device)
            for i in range(args.grad_accum):
                part = mine[i * micro : (i + 1) * micro]
                batch = {k: v.to(device, non_blocking=True) for k, v in collate(part.tolist()).items()}
                sync = i == args.grad_accum - 1 or world == 1  # gradients are reduced over processes once a step
                with accelerator.no_sync(ddp_model) if not sync else contextlib.nullcontext():
                    with accelerator.autocast():
                        loss = ddp_model(**batch).loss if loss_fn is None else loss_fn(ddp_model, batch)
                    # micro-batches of equal size: the mean of their means is the batch's mean
                    accelerator.backward(loss / args.grad_accum)
                loss_sum += loss.detach().float()
            grad_norm = accelerator.clip_grad_norm_(ddp_model.parameters(), args.max_grad_norm)
            opt.step()
            scheduler.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            batch_in_epoch += 1
            if batch_in_epoch == len(batches):  # the checkpoint points to the next batch to train on
                epoch, batch_in_epoch = epoch + 1, 0
            window_items += args.batch_size
            loss_value = loss_sum / args.grad_accum
            if world > 1:
                loss_value = accelerator.reduce(loss_value, reduction="mean")
            last_loss = float(loss_value)
            now = time.perf_counter()
            if metrics is not None and (step % args.log_every == 0 or step == max_steps):
                metrics.write({
                    "step": step, "epoch": round(step / steps_per_epoch, 4), "loss": last_loss,
                    "lr": scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
                    "items_per_s": window_items / max(now - window_start, 1e-9), "elapsed_s": elapsed(),
                })
                window_start, window_items = now, 0
            bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
            bar.update(1)
            if budget.reached(now):
                stop = "time_budget"
            if step >= max_steps:
                stop = "max_steps"
            evaluated = new_best = False
            if dev is not None and (stop is not None or step % (args.eval_every or steps_per_epoch) == 0):
                new_best, evaluated = evaluate_dev(), True
                since_best = sum(1 for h in history if best_step is None or h["step"] > best_step)
                if stop is None and args.early_stopping and since_best >= args.early_stopping:
                    stop = "early_stopping"
                    if is_main:
                        logger.info("early stopping at step %d: %d dev evaluations without a better %s than %s (step %s)",
                                    step, since_best, dev.metric, best_score, best_step)
            if args.save_every != 0 and (
                    stop is not None
                    or (args.save_every is None and (evaluated if dev is not None else batch_in_epoch == 0))
                    or (args.save_every is not None and step % args.save_every == 0)
                    or (new_best and args.select_best)):  # the best weights must survive a resume
                save()
        if dev is not None and (not history or history[-1]["step"] != step):
            evaluate_dev()  # a run resumed from a checkpoint written before its last evaluation
    except BaseException:
        if metrics is not None:
            metrics.close()
        if is_main and fresh and step == 0:  # a fresh run that failed before its first step: leave nothing
            remove_previous_run(out)
            if created is not None:
                remove_empty_folders(out, stop=created.parent)
        raise
    if bar is not None:
        bar.close()
    if metrics is not None:
        metrics.close()
    if best_step is not None and args.select_best and best_step != step:
        if best_weights is not None:  # the main process's (the others do not save)
            load_weights(model, best_weights, checkpoint_folder(out, best_step))
        logger.info("kept the weights of step %d (dev %s %.4f)", best_step, dev.metric, best_score)
    elif dev is not None and not args.select_best:
        best_step, best_score = step, history[-1]["score"]
    model.eval()
    if model.config._attn_implementation != attn_before:
        model.set_attn_implementation(attn_before)
    accelerator.wait_for_everyone()
    return FinetuneResult(step, step / steps_per_epoch, elapsed(), last_loss,
                          stop == "time_budget", metrics_path, history, best_step, best_score,
                          dev.metric if dev is not None else None, stop == "early_stopping", resumed_from, record)


def selection_summary(result: FinetuneResult) -> dict:
    """What a task's ``finetune_summary.json`` records of the dev selection (empty without one)."""
    if result.selected_metric is None:
        return {}
    return {"selected_on_dev": {"metric": result.selected_metric, "step": result.best_step, "score": result.best_score,
                                "evaluations": len(result.dev_history), "stopped_early": result.stopped_early}}


def hyperparameters(result: FinetuneResult) -> dict[str, Any]:
    """The settings that decided the training, as the model card and summary show them."""
    arguments, resolved = result.training_args.get("arguments", {}), result.training_args.get("resolved", {})
    keys = ("lr", "head_lr", "batch_size", "grad_accum", "epochs", "weight_decay", "warmup_ratio", "max_grad_norm", "seed",
            "eval_every", "select_best", "early_stopping")
    found = {k: arguments[k] for k in keys if k in arguments}
    found.update({"max_steps": resolved.get("max_steps"), "warmup_steps": resolved.get("warmup_steps"),
                  "precision": resolved.get("precision"), "processes": resolved.get("processes"),
                  "micro_batch_size": resolved.get("micro_batch_size")})
    dropout = (result.training_args.get("options") or {}).get("dropout")
    if dropout is not None:
        found["dropout"] = dropout
    return found


def training_summary(result: FinetuneResult) -> dict[str, Any]:
    """The training part of a task's ``finetune_summary.json``: steps, epochs, time, loss, how the
    run ended, the hyper-parameters and the dev selection."""
    return {"steps": result.steps, "epochs": round(result.epochs_done, 3), "train_seconds": round(result.elapsed_s, 1),
            "final_loss": result.last_loss, "stopped_by_budget": result.stopped_by_budget,
            "hyperparameters": hyperparameters(result), **selection_summary(result),
            **({"resumed_from_step": result.resumed_from} if result.resumed_from is not None else {})}


__all__ = ["DevEvaluation", "FinetuneResult", "finetune", "length_grouped_batches", "selection_summary",
           "training_summary", "hyperparameters"]
