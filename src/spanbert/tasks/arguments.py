"""The settings of a fine-tuning run (:class:`FinetuneArguments`), checked when made.

A light module (no torch): the command line builds these before anything heavy is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from spanbert.core.errors import ConfigError
from spanbert.core.options import option
from spanbert.core.precision import PRECISION_HELP, PrecisionName


@dataclass
class FinetuneArguments:
    """Settings of a fine-tuning run (defaults: the SpanBERT authors' QA grid, scaled down)."""

    output_dir: str
    # The task's own defaults of epochs, batch_size and lr replace these on its command line.
    epochs: float = option(2.0, help="Passes over the training data (at most: see --early-stopping).")
    # items per optimizer step: all processes and accumulated micro-batches together
    batch_size: int = option(32, min=1, help=(
        "Training examples per optimizer step, all processes and --grad-accum micro-batches together."))
    # micro-batches per process per optimizer step: each is batch_size / (processes x grad_accum)
    grad_accum: int = option(1, min=1, help=(
        "Split each batch into N micro-batches per process (less memory, the same steps); must divide --batch-size."))
    lr: float = option(5e-5, help="Peak learning rate (linear warm-up, then linear decay to 0).")
    head_lr: float | None = option(None, help=(
        "Peak learning rate of the task head (parameters outside the encoder); default: --lr."))
    weight_decay: float = option(0.01, min=0.0, help="AdamW weight decay (weight matrices only).")
    warmup_ratio: float = option(0.1, help="Share of the steps spent warming up (unless --warmup-steps).")
    warmup_steps: int | None = option(None, min=0, help="Warm-up steps (instead of --warmup-ratio).")
    max_steps: int | None = option(None, min=1, help="Optimizer steps (overrides --epochs).")
    max_grad_norm: float = 1.0
    mixed_precision: PrecisionName = option("auto", option="precision", names=("--precision",),
                                            help=PRECISION_HELP + " For training and dev evaluation.")
    seed: int = option(42, min=0, help="Seed of the new head, batch order and dropout.")
    # stop early after this much time of this session (dev evaluations included); --time-budget in minutes
    time_budget_s: float | None = None
    eval_every: int | None = option(None, min=1, help=(
        "With --dev: evaluate on dev every N steps (default: at the end of every epoch) and after the last step."))
    select_best: bool = option(True, names=("--select-best/--keep-last",), help=(
        "With --dev: keep the weights of the best dev evaluation (default) or the last step's."))
    early_stopping: int | None = option(None, min=1, help=(
        "With --dev: stop after N dev evaluations in a row without a better score."))
    save_every: int | None = option(None, min=0, help=(
        "Checkpoint into OUTPUT/checkpoints every N steps (default: at every dev evaluation, or every epoch end "
        "without --dev; 0: never). They serve --resume and go once the final model is saved."))
    keep_checkpoints: int = option(1, min=1, help="Checkpoints kept: the newest N, plus the one with the best dev score.")
    log_every: int = option(20, min=1, help="A row of finetune_metrics.csv every N steps.")
    resume: bool = option(False, help=(
        "Continue the run in --output from its newest intact checkpoint, to the weights and metrics an uninterrupted "
        "run gives (give the same options; one that changes the training is refused)."))
    overwrite: bool = option(False, help=(
        "Delete the run in --output (model, checkpoints, metrics, dev results; files a run did not write stay) and "
        "start afresh. Without it (or --resume) a non-empty --output is refused."))
    progress: bool = option(True, help="Show progress bars.")
    hashed_dropout: bool = True  # on CPU: cheaper dropout masks (spanbert.core.dropout)
    run_settings: dict[str, Any] = field(default_factory=dict)  # the command and its options, for training_args.json

    def __post_init__(self) -> None:
        """Refuse values that cannot give a sensible run, naming the field (= the CLI option)."""
        def finite(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        def count(name: str, minimum: int, none_ok: bool = True) -> None:
            value = getattr(self, name)
            if value is None and none_ok:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name}: must be a whole number >= {minimum}, got {value!r}")

        for name in ("batch_size", "grad_accum", "log_every", "keep_checkpoints"):
            count(name, 1, none_ok=False)
        for name, minimum in (("max_steps", 1), ("eval_every", 1), ("early_stopping", 1), ("warmup_steps", 0),
                              ("save_every", 0)):
            count(name, minimum)
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size: {self.batch_size} is not a multiple of grad_accum {self.grad_accum} "
                              "(the micro-batches split the batch evenly)")
        if not finite(self.lr) or self.lr <= 0:
            raise ConfigError(f"lr: must be a finite number > 0, got {self.lr}")
        if self.head_lr is not None and (not finite(self.head_lr) or self.head_lr <= 0):
            raise ConfigError(f"head_lr: must be a finite number > 0, got {self.head_lr}")
        if self.max_steps is None and (not finite(self.epochs) or self.epochs <= 0):
            raise ConfigError(f"epochs: must be a finite number > 0, got {self.epochs}")
        if not finite(self.warmup_ratio) or not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if not finite(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay: must be a finite number >= 0, got {self.weight_decay}")
        if self.mixed_precision not in ("no", "bf16", "fp16", "auto"):
            raise ConfigError(f"mixed_precision: expected no, bf16, fp16 or auto, got {self.mixed_precision!r}")
        if self.time_budget_s is not None and (not finite(self.time_budget_s) or self.time_budget_s <= 0):
            raise ConfigError(f"time_budget: must be a finite time > 0, got {self.time_budget_s}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite: choose one (--resume continues the run in --output, "
                              "--overwrite deletes it and starts afresh)")


# FinetuneArguments fields that change what a run computes, with the option that sets each: a
# resumed run must keep the stored values. The others (output, logging, checkpoints, the time
# budget, progress, resume/overwrite) may change between sessions.
TRAJECTORY_ARGS: dict[str, str] = {
    "epochs": "--epochs", "batch_size": "--batch-size", "grad_accum": "--grad-accum", "lr": "--lr", "head_lr": "--head-lr",
    "warmup_ratio": "--warmup-ratio", "warmup_steps": "--warmup-steps", "weight_decay": "--weight-decay",
    "max_grad_norm": "max_grad_norm", "mixed_precision": "--precision", "seed": "--seed", "max_steps": "--max-steps",
    "hashed_dropout": "hashed_dropout", "eval_every": "--eval-every", "select_best": "--select-best/--keep-last",
    "early_stopping": "--early-stopping",
}


# Options of a command (FinetuneArguments.run_settings["options"]) that a resumed session may change.
SESSION_OPTIONS = frozenset({"output", "progress", "time_budget", "log_every", "save_every", "keep_checkpoints", "resume",
                             "overwrite"})
