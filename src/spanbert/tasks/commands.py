"""``spanbert finetune TASK`` and ``spanbert evaluate TASK`` for every registered task, built
from the task's declaration (:mod:`spanbert.tasks.protocol`): the options are the fields of its
``options`` dataclass that carry help text (defaults and help live there, once), beside the
options every task shares (:mod:`spanbert.tasks.options`). A field whose metadata says
``"evaluate": True`` is also an option of ``evaluate`` (default: the value the model was
trained with).

Nothing heavy is imported here: the commands import torch when they run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from spanbert.core.options import PRECISION_ALIAS, dataclass_options, option_parameter, with_aliases
from spanbert.tasks.options import (Dropout, MaxDevExamples, MaxExamples, MaxTrainExamples, Precision, Progress,
                                    finetune_command)
from spanbert.tasks.protocol import Task

def _source_type(task: Task) -> Any:
    """What ``--train``/``--dev``/``--data`` parse into: one source, or a list when repeatable."""
    return list[str] if task.repeatable_sources else str


def _repeat(task: Task) -> str:
    return " Repeatable." if task.repeatable_sources else ""


def _with_signature(fn: Callable, parameters: list[inspect.Parameter], doc: str) -> Callable:
    fn.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    fn.__doc__ = doc
    return fn


def finetune_command_for(task: Task) -> Callable:
    """The ``spanbert finetune TASK`` command of ``task``."""
    own = [f.name for f in fields(task.options)] if task.options else []

    def command(*, model: str, train: Any, output: Path, dev: Any, dropout: float | None,
                max_train_examples: int | None, max_dev_examples: int | None, args, **values: Any) -> None:
        from spanbert.tasks.runner import finetune_task

        options = task.options(**{k: v for k, v in values.items() if k in own}) if task.options else None
        result = finetune_task(task, model, train, output, options=options, dev_source=dev, args=args,
                               max_train_examples=max_train_examples, max_dev_examples=max_dev_examples,
                               eval_precision=args.mixed_precision, dropout=dropout)
        if not result.main:  # another process of a multi-process run: the main one reports
            return
        for line in task.report(result.summary):
            typer.echo(line)
        typer.echo(f"model: {output}")

    parameters = [
        option_parameter("model", Annotated[str, typer.Option("--model", "-m", help=(
            "Any BERT-family folder: ours (spanbert pretrain) or plain transformers."))]),
        option_parameter("train", Annotated[_source_type(task), typer.Option(help=f"Training data: {task.data_help}{_repeat(task)}")]),
        option_parameter("output", Annotated[Path, typer.Option("--output", "-o", help=(
            "Folder for the fine-tuned model, settings and dev results."))]),
        option_parameter("dev", Annotated[_source_type(task) | None, typer.Option(help=(
            f"Dev data: scored by {task.metric} at every epoch end (the best keeps its weights, see --select-best) "
            f"and evaluated after training.{_repeat(task)}"))], None),
        *dataclass_options(task.options),
        option_parameter("dropout", Dropout, None),
        option_parameter("max_train_examples", MaxTrainExamples, None),
        option_parameter("max_dev_examples", MaxDevExamples, None),
        option_parameter("args", Any, None),
    ]
    _with_signature(command, parameters, task.summary)
    return finetune_command(task.name, epochs=task.epochs, batch_size=task.batch_size, lr=task.lr,
                            aliases=task.finetune_aliases)(command)


def evaluate_command_for(task: Task) -> Callable:
    """The ``spanbert evaluate TASK`` command of ``task``."""
    def command(*, model: Path, data: Any, output: Path, batch_size: int, precision: str, max_examples: int | None,
                progress: bool, **overrides: Any) -> None:
        from spanbert.core.precision import check_precision
        from spanbert.tasks.runner import evaluate_task

        check_precision(precision)
        loaded, tokenizer, settings = task.load_trained(model)
        settings, tune = task.evaluation_settings(settings, {k: v for k, v in overrides.items() if v is not None})
        examples = task.read(data, settings, split="test", labelled=True).head(max_examples)
        task.check(examples, loaded, settings)
        result = evaluate_task(task, loaded, tokenizer, examples, settings, output, tune=tune, batch_size=batch_size,
                               precision=precision, progress=progress)
        for line in task.report_evaluation(result):
            typer.echo(line)
        typer.echo(f"files: {output}")

    parameters = [
        option_parameter("model", Annotated[Path, typer.Option("--model", "-m", help=f"A folder of spanbert finetune {task.name}.")]),
        option_parameter("data", Annotated[_source_type(task), typer.Option(help=f"Labelled data: {task.data_help}{_repeat(task)}")]),
        option_parameter("output", Annotated[Path, typer.Option("--output", "-o", help=(
            "Folder for the predictions and metrics.json."))]),
        *dataclass_options(task.options, evaluate=True),
        *task.evaluate_parameters(),
        option_parameter("batch_size", Annotated[int, typer.Option(min=1, help=f"{task.eval_unit} per forward pass.")],
                   task.eval_batch_size),
        option_parameter("precision", Precision, "auto"),
        option_parameter("max_examples", MaxExamples, None),
        option_parameter("progress", Progress, True),
    ]
    _with_signature(command, parameters, task.evaluate_summary)
    return with_aliases({**PRECISION_ALIAS, **task.evaluate_aliases})(command)


__all__ = ["finetune_command_for", "evaluate_command_for"]
