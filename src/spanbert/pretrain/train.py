"""The pre-training loop: AdamW, warm-up + linear decay, accumulation, clipping, autocast,
atomic checkpoints, exact resume, a wall-clock budget, CSV/TensorBoard metrics, a loss plot.

One process:

    spanbert pretrain --corpus data/ --tokenizer tok/ --preset base --output runs/base

Many processes (DDP; each process takes its slice of every global batch):

    accelerate launch --num_processes 8 -m spanbert pretrain ...
    torchrun --nproc_per_node 8 -m spanbert pretrain ...

Losses are normalised over the *global* batch (all micro-batches of an optimizer step on all
processes): each masked token weighs the same whatever the split, so 2 processes x batch 8
give exactly the loss and gradient of 1 process x batch 16. The mask of an example depends
only on (seed, epoch, example id), and the data order only on (seed, epoch), so a resumed run
replays exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import io
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from spanbert.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, publish_files
from spanbert.core.dropout import use_hashed_dropout
from spanbert.core.errors import ConfigError
from spanbert.core.flops import pretraining_step_flops
from spanbert.core.precision import allow_new_precision, describe_precision, resolve_precision
from spanbert.core.run_folder import (CHECKPOINT_DIR, MODEL_FILES, TRAINING_ARGS_FILE, first_missing_folder, list_checkpoints,
                                      remove_empty_folders, remove_run_files)
from spanbert.core.training import (MetricsCSV, TimeBudget, adamw, capture_rng, check_resume_settings, flatten_settings,
                                    gather_objects, library_versions, load_checkpoint, newest_intact_checkpoint, progress_bar,
                                    prune_checkpoints, restore_rng, resume_mismatch_error, rng_tensors,
                                    set_aside_checkpoints_after, stored_run_arguments, write_checkpoint)
from spanbert.pretrain.masking import IGNORE_INDEX
from spanbert.pretrain.arguments import TRAJECTORY_ARGS, PretrainArguments
from spanbert.pretrain.modeling import SBO_HEAD_FILE, SPANBERT_CONFIG_FILE, SpanBertForPreTraining, save_pretraining_folder

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss_curve.png"
HELDOUT_FILE = "heldout_metrics.jsonl"
HELDOUT_SUMMARY = "heldout_summary.json"
TRAIN_METRIC_FIELDS = ["step", "epoch", "loss", "mlm_loss", "sbo_loss", "lr", "grad_norm", "tokens", "tokens_per_s",
                       "elapsed_s", "flops"]
# Held-out metrics of the steps with an evaluation (--heldout-fraction / --validation-corpus; empty
# on the other steps): the loss as training weighs it, and spanbert.pretrain.heldout's MLM/SBO cross-entropy
# and top-1 accuracy (mlm_top1: the share of masked tokens the MLM head predicts).
HELDOUT_METRIC_FIELDS = ["heldout_loss", "heldout_mlm_loss", "heldout_sbo_loss", "heldout_mlm_top1", "heldout_sbo_top1"]
METRIC_FIELDS = TRAIN_METRIC_FIELDS + HELDOUT_METRIC_FIELDS
TENSORBOARD_DIR = "tensorboard"
# What a run writes at the top of its folder besides the final model (MODEL_FILES, MODEL_CARD).
RUN_FILES = (CHECKPOINT_DIR, METRICS_FILE, TENSORBOARD_DIR, TRAINING_ARGS_FILE, HELDOUT_FILE, HELDOUT_SUMMARY, PLOT_FILE)
# The final model of save_final_model: weights, config, SBO head and settings, the tokenizer's files.
MODEL_FILES = (*MODEL_FILES, SBO_HEAD_FILE, SPANBERT_CONFIG_FILE)
MODEL_CARD_TITLE = "# SpanBERT model trained with the `spanbert` toolkit"


@dataclass
class TrainState:
    """Where a run stands; everything needed to continue it exactly (with the optimizer state)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # epoch of the next micro-batch
    batch_in_epoch: int = 0  # index of the next global micro-batch within that epoch
    tokens: int = 0  # non-padding tokens seen, all processes
    elapsed_s: float = 0.0  # training time, summed over sessions (the time budget counts one session's)
    flops: float = 0.0  # matrix-product FLOPs of the steps done, all processes (spanbert.core.flops)
    last: dict[str, float] = field(default_factory=dict)  # last logged metrics


# -- CPU memory -------------------------------------------------------------------------------


def tune_glibc_malloc() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS at once.

    A training step allocates and frees the same large activation buffers over and over; by
    default glibc serves each from fresh ``mmap`` pages that the kernel must fault in and zero,
    which costs ~20% of a CPU step. Raising the mmap and trim thresholds (what the variables
    ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` do) keeps them in the heap. Returns
    False where glibc is absent; ``SPANBERT_DEFAULT_MALLOC=1`` turns it off.
    """
    if os.environ.get("SPANBERT_DEFAULT_MALLOC") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 31)
        return bool(ok and libc.mallopt(m_top_pad, 1 << 28))
    except (OSError, AttributeError):
        return False


# Optimizer steps between returns of freed heap memory to the OS (CPU training, glibc).
TRIM_EVERY = 50


def trim_heap() -> bool:
    """Give the C heap's free memory back to the OS (glibc ``malloc_trim``); False where unavailable.

    Batches of changing shape free and re-allocate tensors of changing sizes; glibc keeps the
    freed pages (up to 2 GB of them under :func:`tune_glibc_malloc`), so a CPU run's RSS
    otherwise creeps up to a multiple of what it uses. A call takes milliseconds.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False


# -- data order -------------------------------------------------------------------------------


def epoch_batches(num_examples: int, global_batch: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffled example indices of one epoch, cut into global batches: (num_batches, global_batch).

    Depends only on (seed, epoch); the incomplete last batch is dropped.
    """
    order = np.random.default_rng([seed, epoch, 0x5B]).permutation(num_examples)
    n = num_examples // global_batch
    return order[: n * global_batch].reshape(n, global_batch)


def _shuffle_stream(dataset, seed: int, buffer_size: int):
    """Shuffle a streamed corpus through one buffer fed by one file at a time.

    ``datasets`` (5.2 here) by default fills the buffer from up to 10 files at once by running a
    copy of the whole packing pipeline per file: each copy holds its own partial batches (about
    190 MB a file, measured) and restarts the running ``example_id`` at 0, so segments of
    different files got the same id, hence the same mask seed.
    """
    import inspect

    if "max_buffer_input_shards" in inspect.signature(dataset.shuffle).parameters:
        return dataset.shuffle(seed=seed, buffer_size=buffer_size, max_buffer_input_shards=1)
    return dataset.shuffle(seed=seed, buffer_size=buffer_size)


def _check_one_global_batch(num_examples: int, global_batch: int) -> None:
    """Refuse a corpus of fewer segments than one global micro-batch (no epoch would have a batch)."""
    if num_examples < global_batch:
        raise ConfigError(f"corpus: {num_examples} segments are fewer than one global batch of {global_batch}; "
                          "lower --batch-size")


def _local_micro_batches(dataset, collator, args: PretrainArguments, rank: int, world: int,
                         state: TrainState) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """Yield (epoch, index of the next global micro-batch, this process's collated micro-batch), forever.

    An epoch is cut into global micro-batches of ``micro x world`` sequences (``micro``: each
    process's share, :meth:`PretrainArguments.micro_batch_size`); ``args.grad_accum``
    consecutive ones make an optimizer step.
    """
    micro = args.micro_batch_size(world)
    epoch, start = state.epoch, state.batch_in_epoch
    streaming = not hasattr(dataset, "__len__")
    while True:
        collator.set_epoch(epoch)
        if streaming:
            from datasets.distributed import split_dataset_by_node

            shard = split_dataset_by_node(_shuffle_stream(dataset, args.seed + epoch, args.stream_shuffle_buffer),
                                          rank=rank, world_size=world)
            rows = iter(shard)
            # skip what the earlier session consumed
            rows = islice(rows, start * micro, None)
            index = start
            while True:
                chunk = list(islice(rows, micro))
                if len(chunk) < micro:
                    break
                yield epoch, index + 1, collator(chunk)
                index += 1
            if index == 0:
                raise ConfigError("corpus: fewer segments than one batch; lower --batch-size")
        else:
            _check_one_global_batch(len(dataset), micro * world)
            batches = epoch_batches(len(dataset), micro * world, args.seed, epoch)
            mine = [b[rank * micro : (rank + 1) * micro].tolist() for b in batches[start:]]
            # Its own generator: creating a loader must not draw from the global RNG, which
            # drives dropout and is restored exactly on --resume.
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=mine, collate_fn=collator, num_workers=args.num_workers,
                generator=torch.Generator().manual_seed(args.seed * 1000 + epoch),
            )
            for i, batch in enumerate(loader):
                yield epoch, start + i + 1, batch
        epoch, start = epoch + 1, 0


# -- optimizer ----------------------------------------------------------------------------------


def build_optimizer(model: SpanBertForPreTraining, args: PretrainArguments) -> torch.optim.AdamW:
    """:func:`adamw` over the parameters pre-training updates (all but the unused pooler).

    With ``head_lr`` or ``head_warmup_steps`` the heads (everything outside ``bert.``) get
    their own parameter groups, at ``head_lr`` (default ``lr``).
    """
    head_lr = args.head_lr if args.head_lr is not None else (args.lr if args.head_warmup_steps else None)
    return adamw(model.trainable_parameters(), args.lr, args.weight_decay, (args.adam_beta1, args.adam_beta2), args.adam_eps,
                 head_lr=head_lr, encoder_prefix=ENCODER_PREFIX)


# Names of the encoder's parameters start with this; the heads' do not.
ENCODER_PREFIX = "bert."


def linear_schedule(start: int, warmup: int, end: int):
    """LR factor of a step: 0 before ``start``, then a linear warm-up over ``warmup`` steps and a
    linear decay to 0 at ``end`` (``transformers.get_linear_schedule_with_warmup`` shifted to ``start``)."""

    def factor(step: int) -> float:
        done = step - start
        if done < 0:
            return 0.0
        if done < warmup:
            return done / max(1, warmup)
        return max(0.0, (end - step) / max(1, end - start - warmup))

    return factor


def build_scheduler(opt: torch.optim.Optimizer, args: PretrainArguments, warmup: int,
                    encoder_groups: list[bool]) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up + linear decay over ``args.max_steps``; ``encoder_groups[i]``: group i holds encoder parameters.

    Without a head warm-up every group follows one schedule (``warmup`` steps up, then down). With
    ``head_warmup_steps`` = N the heads follow that schedule from step 0, while the encoder's
    groups stay at 0 for N steps and then have their own warm-up (``warmup_steps`` if given, else
    ``warmup_ratio`` of the remaining steps) and decay to 0 at the last step.
    """
    if not args.head_warmup_steps:
        return get_linear_schedule_with_warmup(opt, warmup, args.max_steps)
    start = args.head_warmup_steps
    encoder_warmup = args.warmup_for(args.max_steps - start)
    heads, encoder = linear_schedule(0, warmup, args.max_steps), linear_schedule(start, encoder_warmup, args.max_steps)
    return torch.optim.lr_scheduler.LambdaLR(opt, [encoder if e else heads for e in encoder_groups])


def freeze_without_backward(world: int, fsdp: bool) -> bool:
    """How the encoder is frozen during a head warm-up: True, by ``requires_grad=False`` (no encoder
    backward at all: faster), in one unsharded process; False, by discarding the encoder's
    gradients before clipping, under DDP/FSDP, whose gradient hooks are fixed when the model is
    wrapped. Both give the same updates."""
    return world == 1 and not fsdp


# -- FSDP2 ----------------------------------------------------------------------------------------


def is_fsdp2(accelerator) -> bool:
    """Whether ``accelerator`` shards the model with FSDP2 (``accelerate launch`` with an FSDP v2 config)."""
    return bool(getattr(accelerator, "is_fsdp2", False))


def shard_fsdp2(model: SpanBertForPreTraining, accelerator, precision: str) -> int:
    """Shard ``model`` in place with ``fully_shard`` before ``accelerator.prepare``, which then leaves it as is.

    The units follow the accelerate config's wrap policy (``fsdp_transformer_layer_cls_to_wrap:
    BertLayer``: one unit per layer), except that a module holding a tied parameter is never a
    unit of its own: the word embeddings (= MLM decoder weight = SBO output projection) and the
    MLM bias (= decoder bias) stay in the root unit with the heads. accelerate's own wrapping puts
    the embeddings and the decoder in a separate unit, which splits the decoder bias from
    ``cls.predictions`` across two units; torch refuses that. bf16 computes in bf16 but reduces
    gradients in fp32 (as DDP under autocast does) and leaves outputs (the loss sums) in fp32.
    Returns the number of FSDP units.
    """
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
    from accelerate.utils.other import get_module_children_bottom_up
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    plugin = accelerator.state.fsdp_plugin
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    mp = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32) if dtype else MixedPrecisionPolicy()
    kwargs: dict[str, Any] = {"mp_policy": mp}
    if plugin.cpu_offload is not None:
        kwargs["offload_policy"] = plugin.cpu_offload
    reshard = plugin.reshard_after_forward if isinstance(plugin.reshard_after_forward, bool) else True
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    plugin.set_auto_wrap_policy(model)  # resolve class names now: sharding renames the classes (FSDPBertLayer)
    tied = {id(model.bert.embeddings.word_embeddings.weight), id(model.cls.predictions.bias)}
    units = 1
    if policy is not None:
        for module in get_module_children_bottom_up(model)[:-1]:
            if policy(module) and not any(id(p) in tied for p in module.parameters()):
                fully_shard(module, reshard_after_forward=reshard, **kwargs)
                units += 1
    fully_shard(model, **kwargs)
    return units


def _full_tensor(v: torch.Tensor) -> torch.Tensor:
    """A DTensor gathered whole (a collective: every process must call it, in the same order), on the CPU."""
    from torch.distributed.tensor import DTensor

    return (v.full_tensor() if isinstance(v, DTensor) else v).detach().cpu()


def _full_weights(accelerator, model: SpanBertForPreTraining) -> dict[str, torch.Tensor]:
    """Whole weights of a sharded model on the main process's CPU (collective), tied copies left out
    as ``save_pretrained`` leaves them out of an unsharded model (gathered, they no longer share storage)."""
    return {k: v for k, v in accelerator.get_state_dict(model).items() if k not in model._tied_weights_keys}


def _full_states(accelerator, model, opt) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Whole model weights and optimizer state of a sharded model, in the unsharded layout (collective)."""
    model_state = _full_weights(accelerator, model)
    opt_state = opt.state_dict()  # its per-parameter dicts are the live state: copy, never assign into them
    opt_state = {**opt_state, "state": {i: {k: _full_tensor(v) if torch.is_tensor(v) else v for k, v in st.items()}
                                        for i, st in opt_state["state"].items()}}
    return model_state, opt_state


# -- the run folder -------------------------------------------------------------------------------
#
# A run folder belongs to one run. A fresh run refuses a folder that holds another one (unless
# told to replace it), --resume continues only the run stored there (same settings), and
# nothing is written into the folder before every check has passed.

def previous_run_files(output_dir: str | os.PathLike) -> list[str]:
    """Names of what shows that a run was trained in ``output_dir`` (checkpoints, metrics,
    training_args.json, a final model, ...); empty when there is none."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    return [name for name in (*RUN_FILES, "model.safetensors", "config.json") if (out / name).exists()]


def check_run_folder(output_dir: str | os.PathLike, *, resume: bool, overwrite: bool) -> None:
    """Refuse ``resume`` together with ``overwrite``, and a fresh run (neither) into a folder that
    holds another run (:func:`previous_run_files`).

    Raises:
        ConfigError: one line naming the folder and what to do instead.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: choose one (--resume continues the run in --output, "
                          "--overwrite deletes it and starts afresh)")
    if resume or overwrite:
        return
    found = previous_run_files(output_dir)
    if found:
        resumable = "continue it with --resume, " if list_checkpoints(Path(output_dir)) else "no checkpoint to resume from; "
        raise ConfigError(f"--output {output_dir}: holds another run ({', '.join(found)}); {resumable}"
                          "replace it with --overwrite, or choose another folder")


# training_args.json key of the per-process micro-batch; its presence marks a record whose
# batch_size is the global batch (older versions recorded the per-process micro-batch there).
MICRO_BATCH_KEY = "micro_batch_size"


def stored_global_batch(stored: Mapping[str, Any]) -> int | None:
    """The global batch (sequences per optimizer step, all processes and micro-batches) of a stored
    run's settings; None when the run records none. A record of an older version (without
    :data:`MICRO_BATCH_KEY`) held the per-process micro-batch: times processes and grad_accum."""
    batch = stored.get("batch_size")
    if isinstance(batch, bool) or not isinstance(batch, int):
        return None
    if MICRO_BATCH_KEY in stored:
        return batch
    processes, accum = stored.get("processes"), stored.get("grad_accum")
    return batch * (processes if isinstance(processes, int) else 1) * (accum if isinstance(accum, int) else 1)


def resume_batch_error(output_dir: str | os.PathLike, stored: Mapping[str, Any], batch_size: int) -> ConfigError | None:
    """The refusal of a resumed run whose global batch (--batch-size) differs from the stored
    run's (:func:`stored_global_batch`), or None. The number of processes may change."""
    batch = stored_global_batch(stored)
    if batch is None or batch == batch_size:
        return None
    return resume_mismatch_error(output_dir, "--batch-size", batch, batch_size)


# -- metrics ---------------------------------------------------------------------------------------


class HeldoutLog:
    """``heldout_metrics.jsonl`` (one JSON line per evaluation, with its step) and ``heldout_summary.json``.

    The whole file is rewritten atomically on every evaluation (it has a few lines); a resumed
    run keeps the lines up to the step it resumes from and drops later ones, so no step is
    written twice. Only the main process writes; every process keeps the records.
    """

    def __init__(self, output_dir: Path, resume_step: int, write: bool):
        self.path = output_dir / HELDOUT_FILE
        self.summary_path = output_dir / HELDOUT_SUMMARY
        self.write = write
        self.records: dict[int, dict[str, Any]] = {}
        if resume_step and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a damaged line: that evaluation is lost, the others stay
                if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= resume_step:
                    self.records[record["step"]] = record
        self._flush()

    def _flush(self) -> None:
        if self.write:
            lines = [json.dumps(self.records[s]) + "\n" for s in sorted(self.records)]
            atomic_write_text(self.path, "".join(lines))

    def add(self, step: int, result) -> None:
        """Record the :class:`spanbert.pretrain.heldout.HeldoutMetrics` of ``step`` (replacing an earlier one of that step)."""
        self.records[step] = {"step": step, **result.to_json()}
        self._flush()
        if self.write:
            logger.info("held-out, step %d: %s", step, result.summary())

    def finish(self, step: int) -> None:
        """Write ``heldout_summary.json`` {"before": step 0, "after": ``step``} and log the change in one line."""
        before, after = self.records.get(0), self.records.get(step)
        if not self.write:
            return
        atomic_write_json(self.summary_path, {"before": before, "after": after})
        if before is None or after is None:
            return

        def change(key: str, spec: str) -> str:
            a, b = before.get(key), after.get(key)
            return "n/a" if a is None or b is None else f"{format(a, spec)} -> {format(b, spec)}"

        logger.info("held-out, step 0 -> %d: MLM loss %s, top-1 %s; SBO loss %s, top-1 %s; joint top-1 %s",
                    step, change("mlm_loss", ".4f"), change("mlm_top1", ".2%"), change("sbo_loss", ".4f"),
                    change("sbo_top1", ".2%"), change("joint_top1", ".2%"))


class MetricsWriter(MetricsCSV):
    """``metrics.csv`` (:class:`~spanbert.core.training.MetricsCSV` with :data:`METRIC_FIELDS`: kept up
    to the step a resumed run resumes from), and a TensorBoard scalar per value when tensorboard is
    installed."""

    def __init__(self, output_dir: Path, resume_step: int):
        super().__init__(output_dir / METRICS_FILE, METRIC_FIELDS, resume_step)
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(output_dir / TENSORBOARD_DIR))
        except ImportError:
            pass

    def write(self, row: dict[str, float | None]) -> None:
        """Append ``row`` (keys of :data:`METRIC_FIELDS`; a missing or None held-out value is left empty)."""
        super().write(row)
        if self._tb is not None:
            for k in ("loss", "mlm_loss", "sbo_loss", "lr", "tokens_per_s"):
                self._tb.add_scalar(f"train/{k}", row[k], int(row["step"]))
            for k in HELDOUT_METRIC_FIELDS:
                if row.get(k) is not None:
                    self._tb.add_scalar(f"heldout/{k.removeprefix('heldout_')}", row[k], int(row["step"]))

    def close(self) -> None:
        """Close the CSV file and the TensorBoard writer (a second call does nothing)."""
        super().close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def heldout_columns(record: Mapping[str, Any] | None, sbo_weight: float) -> dict[str, float | None]:
    """The :data:`HELDOUT_METRIC_FIELDS` of one held-out evaluation (a heldout_metrics.jsonl record;
    None: no evaluation at this step, all empty). ``heldout_loss`` is MLM + ``sbo_weight`` x SBO,
    the training loss's weighting."""
    if record is None:
        return dict.fromkeys(HELDOUT_METRIC_FIELDS)
    mlm, sbo = record.get("mlm_loss"), record.get("sbo_loss")
    if mlm is None or (sbo is None and sbo_weight):
        total = None
    else:
        total = mlm + (sbo_weight * sbo if sbo_weight else 0.0)
    return {"heldout_loss": total, "heldout_mlm_loss": mlm, "heldout_sbo_loss": sbo,
            "heldout_mlm_top1": record.get("mlm_top1"), "heldout_sbo_top1": record.get("sbo_top1")}


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _heldout_points(rows: list[dict[str, str]], heldout_jsonl: Path | None,
                    sbo_weight: float) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of the held-out losses by training column ("loss", "mlm_loss", "sbo_loss"):
    metrics.csv's ``heldout_*`` columns, plus the evaluation before training (step 0: only in
    heldout_metrics.jsonl, since metrics.csv has one row per step done)."""
    points: dict[str, list[tuple[int, float]]] = {"loss": [], "mlm_loss": [], "sbo_loss": []}
    if heldout_jsonl is not None and heldout_jsonl.is_file():
        for line in heldout_jsonl.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step") == 0:
                for key, value in heldout_columns(record, sbo_weight).items():
                    if value is not None and key.removeprefix("heldout_") in points:
                        points[key.removeprefix("heldout_")].append((0, value))
    for r in rows:
        for key, found in points.items():
            value = _float_or_none(r.get("heldout_" + key))
            if value is not None:
                found.append((int(r["step"]), value))
    return points


def plot_loss_curve(metrics_csv: Path, out_png: Path, heldout_jsonl: Path | None = None,
                    sbo_weight: float = 1.0) -> Path | None:
    """Plot loss, MLM loss and SBO loss against the step from ``metrics.csv`` into a PNG (atomically).

    Training losses are drawn raw (faint) and as a running mean; held-out losses (the
    ``heldout_*`` columns, plus the evaluation before training from ``heldout_jsonl`` when given,
    its total weighted by ``sbo_weight``) as dashed lines with markers in the same colours.

    Without matplotlib (the optional ``plot`` extra) no PNG is written, one warning says so, any
    earlier PNG (now out of date) is removed, and None is returned: the run itself succeeds."""
    from spanbert.core.extras import optional

    matplotlib = optional("matplotlib", "plot", f"no {out_png.name} written")
    if matplotlib is None:
        out_png.unlink(missing_ok=True)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    window = max(1, len(rows) // 50)  # a running mean over ~2% of the run, drawn over the raw curve
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    heldout = _heldout_points(rows, heldout_jsonl, sbo_weight)
    for key, label, color in (("loss", "total", "C0"), ("mlm_loss", "MLM", "C1"), ("sbo_loss", "SBO", "C2")):
        values = np.array([float(r[key]) for r in rows])
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps[window - 1 :], smooth, color=color, label=f"{label} (train)", linewidth=1.6)
        if heldout[key]:
            xs, ys = zip(*sorted(heldout[key]))
            ax.plot(xs, ys, color=color, linestyle="--", marker="o", markersize=3.5, linewidth=1.2,
                    label=f"{label} (held-out)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title("SpanBERT pre-training loss" + (": train vs held-out" if any(heldout.values()) else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())
    return out_png


# -- the loop --------------------------------------------------------------------------------------


@dataclass
class PretrainResult:
    """What a run did: final state and where its outputs are."""

    state: TrainState
    output_dir: Path
    metrics_csv: Path
    loss_plot: Path | None
    stopped_by_budget: bool
    model_flops_per_s: float


def steps_for_epochs(num_examples: int, args: PretrainArguments, world: int) -> int:
    """Optimizer steps that ``args.epochs`` passes over ``num_examples`` segments take."""
    per_epoch = num_examples // (args.micro_batch_size(world) * world)  # global micro-batches
    return max(1, math.ceil(per_epoch * args.epochs / args.grad_accum))


# `--compile` by default (auto) from this many optimizer steps on, on GPUs. There torch.compile made
# the base preset's step at 32 x 512 9.1 ms faster (48.4 -> 39.3 ms, README, one H200); a warm-up
# of 1-2 minutes (its cost on this project's CPUs; not timed on a GPU) is paid back after
# ~7,000-13,000 steps. On CPUs compiling the model has not made the step faster here.
COMPILE_MIN_STEPS = 10_000


# DataLoader workers by default (auto) on GPUs: a batch of 32 x 512 took 8.5 ms to collate on one
# CPU core (benchmarks/bench_collator.py), a fifth of the base preset's 39-48 ms step on one H200.
GPU_LOADER_WORKERS = 2


def loader_workers(setting: int | None, device: torch.device, streaming: bool) -> tuple[int, str]:
    """DataLoader worker processes of a run on ``device``, and why (for the log): ``setting``
    (``--num-workers``) decides; None (the default) gives :data:`GPU_LOADER_WORKERS` on CUDA and
    0 on a CPU. A streamed corpus is collated in the main process either way."""
    if streaming:
        return 0, "a streamed corpus is collated in the main process"
    if setting is not None:
        return setting, "--num-workers"
    if device.type == "cuda":
        return GPU_LOADER_WORKERS, "auto: a GPU run collates ahead of the step"
    return 0, f"auto: a {device.type.upper()} run keeps its cores for the step"


def compile_choice(setting: bool | None, device: torch.device, steps: int, processes: int = 1) -> tuple[bool, str]:
    """Whether a run of ``steps`` optimizer steps on ``device`` compiles its model, and why (for the
    log): ``setting`` True/False (``--compile`` / ``--no-compile``) decides; None (the default)
    compiles single-process CUDA runs of at least :data:`COMPILE_MIN_STEPS` steps (compiling
    under DDP or FSDP has not been tried on GPUs). Inductor caches what it compiles on disk
    (``TORCHINDUCTOR_CACHE_DIR``), so a resumed or repeated run warms up faster."""
    if setting is not None:
        return setting, "--compile" if setting else "--no-compile"
    if device.type != "cuda":
        return False, f"auto: a {device.type.upper()} run; --compile to force it"
    if processes > 1:
        return False, f"auto: {processes} processes, where compiling has not been tried; --compile to try it"
    if steps < COMPILE_MIN_STEPS:
        return False, f"auto: {steps:,} steps, fewer than {COMPILE_MIN_STEPS:,} would not pay for the warm-up"
    return True, f"auto: a GPU run of {steps:,} steps; --no-compile to skip the warm-up"


def pretrain(
    model: SpanBertForPreTraining,
    tokenizer,
    dataset,
    collator,
    args: PretrainArguments,
    *,
    resume: bool = False,
    overwrite: bool = False,
    stop_at_step: int | None = None,
    heldout=None,
    heldout_unigram: np.ndarray | None = None,
    run_settings: Mapping[str, Any] | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> PretrainResult:
    """Pre-train ``model`` on the packed ``dataset`` (columns input_ids, word_starts, example_id).

    ``args.output_dir`` belongs to one run. A fresh run refuses a folder that holds another run
    (:func:`check_run_folder`), unless ``overwrite``: then that run's files are deleted first
    (:func:`remove_run_files`; other files stay). ``resume`` continues from the newest intact
    checkpoint in it (a damaged newer one is skipped with a warning), and refuses settings that
    differ from the stored run's (:data:`TRAJECTORY_ARGS`, ``run_settings``, the number of
    processes). ``run_settings``: what the caller decided beyond ``args`` (corpus, model,
    masking: see :func:`spanbert.pretrain.pipeline.run_settings`), recorded with ``args`` in
    training_args.json and in every checkpoint. ``run_info``: facts about the run recorded there too
    but never compared (e.g. ``new_heads``: the heads created fresh, logged at the start of a fresh
    run). training_args.json also records the resolved precision, the per-process micro-batch,
    the number of processes and the library versions. Nothing is written before these checks have
    passed, and a fresh run that fails before its first step removes what it wrote (and the
    folder, if it created it and it is empty).

    ``args.batch_size`` is the global batch of an optimizer step: each process takes
    ``batch_size / (processes x grad_accum)`` sequences per micro-batch (refused unless it divides).
    ``args.time_budget_s`` counts this session's training time only (not the time of the sessions
    before a resume, nor held-out evaluation).

    ``stop_at_step``
    ends this session early (after checkpointing) without changing the schedule, which is
    how a run is split over several sessions. Runs under ``accelerate launch``/``torchrun``
    as one process of many.

    ``heldout``: packed segments kept out of training (see :func:`spanbert.pretrain.heldout.split_by_document`);
    they are scored with :func:`spanbert.pretrain.heldout.evaluate_heldout` before the first step, every
    ``args.eval_every`` steps and after the last, into ``heldout_metrics.jsonl`` (one line per
    evaluation) and ``heldout_summary.json`` (before/after). ``heldout_unigram``: the training
    corpus's (V,) unigram distribution, for the unigram baseline in those metrics.
    """
    from accelerate import Accelerator

    precision = resolve_precision(args.mixed_precision)
    allow_new_precision(precision)
    # cpu=True on GPU-less machines, so that torchrun/accelerate launch give multi-CPU (gloo) DDP.
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    output_dir = Path(args.output_dir)
    is_main = accelerator.is_main_process

    # Every check comes before anything is written into the run folder.
    check_run_folder(output_dir, resume=resume, overwrite=overwrite)
    if args.max_steps is None:
        if not hasattr(dataset, "__len__"):
            raise ConfigError("--max-steps is required with a streaming corpus")
        args = replace(args, max_steps=steps_for_epochs(len(dataset), args, world))  # the caller's stays as it was
    # training_args.json keeps the setting (auto: None), so a resumed run decides again on its device
    workers, workers_why = loader_workers(args.num_workers, device, not hasattr(dataset, "__len__"))
    micro_batch = args.micro_batch_size(world)  # sequences per process per micro-batch
    warmup = args.warmup_for(args.max_steps)
    if args.head_warmup_steps >= args.max_steps:
        raise ConfigError(f"head_warmup_steps (--head-warmup-steps): must be fewer than the run's {args.max_steps} "
                          f"steps, got {args.head_warmup_steps}")
    if hasattr(dataset, "__len__"):
        _check_one_global_batch(len(dataset), micro_batch * world)
    record = {**asdict(args), **(run_settings or {}), "processes": world, MICRO_BATCH_KEY: micro_batch,  # training_args.json
              "precision_resolved": precision, "warmup_steps_resolved": warmup, **(run_info or {}),
              "versions": library_versions()}
    resumed = None
    if resume:
        stored = stored_run_arguments(output_dir)
        if stored is None:
            if is_main and list_checkpoints(output_dir):
                logger.warning("--resume: %s has no readable %s; the settings of this session cannot be checked "
                               "against the run's", output_dir, TRAINING_ARGS_FILE)
        else:
            options = {**TRAJECTORY_ARGS, **{k: k for k in flatten_settings(run_settings or {})}}
            check_resume_settings(output_dir, flatten_settings(stored), flatten_settings(record), options)
            error = resume_batch_error(output_dir, stored, args.batch_size)
            if error is not None:
                raise error
        resumed = newest_intact_checkpoint(output_dir, warn=is_main, state_type=TrainState)
    accelerator.wait_for_everyone()  # every process has checked the folder before the main one changes it
    created = first_missing_folder(output_dir)
    if is_main:
        if overwrite:
            removed = remove_run_files(output_dir, RUN_FILES, MODEL_FILES, MODEL_CARD_TITLE)
            if removed:
                logger.info("--overwrite: removed the previous run's %s from %s", ", ".join(removed), output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed + rank)
    model.to(device)
    if device.type == "cpu":
        tune_glibc_malloc()
        if args.hashed_dropout:
            use_hashed_dropout(model)
    model.train()
    # Parameters outside the loss (the pooler) must not require grad: DDP would wait for them.
    trainable = {id(p) for _, p in model.trainable_parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    fsdp = is_fsdp2(accelerator)
    if fsdp:
        units = shard_fsdp2(model, accelerator, precision)
        if is_main:
            logger.info("FSDP2: %d units sharded over %d processes", units, world)
    opt = build_optimizer(model, args)
    encoder_ids = {id(p) for n, p in model.trainable_parameters() if n.startswith(ENCODER_PREFIX)}
    scheduler = build_scheduler(opt, args, warmup, [id(g["params"][0]) in encoder_ids if g["params"] else False
                                                    for g in opt.param_groups])
    ddp_model, opt = accelerator.prepare(model, opt)
    # After prepare: FSDP2 has replaced the parameters by sharded ones.
    encoder_params = [p for n, p in model.trainable_parameters() if n.startswith(ENCODER_PREFIX)]
    freeze_by_grad = freeze_without_backward(world, fsdp)
    scaler = getattr(accelerator, "scaler", None)
    compiled, why = compile_choice(args.compile, device, args.max_steps, world)
    forward = torch.compile(ddp_model) if compiled else ddp_model

    state = TrainState()
    if resumed is not None:
        rng = load_checkpoint(resumed, model, opt, scheduler, scaler, rank, device, sharded=fsdp)
        if not fsdp:  # FSDP2 keeps the ties by construction
            model.tie_weights()
        restore_rng(rng, device)
        state = TrainState(**resumed.meta["state"])
        logger.info("resumed from %s at step %d", resumed.path, state.step)
        resumed = None  # its tensors are loaded: free them
        if is_main:  # (every process read its checkpoint before the barrier above)
            set_aside_checkpoints_after(output_dir, state.step)

    metrics: MetricsWriter | None = None
    try:
        if is_main:
            logger.info(describe_precision(args.mixed_precision, precision, device))
            logger.info("torch.compile: %s (%s)", "on" if compiled else "off", why)
            logger.info("data loader: %d worker process%s (%s)", workers, "" if workers == 1 else "es", workers_why)
            heads = (run_info or {}).get("new_heads")
            if heads is not None and state.step == 0:
                where = "not in --init-from" if (run_settings or {}).get("init_from") else "a model from scratch"
                logger.info("new heads: %s", f"{', '.join(heads)} ({where})" if heads else "none (--init-from has them all)")
            atomic_write_json(output_dir / TRAINING_ARGS_FILE, record)
            metrics = MetricsWriter(output_dir, state.step)
        heldout_log = HeldoutLog(output_dir, state.step, is_main) if heldout is not None else None
        eval_precision = precision if precision in ("no", "bf16") else "no"

        def evaluate(step: int) -> float:
            """Score the held-out set at ``step`` (every process: FSDP needs them all); returns the seconds it took."""
            from spanbert.pretrain.heldout import evaluate_heldout

            began = time.perf_counter()
            result = evaluate_heldout(model, heldout, collator, batch_size=micro_batch, precision=eval_precision,
                                      unigram=heldout_unigram)
            heldout_log.add(step, result)
            return time.perf_counter() - began

        if heldout_log is not None and state.step == 0:
            evaluate(0)
        weight = float(model.config.sbo_loss_weight)
        last_step = args.max_steps if stop_at_step is None else min(args.max_steps, stop_at_step)
        batches = _local_micro_batches(dataset, collator, replace(args, num_workers=workers), rank, world, state)
        bar = progress_bar(args.max_steps, state.step, "pretrain", is_main and args.progress)
        # this session's training time only: a resumed run gets the whole budget again
        budget = TimeBudget(args.time_budget_s, accelerator)
        window_start, window_tokens = time.perf_counter(), 0
        elapsed_before = state.elapsed_s
        stopped_by_budget = False
        flops_done = 0.0

        while state.step < last_step:
            frozen = state.step < args.head_warmup_steps  # head warm-up: only the heads train
            if freeze_by_grad and encoder_params and encoder_params[0].requires_grad == frozen:
                for p in encoder_params:
                    p.requires_grad_(not frozen)
            if args.head_warmup_steps and state.step == args.head_warmup_steps and is_main:
                logger.info("step %d: head warm-up done, the encoder trains from now on", state.step)
            micro = [next(batches) for _ in range(args.grad_accum)]
            epoch_after, batch_after = micro[-1][0], micro[-1][1]
            local_counts = torch.tensor(
                [sum(int((b["labels"] != IGNORE_INDEX).sum()) for _, _, b in micro),
                 sum(int(b["sbo_labels"].numel()) for _, _, b in micro),
                 sum(int(b["attention_mask"].sum()) for _, _, b in micro)],
                device=device, dtype=torch.float64,
            )
            counts = accelerator.reduce(local_counts, reduction="sum") if world > 1 else local_counts
            n_mlm, n_sbo, n_tokens = (max(float(c), 1.0) for c in counts)
            sums = torch.zeros(2, device=device, dtype=torch.float64)
            for i, (_, _, batch) in enumerate(micro):
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                sync = i == len(micro) - 1
                ctx = accelerator.no_sync(ddp_model) if not sync and world > 1 else contextlib.nullcontext()
                with ctx, accelerator.autocast():
                    out = forward(**batch)
                    # Global normalisation; x world because DDP averages gradients over processes.
                    loss = (out.mlm_loss_sum / n_mlm + weight * out.sbo_loss_sum / n_sbo) * world
                accelerator.backward(loss)
                sums += torch.stack([out.mlm_loss_sum.detach().double(), out.sbo_loss_sum.detach().double()])
                micro_flops = pretraining_step_flops(model.config, batch["input_ids"].shape, int(out.num_mlm_targets),
                                                     int(out.num_sbo_targets), encoder_backward=not (frozen and freeze_by_grad))
                flops_done += micro_flops
                state.flops += micro_flops * world  # the other processes' batches are counted as the same size
            if frozen and not freeze_by_grad:  # DDP/FSDP computed them (and reduced them): drop them
                for p in encoder_params:
                    p.grad = None
            grad_norm = accelerator.clip_grad_norm_(ddp_model.parameters(), args.max_grad_norm)
            opt.step()
            scheduler.step()
            opt.zero_grad(set_to_none=True)

            if world > 1:
                sums = accelerator.reduce(sums, reduction="sum")
            mlm_loss, sbo_loss = float(sums[0]) / n_mlm, float(sums[1]) / n_sbo
            state.step += 1
            state.epoch, state.batch_in_epoch = epoch_after, batch_after
            state.tokens += int(n_tokens)
            window_tokens += int(n_tokens)
            now = time.perf_counter()
            state.elapsed_s = elapsed_before + budget.elapsed(now)
            tok_s = window_tokens / max(now - window_start, 1e-9)
            if state.step % args.log_every == 0:
                window_start, window_tokens = now, 0
            row = {
                "step": state.step, "epoch": state.epoch, "loss": mlm_loss + weight * sbo_loss,
                "mlm_loss": mlm_loss, "sbo_loss": sbo_loss, "lr": scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm), "tokens": state.tokens, "tokens_per_s": tok_s,
                "elapsed_s": state.elapsed_s, "flops": state.flops,
            }
            state.last = {k: float(v) for k, v in row.items()}
            stopped_by_budget = budget.reached(now)
            done = state.step >= last_step or stopped_by_budget
            if heldout_log is not None and (state.step >= args.max_steps or stopped_by_budget
                                            or (args.eval_every and state.step % args.eval_every == 0)):
                # before the checkpoint of this step: a run resumed from it never repeats this evaluation
                paused = evaluate(state.step)
                budget.pause(paused)  # evaluation time is not training time
                window_start += paused
                row.update(heldout_columns(heldout_log.records.get(state.step), weight))
            if is_main:
                metrics.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", mlm=f"{mlm_loss:.3f}", sbo=f"{sbo_loss:.3f}",
                                tok_s=f"{tok_s:,.0f}", refresh=False)
                bar.update(1)
            if (args.save_every and state.step % args.save_every == 0) or done:
                # checkpoints/step-N: torch's RNG of every process in one tensor each (rng_tensors' joined
                # layout); a sharded (FSDP2) model's weights and optimizer state gathered whole (collective)
                rngs = gather_objects(accelerator, capture_rng(device))
                full = _full_states(accelerator, model, opt) if fsdp else None
                if is_main:
                    write_checkpoint(output_dir, state.step, model, opt, scheduler, scaler, asdict(state), record,
                                     rng_tensors(rngs, joined=True), full_states=full)
                    prune_checkpoints(output_dir, args.keep_checkpoints)
                accelerator.wait_for_everyone()
            if stopped_by_budget:
                break
            if state.step % TRIM_EVERY == 0 and device.type == "cpu":
                trim_heap()
        bar.close()
        for p in encoder_params:  # a session that ends inside the head warm-up leaves the model trainable
            p.requires_grad_(True)

        session_time = budget.elapsed()
        plot = None
        final = state.step >= args.max_steps or stopped_by_budget
        final_state = _full_weights(accelerator, model) if final and fsdp else None  # collective
        if heldout_log is not None and final:
            if state.step not in heldout_log.records:  # a finished run resumed: the loop did not run
                evaluate(state.step)
            heldout_log.finish(state.step)
        if is_main:
            metrics.close()
            if final:
                save_final_model(output_dir, model, tokenizer, state_dict=final_state)
            plot = plot_loss_curve(output_dir / METRICS_FILE, output_dir / PLOT_FILE,
                                   output_dir / HELDOUT_FILE if heldout is not None else None, weight)
        accelerator.wait_for_everyone()
        return PretrainResult(
            state=state,
            output_dir=output_dir,
            metrics_csv=output_dir / METRICS_FILE,
            loss_plot=plot,
            stopped_by_budget=stopped_by_budget,
            model_flops_per_s=flops_done * world / max(session_time, 1e-9),
        )
    except BaseException:
        if metrics is not None:
            metrics.close()
        if is_main and not resume and state.step == 0:  # a fresh run that failed at start-up: leave nothing
            remove_run_files(output_dir, RUN_FILES, MODEL_FILES, MODEL_CARD_TITLE, final_model=False)
            if created is not None:
                remove_empty_folders(output_dir, stop=created.parent)
        raise


def save_final_model(output_dir: Path, model: SpanBertForPreTraining, tokenizer,
                     state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Save model + tokenizer into ``output_dir`` in the standard Hugging Face layout (a
    ``BertForMaskedLM`` checkpoint plus the SBO head and settings beside it, see
    :func:`spanbert.pretrain.modeling.save_pretraining_folder`) and a model card; each file is written
    whole, then renamed in.

    ``state_dict``: the whole weights of a sharded (FSDP2) model, gathered by every process.
    """
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".final.") as tmp:
        save_pretraining_folder(model, tmp, state_dict=state_dict)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        publish_files(tmp, output_dir)
    atomic_write_text(output_dir / "README.md", _model_card(model))


def _model_card(model: SpanBertForPreTraining) -> str:
    c = model.config
    return (
        "---\nlibrary_name: transformers\npipeline_tag: fill-mask\n"
        "tags: [spanbert, bert, fill-mask, span-boundary-objective]\n---\n\n"
        f"{MODEL_CARD_TITLE}\n\n"
        f"{c.num_hidden_layers} layers, hidden {c.hidden_size}, {c.num_attention_heads} heads, "
        f"vocabulary {c.vocab_size}. Pre-trained with span masking and the span boundary objective (SBO).\n\n"
        "## Plain transformers (no `spanbert` needed)\n\n"
        "A standard `bert` checkpoint (`config.json` is a `BertConfig`, `model.safetensors` holds the encoder "
        "and the MLM head of `BertForMaskedLM`):\n\n"
        "```python\n"
        "from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, pipeline\n\n"
        "fill = pipeline(\"fill-mask\", model=\"path/to/this/folder\")  # the MLM head\n"
        "fill(\"The [MASK] of the Union.\")\n"
        "mlm = AutoModelForMaskedLM.from_pretrained(\"path/to/this/folder\")  # encoder + MLM head\n"
        "encoder = AutoModel.from_pretrained(\"path/to/this/folder\", add_pooling_layer=False)  # for fine-tuning\n"
        "```\n\n"
        "There is no trained pooler (SpanBERT has no next-sentence objective): heads that use one "
        "(`BertForSequenceClassification`) start it fresh, as they start their classifier.\n\n"
        "## With spanbert (MLM + SBO heads)\n\n"
        f"The SBO head is in `{SBO_HEAD_FILE}` and its settings (`sbo_position_size` {c.sbo_position_size}, "
        f"`sbo_max_span_tokens` {c.sbo_max_span_tokens}, `sbo_loss_weight` {c.sbo_loss_weight}) in "
        f"`{SPANBERT_CONFIG_FILE}`; transformers ignores both.\n\n"
        "- `spanbert fill --model DIR \"text with [MASK] [MASK]\"` fills masked spans with the MLM head, the SBO "
        "head, both together, and iteratively;\n"
        "- `spanbert pretrain --init-from DIR ...` continues pre-training with both heads;\n"
        "- `spanbert.pretrain.modeling.load_pretraining_model(DIR)` gives the `SpanBertForPreTraining` model;\n"
        "- `spanbert finetune <task> --model DIR ...` fine-tunes the encoder.\n"
        "\nTraining metrics: `metrics.csv`, `loss_curve.png`.\n"
    )
