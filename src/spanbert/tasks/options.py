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

import copy
import enum
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer
from typer.models import OptionInfo

from spanbert.core.errors import ConfigError
from spanbert.core.precision import PRECISION_HELP
from spanbert.tasks.arguments import FinetuneArguments

Epochs = Annotated[float, typer.Option(help="Passes over the training data (at most: see --early-stopping).")]
BatchSize = Annotated[int, typer.Option(
    min=1, help="Training examples per optimizer step, all processes and --grad-accum micro-batches together.")]
GradAccum = Annotated[int, typer.Option(
    min=1, help="Split each batch into N micro-batches per process (less memory, the same steps); must divide --batch-size.")]
LearningRate = Annotated[float, typer.Option("--lr", help="Peak learning rate (linear warm-up, then linear decay to 0).")]
WeightDecay = Annotated[float, typer.Option(min=0.0, help="AdamW weight decay (weight matrices only).")]
WarmupRatio = Annotated[float, typer.Option(help="Share of the steps spent warming up (unless --warmup-steps).")]
WarmupSteps = Annotated[int | None, typer.Option(min=0, help="Warm-up steps (instead of --warmup-ratio).")]
MaxSteps = Annotated[int | None, typer.Option(min=1, help="Optimizer steps (overrides --epochs).")]
Precision = Annotated[str, typer.Option("--precision", help=PRECISION_HELP)]
TrainingPrecision = Annotated[str, typer.Option("--precision", help=PRECISION_HELP + " For training and dev evaluation.")]
HeadLearningRate = Annotated[float | None, typer.Option(
    "--head-lr", help="Peak learning rate of the task head (parameters outside the encoder); default: --lr.")]
Seed = Annotated[int, typer.Option(min=0, help="Seed of the new head, batch order and dropout.")]
Dropout = Annotated[float | None, typer.Option(help="Dropout (default: the checkpoint's).")]
TimeBudget = Annotated[float | None, typer.Option(help="Stop training after this many minutes (of this session).")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]
EvalEvery = Annotated[int | None, typer.Option(
    min=1, help="With --dev: evaluate on dev every N steps (default: at the end of every epoch) and after the last step.")]
SelectBest = Annotated[bool, typer.Option(
    "--select-best/--keep-last", help="With --dev: keep the weights of the best dev evaluation (default) or the last step's.")]
EarlyStopping = Annotated[int | None, typer.Option(
    min=1, help="With --dev: stop after N dev evaluations in a row without a better score.")]
SaveEvery = Annotated[int | None, typer.Option(
    min=0, help="Checkpoint into OUTPUT/checkpoints every N steps (default: at every dev evaluation, or every epoch end "
                "without --dev; 0: never). They serve --resume and go once the final model is saved.")]
KeepCheckpoints = Annotated[int, typer.Option(min=1, help="Checkpoints kept: the newest N, plus the one with the best dev score.")]
LogEvery = Annotated[int, typer.Option(min=1, help="A row of finetune_metrics.csv every N steps.")]
Resume = Annotated[bool, typer.Option(
    help="Continue the run in --output from its newest intact checkpoint, to the weights and metrics an uninterrupted "
         "run gives (give the same options; one that changes the training is refused).")]
Overwrite = Annotated[bool, typer.Option(
    help="Delete the run in --output (model, checkpoints, metrics, dev results; files a run did not write stay) and "
         "start afresh. Without it (or --resume) a non-empty --output is refused.")]
MaxTrainExamples = Annotated[int | None, typer.Option(
    min=1, help="Use only the first N training examples (the task's unit: questions, sentences, documents, ...).")]
MaxDevExamples = Annotated[int | None, typer.Option(min=1, help="Use only the first N dev examples (during and after training).")]
MaxExamples = Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N examples.")]


def finetune_arguments(output: Path | str, *, epochs: float, batch_size: int, lr: float, warmup_ratio: float = 0.1,
                       warmup_steps: int | None = None, head_lr: float | None = None, max_steps: int | None = None,
                       mixed_precision: str = "auto", seed: int = 42, time_budget: float | None = None, progress: bool = True,
                       eval_every: int | None = None, select_best: bool = True, grad_accum: int = 1,
                       weight_decay: float = 0.01, early_stopping: int | None = None, save_every: int | None = None,
                       keep_checkpoints: int = 1, log_every: int = 20, resume: bool = False, overwrite: bool = False,
                       run_settings: dict[str, Any] | None = None) -> FinetuneArguments:
    """The loop's settings from the shared options (``time_budget`` in minutes)."""
    return FinetuneArguments(
        output_dir=str(output), epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr, head_lr=head_lr,
        warmup_ratio=warmup_ratio, warmup_steps=warmup_steps, weight_decay=weight_decay, max_steps=max_steps,
        mixed_precision=mixed_precision, seed=seed, time_budget_s=None if time_budget is None else time_budget * 60,
        progress=progress, eval_every=eval_every, select_best=select_best, early_stopping=early_stopping,
        save_every=save_every, keep_checkpoints=keep_checkpoints, log_every=log_every, resume=resume, overwrite=overwrite,
        run_settings=dict(run_settings or {}),
    )


# -- hidden aliases -------------------------------------------------------------------------------


def _typer_option(annotation) -> tuple[Any, OptionInfo]:
    """(type, typer option) of an ``Annotated[type, typer.Option(...)]`` parameter annotation."""
    if get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        for extra in extras:
            if isinstance(extra, OptionInfo):
                return base, extra
    raise TypeError(f"not an Annotated typer option: {annotation!r}")


def _option_name(parameter: inspect.Parameter) -> str:
    """The (first long) option name of a command parameter, as the user types it."""
    _, info = _typer_option(parameter.annotation)
    decls = [d for d in (info.default, *(info.param_decls or ())) if isinstance(d, str) and d.startswith("--")]
    return decls[0].split("/")[0] if decls else "--" + parameter.name.replace("_", "-")


def with_aliases(aliases: Mapping[str, str]) -> Callable[[Callable], Callable]:
    """Decorator: accept each old option name of ``aliases`` (``{"--old-name": "parameter"}``) as a
    hidden second name of the command's ``parameter``: the same type and checks, not in ``--help``.
    Giving both names with different values is a one-line error."""
    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)
        params = dict(signature.parameters)
        hidden: list[inspect.Parameter] = []
        targets: dict[str, tuple[str, str]] = {}
        for old, target in aliases.items():
            base, info = _typer_option(params[target].annotation)
            alias = copy.copy(info)
            alias.default, alias.param_decls, alias.hidden = ..., (old,), True
            alias.help = f"Old name of {_option_name(params[target])}."
            name = "alias_" + old.lstrip("-").replace("-", "_")
            hidden.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[base | None, alias]))
            targets[name] = (old, target)

        @functools.wraps(fn)
        def command(**kwargs):
            for name, (old, target) in targets.items():
                value = kwargs.pop(name)
                if value is None:
                    continue
                given = kwargs.get(target, params[target].default)
                if given != params[target].default and given != value:
                    raise ConfigError(f"{old} and {_option_name(params[target])}: give one ({old} is the old name)")
                kwargs[target] = value
            return fn(**kwargs)

        command.__signature__ = signature.replace(parameters=[*params.values(), *hidden])
        return command

    return decorate


# -- fine-tuning commands ----------------------------------------------------------------------------


def _shared_parameters(epochs: float, batch_size: int, lr: float) -> list[inspect.Parameter]:
    """The fine-tuning options every task has, with this task's defaults for the first three."""
    shared: list[tuple[str, Any, Any]] = [
        ("epochs", Epochs, epochs), ("batch_size", BatchSize, batch_size), ("grad_accum", GradAccum, 1),
        ("lr", LearningRate, lr), ("head_lr", HeadLearningRate, None), ("weight_decay", WeightDecay, 0.01),
        ("warmup_ratio", WarmupRatio, 0.1), ("warmup_steps", WarmupSteps, None), ("max_steps", MaxSteps, None),
        ("precision", TrainingPrecision, "auto"), ("seed", Seed, 42), ("time_budget", TimeBudget, None),
        ("eval_every", EvalEvery, None), ("select_best", SelectBest, True), ("early_stopping", EarlyStopping, None),
        ("save_every", SaveEvery, None), ("keep_checkpoints", KeepCheckpoints, 1), ("log_every", LogEvery, 20),
        ("resume", Resume, False), ("overwrite", Overwrite, False), ("progress", Progress, True),
    ]
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, annotation, default in shared]


# The names transformers' example scripts (run_qa.py, run_ner.py, ...) give these options, accepted
# as hidden aliases. Not --per-device-train-batch-size: our --batch-size is the whole step's.
TRANSFORMERS_NAMES = {"--learning-rate": "lr", "--num-train-epochs": "epochs", "--gradient-accumulation-steps": "grad_accum"}


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
            values["mixed_precision"] = values.pop("precision")
            args = finetune_arguments(kwargs["output"], **values,
                                      run_settings={"command": f"finetune {task}", "options": options})
            return fn(**kwargs, args=args)

        command.__signature__ = signature.replace(parameters=[*own, *shared])
        return with_aliases({"--mixed-precision": "precision", **TRANSFORMERS_NAMES, **(aliases or {})})(command)

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


__all__ = ["report_scores", "finetune_arguments", "finetune_command", "with_aliases", "read_text_file", "texts_to_predict", "Epochs",
           "BatchSize", "GradAccum", "LearningRate", "HeadLearningRate", "WeightDecay", "WarmupRatio", "WarmupSteps",
           "MaxSteps", "EvalEvery", "SelectBest", "EarlyStopping", "SaveEvery", "KeepCheckpoints", "LogEvery", "Resume",
           "Overwrite", "Precision", "TrainingPrecision", "Seed", "Dropout", "TimeBudget", "Progress",
           "MaxTrainExamples", "MaxDevExamples", "MaxExamples"]
