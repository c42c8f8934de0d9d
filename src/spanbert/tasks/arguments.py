"""The settings of a fine-tuning run (:class:`FinetuneArguments`), checked when made.

A light module (no torch): the command line builds these before anything heavy is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from spanbert.core.errors import ConfigError


@dataclass
class FinetuneArguments:
    """Settings of a fine-tuning run (defaults: the SpanBERT authors' QA grid, scaled down)."""

    output_dir: str
    epochs: float = 2.0
    batch_size: int = 32  # items per optimizer step: all processes and accumulated micro-batches together
    grad_accum: int = 1  # micro-batches per process per optimizer step: each is batch_size / (processes x grad_accum)
    lr: float = 5e-5
    head_lr: float | None = None  # peak rate of the parameters outside the encoder (None: lr)
    warmup_ratio: float = 0.1  # share of the steps warmed up, unless warmup_steps is given
    warmup_steps: int | None = None
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "bf16", "fp16", "auto"] = "auto"  # the CLI's --precision
    seed: int = 42
    max_steps: int | None = None  # overrides epochs
    time_budget_s: float | None = None  # stop early after this much time of this session (dev evaluations included)
    log_every: int = 20
    progress: bool = True
    hashed_dropout: bool = True  # on CPU: cheaper dropout masks (spanbert.core.dropout)
    eval_every: int | None = None  # steps between dev evaluations (None: at the end of every epoch)
    select_best: bool = True  # end with the best dev evaluation's weights (False: the last step's)
    early_stopping: int | None = None  # stop after this many dev evaluations without a better score
    save_every: int | None = None  # steps between checkpoints (None: at every dev evaluation, else epoch end; 0: none)
    keep_checkpoints: int = 1  # the newest checkpoints kept (plus the one of the best dev score)
    resume: bool = False  # continue the run in output_dir from its newest intact checkpoint
    overwrite: bool = False  # delete the run in output_dir first
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
