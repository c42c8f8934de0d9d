"""Command-line pieces every task shares: the fine-tuning options (one spelling, default and help
text for all tasks, added by :func:`finetune_command`), old option names kept as hidden aliases
(:func:`with_aliases`), and reading the texts a ``predict`` command is given inline or in a file.

    @finetune_command("classify", epochs=2.0, batch_size=32, lr=5e-5)
    def finetune_classify_command(model: ..., train: ..., output: ..., args: FinetuneArguments) -> None:
        finetune_classify(model, train, output, args=args, ...)

The option vocabulary of the ``finetune``/``evaluate``/``predict`` commands: ``--max-train-examples``
and ``--max-dev-examples`` (a task's older names stay as hidden aliases), ``--precision`` (``no``,
``bf16``, ``fp16``, ``auto``; default ``auto``; ``--mixed-precision`` is a hidden alias),
``--batch-size`` (examples per optimizer step, all processes and ``--grad-accum`` micro-batches
together), ``--seed`` (default 42), ``--warmup-steps`` beside ``--warmup-ratio`` (steps win).
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from spanbert.core.errors import ConfigError
from spanbert.core.options import (PRECISION_ALIAS, TRANSFORMERS_NAMES, dataclass_options, dataclass_values, option_parameter,
                                   with_aliases)
from spanbert.core.precision import PRECISION_HELP, PrecisionName
from spanbert.tasks.arguments import FinetuneArguments

Precision = Annotated[PrecisionName, typer.Option("--precision", help=PRECISION_HELP)]
Dropout = Annotated[float | None, typer.Option(help="Dropout (default: the checkpoint's).")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]
TimeBudget = Annotated[float | None, typer.Option(help="Stop training after this many minutes (of this session).")]
MaxTrainExamples = Annotated[int | None, typer.Option(
    min=1, help="Use only the first N training examples (the task's unit: questions, sentences, documents, ...).")]
MaxDevExamples = Annotated[int | None, typer.Option(min=1, help="Use only the first N dev examples (during and after training).")]
MaxExamples = Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N examples.")]


def finetune_arguments(output: Path | str, *, time_budget: float | None = None, run_settings: dict[str, Any] | None = None,
                       **values: Any) -> FinetuneArguments:
    """The loop's settings from the shared options (``values`` by option name; ``time_budget`` in minutes)."""
    return FinetuneArguments(output_dir=str(output), **dataclass_values(FinetuneArguments, values),
                             time_budget_s=None if time_budget is None else time_budget * 60,
                             run_settings=dict(run_settings or {}))


# -- fine-tuning commands ----------------------------------------------------------------------------


def _shared_parameters(epochs: float, batch_size: int, lr: float) -> list[inspect.Parameter]:
    """The fine-tuning options every task has (the option fields of :class:`FinetuneArguments`),
    with this task's defaults for the first three, and --time-budget in minutes."""
    task_defaults = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
    return [p.replace(default=task_defaults.get(p.name, p.default)) for p in dataclass_options(FinetuneArguments)] + [
        option_parameter("time_budget", TimeBudget, None)]


def _jsonable(value: Any) -> Any:
    """An option's value as training_args.json stores it."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def finetune_command(task: str, *, epochs: float, batch_size: int, lr: float,
                     aliases: Mapping[str, str] | None = None) -> Callable[[Callable], Callable]:
    """Decorator of a ``spanbert finetune TASK`` command: adds the shared fine-tuning options (this
    task's defaults for ``epochs``, ``batch_size`` and ``lr``) after the command's own, and calls it
    with ``args``, a :class:`~spanbert.tasks.finetune.FinetuneArguments` of them that records every
    option (the command's own too) for training_args.json. ``--precision`` (hidden alias
    ``--mixed-precision``) becomes ``args.mixed_precision``. ``aliases``: old option names of the
    command's own parameters (see :func:`with_aliases`). ``--output`` is checked before the command
    runs (:func:`spanbert.core.run_folder.check_output_folder`), so a refusal comes before any data is read.
    """
    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "args"]
        shared = _shared_parameters(epochs, batch_size, lr)
        names = [p.name for p in shared]

        @functools.wraps(fn)
        def command(**kwargs):
            from spanbert.core.precision import check_precision
            from spanbert.core.run_folder import check_output_folder

            values = {name: kwargs.pop(name) for name in names}
            check_precision(values["precision"])
            check_output_folder(kwargs["output"], resume=values["resume"], overwrite=values["overwrite"])
            options = {k: _jsonable(v) for k, v in {**kwargs, **values}.items()}
            args = finetune_arguments(kwargs["output"], **values,
                                      run_settings={"command": f"finetune {task}", "options": options})
            return fn(**kwargs, args=args)

        command.__signature__ = signature.replace(parameters=[*own, *shared])
        return with_aliases({**PRECISION_ALIAS, **TRANSFORMERS_NAMES, **(aliases or {})})(command)

    return decorate


# -- scores -----------------------------------------------------------------------------------------


def report_scores(scores: dict, output: Path | None) -> None:
    """What a ``spanbert score ...`` command ends with: the scores as indented JSON on stdout,
    and also in the ``--output`` file (written atomically) when one is given."""
    import json

    typer.echo(json.dumps(scores, indent=2))
    if output is not None:
        from spanbert.core.atomic import atomic_write_json

        atomic_write_json(output, scores)


# -- input texts --------------------------------------------------------------------------------------


def read_text_file(path: Path, what: str = "--input") -> str:
    """A UTF-8 text file's content; a missing file or bad bytes are one-line errors."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def one_text(inline: str | None, path: Path | None, names: tuple[str, str], what: str = "text") -> str:
    """Exactly one of an inline option (``names[0]``) and a UTF-8 file (``names[1]``, its whole
    content): the text, which must not be blank (one-line errors naming the option or file)."""
    if (inline is None) == (path is None):
        raise ConfigError(f"{names[0]} / {names[1]}: give exactly one")
    text = read_text_file(path) if path is not None else inline
    if not text.strip():
        raise ConfigError(f"{path or names[0]}: the {what} is empty")
    return text


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


__all__ = ["report_scores", "finetune_arguments", "finetune_command", "read_text_file", "one_text", "texts_to_predict", "Precision",
           "Dropout", "TimeBudget", "Progress", "MaxTrainExamples", "MaxDevExamples", "MaxExamples"]
