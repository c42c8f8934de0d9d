"""Command-line pieces every task shares: the fine-tuning options (one spelling and help text
for all tasks), their conversion to :class:`~spanbert.finetune.FinetuneArguments`, and reading
the texts a ``predict`` command is given inline or in a file.

    def finetune_x_command(..., epochs: Epochs = 3.0, batch_size: BatchSize = 32, ...):
        args = finetune_arguments(output, epochs=epochs, batch_size=batch_size, ...)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import ConfigError
from .finetune import FinetuneArguments

Epochs = Annotated[float, typer.Option(help="Passes over the training data.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Items per optimizer step (all processes together).")]
LearningRate = Annotated[float, typer.Option("--lr", help="Peak learning rate (linear warm-up, then linear decay).")]
WarmupRatio = Annotated[float, typer.Option(help="Share of the steps spent warming up.")]
MaxSteps = Annotated[int | None, typer.Option(min=1, help="Optimizer steps (overrides --epochs).")]
MixedPrecision = Annotated[str, typer.Option(help="no, bf16, fp16 or auto (bf16 where native).")]
HeadLearningRate = Annotated[float | None, typer.Option(
    "--head-lr", help="Peak learning rate of the task head (parameters outside the encoder); default: --lr.")]
Seed = Annotated[int, typer.Option(min=0, help="Seed of the new head, batch order and dropout.")]
Dropout = Annotated[float | None, typer.Option(help="Dropout (default: the checkpoint's).")]
TimeBudget = Annotated[float | None, typer.Option(help="Stop training after this many minutes.")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]
Precision = Annotated[str, typer.Option(help="no (fp32), bf16 or auto (bf16 where native).")]
EvalEvery = Annotated[int | None, typer.Option(min=1, 
    help="With --dev: evaluate on dev every N steps (default: at the end of every epoch) and after the last step.")]
SelectBest = Annotated[bool, typer.Option(
    "--select-best/--keep-last", help="With --dev: keep the weights of the best dev evaluation (default) or the last step's.")]


def finetune_arguments(output: Path | str, *, epochs: float, batch_size: int, lr: float, warmup_ratio: float = 0.1,
                       head_lr: float | None = None, max_steps: int | None = None, mixed_precision: str = "auto", seed: int = 42,
                       time_budget: float | None = None, progress: bool = True, eval_every: int | None = None,
                       select_best: bool = True) -> FinetuneArguments:
    """The loop's settings from the shared options (``time_budget`` in minutes)."""
    return FinetuneArguments(
        output_dir=str(output), epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, warmup_ratio=warmup_ratio,
        max_steps=max_steps, mixed_precision=mixed_precision, seed=seed,
        time_budget_s=None if time_budget is None else time_budget * 60, progress=progress,
        eval_every=eval_every, select_best=select_best,
    )


def read_text_file(path: Path, what: str = "--input") -> str:
    """A UTF-8 text file's content; a missing file or bad bytes are one-line errors."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def texts_to_predict(texts: list[str] | None, input_file: Path | None, per_line: bool = True) -> list[str]:
    """The ``--text`` values plus the file's non-blank lines (or its whole content with
    ``per_line=False``); nothing at all, or an empty ``--text``, is a one-line error."""
    out = list(texts or [])
    for i, t in enumerate(out):
        if not t.strip():
            raise ConfigError(f"--text {i + 1}: empty text")
    if input_file is not None:
        content = read_text_file(input_file)
        if per_line:
            out += [line for line in content.splitlines() if line.strip()]
        elif content.strip():
            out.append(content)
    if not out:
        raise ConfigError("--text / --input: nothing to predict")
    return out


__all__ = ["finetune_arguments", "read_text_file", "texts_to_predict", "Epochs", "BatchSize", "LearningRate", "HeadLearningRate",
           "WarmupRatio", "MaxSteps", "EvalEvery", "SelectBest", "MixedPrecision", "Seed", "Dropout", "TimeBudget", "Progress", "Precision"]
