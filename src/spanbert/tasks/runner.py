"""Fine-tuning and evaluation of any registered task, written once (:mod:`spanbert.tasks.protocol`).

``finetune_task``: read -> seed -> load under a fresh head -> encode -> the fine-tuning loop
(:func:`spanbert.tasks.finetune.finetune`, which scores dev at every evaluation and keeps the
best weights) -> on the main process only: evaluate on dev (fitting the task's decision value
there, if it has one) -> save model, settings, dev results, model card and
``finetune_summary.json``, all replacing the output folder together.

``evaluate_task``: infer -> (tune) -> score -> write predictions and ``metrics.json``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.tasks.protocol import Task, TaskData, get_task

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What :func:`evaluate_task` measured: the metrics, the settings used (tuned ones
    included), what tuning fitted, how many examples and how long it took."""

    metrics: dict[str, Any]
    settings: Any
    tuned: dict[str, Any]
    examples: int
    seconds: float
    output_dir: Path | None


@dataclass
class FinetuneSummary:
    """The outcome of :func:`finetune_task`. ``main`` is False in the other processes of a
    multi-process run (only the main process saves and evaluates; ``summary`` is then empty)."""

    main: bool
    steps: int
    final_loss: float
    summary: dict[str, Any] = field(default_factory=dict)  # finetune_summary.json


def _task(task: Task | str) -> Task:
    return get_task(task) if isinstance(task, str) else task


def _as_given(source: Any) -> str | list[str]:
    """A data source as the summary records it: one path or spec, or the list of them."""
    return [str(s) for s in source] if isinstance(source, (list, tuple)) else str(source)


def evaluate_task(task: Task | str, model, tokenizer, data: TaskData, settings: Any,
                  output_dir: str | os.PathLike | None = None, *, tune: bool = False, batch_size: int | None = None,
                  precision: str = "auto", progress: bool = False) -> Evaluation:
    """Run the model over ``data``, fit the task's decision value there when ``tune``, score the
    outputs against the gold and, with ``output_dir``, write the predictions and ``metrics.json``."""
    task = _task(task)
    model.eval()
    start = time.perf_counter()
    outputs = task.infer(model, tokenizer, data, settings, batch_size=batch_size or task.eval_batch_size,
                         precision=precision, progress=progress)
    seconds = time.perf_counter() - start
    tuned: dict[str, Any] = {}
    if tune:
        settings, tuned = task.tune(outputs, data, settings)
    metrics = task.score(outputs, data, settings)
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        task.write(out, outputs, data, settings, metrics, seconds)
    return Evaluation(metrics, settings, tuned, len(data), seconds, out)


def finetune_task(task: Task | str, model_path: str | os.PathLike, train_source: str | os.PathLike,
                  output_dir: str | os.PathLike, *, options: Any = None, dev_source: str | os.PathLike | None = None,
                  args: FinetuneArguments | None = None, max_train_examples: int | None = None,
                  max_dev_examples: int | None = None, eval_precision: str = "auto",
                  dropout: float | None = None) -> FinetuneSummary:
    """Fine-tune any BERT-family checkpoint on ``task`` and save it, ready to serve.

    ``options``: the task's options (default: its defaults); ``args``: the loop's settings
    (default: the task's epochs, batch size and learning rate). With ``dev_source``, the task's dev
    metric is scored at every epoch end (or ``args.eval_every`` steps), the best evaluation's
    weights are kept when ``args.select_best``, and the saved model is evaluated on dev (its
    decision value fitted there). Returns the summary also written as ``finetune_summary.json``.
    """
    import torch

    from spanbert.core.checkpoints import model_card, set_dropout
    from spanbert.core.run_folder import staged_output
    from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary

    task = _task(task)
    args = args or FinetuneArguments(output_dir=str(output_dir), epochs=task.epochs, batch_size=task.batch_size, lr=task.lr)
    options = options if options is not None else (task.options or task.settings_type)()
    task.prepare(options, args, dev=dev_source is not None)
    train = task.read(train_source, options, split="train").head(max_train_examples)
    torch.manual_seed(args.seed)  # the new head's initial weights: the same in every process and run
    model, tokenizer, settings = task.load_for_training(model_path, train, options)
    if dropout is not None:  # e.g. 0 for exact comparisons; the checkpoint's otherwise
        set_dropout(model, dropout)
    batches = task.training_batches(train, model, tokenizer, settings, args)
    dev_data, dev = None, None
    if dev_source is not None:
        dev_data = task.read(dev_source, options, split="validation").head(max_dev_examples)
        task.check(dev_data, model, settings)

        def dev_scores(m) -> dict[str, float]:
            outputs = task.infer(m, tokenizer, dev_data, settings, batch_size=task.eval_batch_size,
                                 precision=eval_precision, progress=False)
            return task.dev_scores(outputs, dev_data, settings)

        dev = DevEvaluation(dev_scores, task.metric)
    result = finetune(model, batches.lengths, batches.collate, args, loss_fn=batches.loss, dev=dev,
                      data={"model": model_path, "train": train_source, "dev": dev_source})
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun: one process saves and evaluates
        return FinetuneSummary(False, result.steps, result.last_loss)
    summary: dict[str, Any] = {"model": str(model_path), "train": _as_given(train_source), f"train_{task.unit}": len(train),
                               **task.training_summary(train, batches, settings), **training_summary(result)}
    with staged_output(output_dir) as final:  # model, dev results, card and summary replace the folder together
        if dev_data is not None:
            ev = evaluate_task(task, model, tokenizer, dev_data, settings, final / "dev", tune=True,
                               precision=eval_precision, progress=args.progress)
            settings = ev.settings
            summary.update({"dev": _as_given(dev_source), f"dev_{task.unit}": ev.examples, "dev_seconds": round(ev.seconds, 1),
                            "dev_metrics": task.dev_summary(ev.metrics), **ev.tuned})
        task.save(final, model, tokenizer, settings)
        card = task.card
        atomic_write_text(final / "README.md", model_card(card.title, card.pipeline_tag, list(card.tags), card.how_to_load,
                                                          summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return FinetuneSummary(True, result.steps, result.last_loss, summary)


__all__ = ["finetune_task", "evaluate_task", "Evaluation", "FinetuneSummary"]
