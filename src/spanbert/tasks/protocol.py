"""The task protocol: what a fine-tuning task declares, and the registry that finds it.

A task (``qa``, ``classify``, ...) is a subclass of :class:`Task`, registered by name with
:func:`register_task`. It declares, and nothing more:

* ``name``, the ``unit`` its examples count in (questions, sentences, ...), the dev ``metric``
  to maximise, its ``settings_type`` (a frozen dataclass saved as ``<name>_settings.json``
  beside the model) and its ``options`` (a dataclass whose fields become the command-line
  options, help text included: defaults live once, there);
* how it **reads** a source into examples (:meth:`Task.read` -> :class:`TaskData`);
* how it **loads** a model: a checkpoint under a fresh head for training
  (:meth:`Task.load_for_training`), or a folder it fine-tuned (:meth:`Task.load_trained`);
* how it **encodes** examples into training batches (:meth:`Task.training_batches`, with its
  loss when the model computes none);
* how it **predicts** (:meth:`Task.infer`: raw outputs of the model over examples), optionally
  **tunes** a decision setting on dev (:meth:`Task.tune`: the QA null threshold, the NER
  threshold), **scores** (:meth:`Task.score`) and **writes** predictions (:meth:`Task.write`).

:mod:`spanbert.tasks.runner` builds ``finetune_task`` and ``evaluate_task`` on these once, and
:mod:`spanbert.tasks.commands` the ``spanbert finetune/evaluate TASK`` commands.

This module imports no torch: the command line reads the registry before it parses.

    @register_task
    class Classify(Task):
        name, unit, metric = "classify", "examples", "accuracy"
        settings_type, options = ClassifySettings, ClassifyOptions
        ...
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from spanbert.core.errors import CheckpointError, ConfigError


@dataclass
class TaskData:
    """Examples read from one source, in the task's unit, with what the task needs beside them
    (the gold answers as the official scorer reads them, the tag scheme, ...)."""

    source: str
    examples: list
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def head(self, n: int | None) -> "TaskData":
        """The first ``n`` examples (all of them for None or 0)."""
        return self if not n else TaskData(self.source, self.examples[:n], self.extra)


@dataclass
class TrainingBatches:
    """What the fine-tuning loop trains on: one length per training item (for length-grouped
    batches), ``collate(indices) -> batch``, the task's loss when the model returns none, and
    ``info`` for the run summary (windows made, entities dropped, labels, ...)."""

    lengths: Sequence[int]
    collate: Callable[[Sequence[int]], dict]
    loss: Callable | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Card:
    """What a fine-tuned model's card says of its task (see :func:`spanbert.core.checkpoints.model_card`)."""

    title: str
    pipeline_tag: str
    tags: tuple[str, ...]
    how_to_load: str


class Task:
    """Base class of a fine-tuning task; see the module docstring for the contract.

    Subclasses set the class attributes and implement ``read``, ``load_for_training``,
    ``load_trained``, ``training_batches``, ``infer``, ``score`` and ``write``; ``tune``,
    ``dev_scores``, ``save`` and the summaries have defaults.
    """

    name: ClassVar[str]
    unit: ClassVar[str] = "examples"  # finetune_summary.json counts train_<unit>, dev_<unit>
    metric: ClassVar[str]  # the dev metric the loop maximises
    settings_type: ClassVar[type]  # frozen dataclass, saved as <name>_settings.json
    options: ClassVar[type | None] = None  # dataclass of the task's own command-line options (data fields, head, ...)
    card: ClassVar[Card]
    epochs: ClassVar[float] = 2.0  # the command line's defaults for this task
    batch_size: ClassVar[int] = 32
    lr: ClassVar[float] = 5e-5
    eval_batch_size: ClassVar[int] = 32
    eval_unit: ClassVar[str] = "Examples"  # what --batch-size of evaluate counts ("Windows", ...)
    evaluate_summary: ClassVar[str] = ""  # the evaluate command's help
    data_help: ClassVar[str] = "a file, a saved dataset folder or hf:NAME[:CONFIG][@SPLIT]."
    finetune_aliases: ClassVar[dict[str, str]] = {}  # old option names: {"--max-train-questions": "max_train_examples"}
    evaluate_aliases: ClassVar[dict[str, str]] = {}
    repeatable_sources: ClassVar[bool] = False  # --train, --dev and --data may be given several times (a list)
    # Serving (spanbert serve): the name of the task in the HTTP API (/v1/<api_name>), how a
    # folder of the task is recognised (our head's config model_type, else its settings file,
    # else a stock transformers head's class-name suffix), and the request fields holding text.
    api_name: ClassVar[str] = ""  # default: name
    model_types: ClassVar[tuple[str, ...]] = ()
    architectures: ClassVar[tuple[str, ...]] = ()
    text_fields: ClassVar[tuple[str, ...]] = ("text",)
    predictor: ClassVar[str] = ""  # "module:Class" of the task's Python API (a Predictor)
    # "module:function" loading a folder under the task's head: (path, dtype=None, *, trained=False,
    # **config fields) -> (model, tokenizer); the default load_trained uses it.
    model_loader: ClassVar[str] = ""
    # ONNX export (spanbert export onnx): the output fields of the task's transformers model, in
    # graph order; empty when its models do not export.
    onnx_outputs: ClassVar[tuple[str, ...]] = ()
    # The module whose register(groups, wrap) adds the task's own commands (predict, score) to
    # the command line; a built-in task's default is its package's cli module.
    commands: ClassVar[str] = ""

    @property
    def summary(self) -> str:
        """The finetune command's help: the task class's own docstring."""
        return type(self).__doc__ or f"Fine-tune a model for the {self.name} task."

    @property
    def settings_file(self) -> str:
        return f"{self.name}_settings.json"

    # -- settings saved beside the model ---------------------------------------------------------

    def settings_json(self, settings: Any) -> dict:
        """What ``<name>_settings.json`` holds (default: the dataclass's fields)."""
        return asdict(settings)

    def load_settings(self, model_dir: str | os.PathLike) -> Any:
        """The settings saved beside a fine-tuned model (the defaults when there is no file);
        a malformed file is a one-line CheckpointError naming it."""
        from spanbert.core.checkpoints import read_settings

        data = read_settings(model_dir, self.settings_file)
        if data is None:
            return self.settings_type()
        try:
            return self.settings_from_json(data)
        except (TypeError, ValueError, KeyError, AttributeError, ConfigError) as e:
            raise CheckpointError(f"{Path(model_dir) / self.settings_file}: malformed settings ({e})") from None

    def settings_from_json(self, data: Mapping[str, Any]) -> Any:
        """Settings from ``settings_json``'s output (default: the dataclass's known fields)."""
        names = {f.name for f in fields(self.settings_type)}
        return self.settings_type(**{k: v for k, v in data.items() if k in names})

    # -- the hooks -------------------------------------------------------------------------------

    def prepare(self, options: Any, args: Any, *, dev: bool) -> None:
        """Refuse a fine-tuning that cannot run (options that contradict each other or the loop's
        arguments, a missing extra the dev scores need), before any data is read; by default
        everything passes."""

    def read(self, source: str | os.PathLike, options: Any, *, split: str, labelled: bool = True) -> TaskData:
        """The examples of ``source`` (``split``: ``train``, ``validation`` or ``test``, for
        sources holding several); ``options`` are the task's options when fine-tuning and the
        model's settings when evaluating. Bad input is a one-line error naming file and line."""
        raise NotImplementedError

    def load_for_training(self, model_path: str | os.PathLike, train: TaskData, options: Any):
        """``(model, tokenizer, settings)``: the checkpoint under this task's head, created fresh
        where the checkpoint lacks it (seeded by the caller), with the labels of ``train``."""
        raise NotImplementedError

    def load_trained(self, model_dir: str | os.PathLike, dtype=None):
        """``(model, tokenizer, settings)`` of a folder fine-tuned for this task (default: its
        ``model_loader`` with ``trained=True``, and the saved settings)."""
        module, _, name = self.model_loader.partition(":")
        model, tokenizer = getattr(importlib.import_module(module), name)(model_dir, dtype, trained=True)
        return model, tokenizer, self.load_settings(model_dir)

    def save(self, folder: str | os.PathLike, model, tokenizer, settings: Any) -> Path:
        """Save the model, tokenizer and ``<name>_settings.json`` into ``folder`` (returned)."""
        from spanbert.core.checkpoints import save_task_model

        return save_task_model(folder, model, tokenizer, {self.settings_file: self.settings_json(settings)})

    def check(self, data: TaskData, model, settings: Any) -> None:
        """Refuse dev or test data the model cannot be scored on (a label it does not know, ...)
        before any training; by default everything passes."""

    def training_batches(self, train: TaskData, model, tokenizer, settings: Any, args) -> TrainingBatches:
        """The training items of ``train`` encoded for ``model``; ``args`` are the loop's settings
        (:class:`~spanbert.tasks.arguments.FinetuneArguments`: ``args.seed`` for anything the task
        draws per batch, such as negative spans; the rest for the summary's ``info``)."""
        raise NotImplementedError

    def infer(self, model, tokenizer, data: TaskData, settings: Any, *, batch_size: int, precision: str,
              progress: bool) -> Any:
        """The model's outputs over every example of ``data``, in the form ``tune``, ``score`` and
        ``write`` read (logits, span probabilities, predictions with their null odds, ...)."""
        raise NotImplementedError

    def tune(self, outputs: Any, data: TaskData, settings: Any) -> tuple[Any, dict[str, Any]]:
        """Settings with a decision value fitted on ``data`` (dev), and what the summary records
        of it; by default nothing is tuned."""
        return settings, {}

    def score(self, outputs: Any, data: TaskData, settings: Any) -> dict[str, Any]:
        """Metrics of ``outputs`` against the gold of ``data`` (empty when it has none)."""
        raise NotImplementedError

    def dev_scores(self, outputs: Any, data: TaskData, settings: Any) -> dict[str, float]:
        """The numbers the loop logs at each dev evaluation (must hold ``metric``); by default
        the numeric entries of :meth:`score`."""
        return {k: float(v) for k, v in self.score(outputs, data, settings).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def write(self, folder: Path, outputs: Any, data: TaskData, settings: Any, metrics: dict[str, Any],
              seconds: float) -> None:
        """Write the prediction files and ``metrics.json`` into ``folder``."""
        raise NotImplementedError

    def evaluation_settings(self, settings: Any, given: Mapping[str, Any]) -> tuple[Any, bool]:
        """The settings ``evaluate`` runs with, from the saved ones and the options given on its
        command line (``evaluate``-marked fields and :meth:`evaluate_parameters`), and whether to
        fit the decision value on the data evaluated; by default the given fields replace the
        saved ones and nothing is fitted."""
        return (replace(settings, **given) if given else settings), False

    def evaluate_parameters(self) -> list:
        """Extra ``inspect.Parameter`` options of ``spanbert evaluate TASK`` (default: none)."""
        return []

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        """What ``spanbert finetune TASK`` prints of the run summary."""
        lines = [f"trained {summary['steps']} steps ({summary['epochs']} epochs) in {summary['train_seconds']:.0f} s; "
                 f"final loss {summary['final_loss']:.4f}"]
        if "dev_metrics" in summary:
            lines.append(f"dev ({summary[f'dev_{self.unit}']} {self.unit}): {json.dumps(summary['dev_metrics'])}")
        return lines

    def report_evaluation(self, result: Any) -> list[str]:
        """What ``spanbert evaluate TASK`` prints of an :class:`~spanbert.tasks.runner.Evaluation`."""
        return [f"{result.examples} {self.unit} in {result.seconds:.1f} s",
                json.dumps(self.dev_summary(result.metrics), indent=2)]

    # -- serving ---------------------------------------------------------------------------------

    def load_predictor(self, folder: str | os.PathLike, device: str | None = None) -> "Predictor":
        """The task's Python API (:attr:`predictor`) on a fine-tuned folder."""
        module, _, name = self.predictor.partition(":")
        return getattr(importlib.import_module(module), name)(folder, device=device)

    def serve(self, api: Any, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """One JSON-ready result per request item (plain dicts of the item's ``text_fields``)."""
        raise NotImplementedError

    def labels(self, api: Any) -> list[str] | None:
        """The labels the model can output (classes, relation types, entity types), if any."""
        return list(api.labels) if hasattr(api, "labels") else None

    def training_summary(self, train: TaskData, batches: TrainingBatches, settings: Any) -> dict[str, Any]:
        """The task's entries of ``finetune_summary.json`` before the loop's (default: ``batches.info``)."""
        return dict(batches.info)

    def dev_summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """What ``finetune_summary.json`` keeps of the dev metrics (default: all of them)."""
        return metrics


class Predictor:
    """Base of the Python APIs (``QuestionAnswerer``, ``TextClassifier``, ...): a folder
    fine-tuned for the task ``task_name``, loaded through the task, on ``device`` (default: the
    GPU when there is one), in eval mode. ``precision``: ``no`` (fp32), ``bf16``, ``fp16`` or
    ``auto`` (bf16 where the hardware runs it natively)."""

    task_name: ClassVar[str]
    default_batch_size: ClassVar[int] = 32

    def __init__(self, model_dir: str | os.PathLike, *, device: str | None = None, batch_size: int | None = None,
                 precision: str = "auto"):
        import torch

        from spanbert.core.precision import check_precision

        self.task = get_task(self.task_name)
        self.model, self.tokenizer, self.settings = self.task.load_trained(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.batch_size = batch_size or self.default_batch_size
        self.precision = check_precision(precision)


_REGISTRY: dict[str, Task] = {}
# Where each built-in task registers itself: imported on first use, so that listing the tasks
# (the command line's help) costs nothing.
BUILTIN_TASKS = {name: f"spanbert.tasks.{name}.task" for name in ("qa", "classify", "relations", "ner", "summarize", "coref")}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a :class:`Task` subclass under its ``name`` (a later class of
    the same name replaces the earlier one, so a test may register a toy task)."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__}: a task needs a name")
    _REGISTRY[cls.name] = cls()
    return cls


def task_for_api(api_name: str) -> Task | None:
    """The registered task served as ``/v1/<api_name>`` (built-in tasks imported), or None."""
    return next((t for t in map(get_task, task_names()) if (t.api_name or t.name) == api_name), None)


def task_names() -> list[str]:
    """The built-in tasks, then any registered since, in registration order."""
    return [*BUILTIN_TASKS, *(n for n in _REGISTRY if n not in BUILTIN_TASKS)]


def get_task(name: str) -> Task:
    """The registered task ``name`` (a built-in one is imported on first use)."""
    if name not in _REGISTRY and name in BUILTIN_TASKS:
        importlib.import_module(BUILTIN_TASKS[name])
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r} (known: {', '.join(task_names())})")
    return _REGISTRY[name]


__all__ = ["Task", "Predictor", "TaskData", "TrainingBatches", "Card", "register_task", "get_task", "task_names", "task_for_api", "BUILTIN_TASKS"]
