"""The classification jobs behind the CLI: fine-tune (then evaluate on dev) and evaluate.

``evaluate`` writes ``predictions.jsonl`` (one line per input: index, gold, label, probability)
and ``metrics.json`` (accuracy, macro-F1, per-class P/R/F1, and the majority-class baseline of
the training labels when the model knows it). ``finetune`` with dev data scores dev accuracy
(the headline, as GLUE reports SST-2) at every epoch end and keeps the best weights.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError
from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.core.run_folder import staged_output
from spanbert.core.checkpoints import check_positions, model_card, save_task_model, set_dropout
from spanbert.tasks.classify.data import ClassificationData, check_labels, label_set, read_classification
from spanbert.tasks.classify.features import ClassifySettings, aggregate_logits, build_windows, collate
from spanbert.tasks.classify.inference import SETTINGS_FILE, _softmax, load_classifier, predict_texts, settings_to_json, window_logits
from spanbert.tasks.classify.scoring import classification_metrics, majority_baseline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fields:
    """Column names of the data files."""

    text: str = "sentence"
    label: str = "label"
    text_pair: str | None = None


@dataclass
class ClassifyEvaluation:
    metrics: dict
    examples: int
    seconds: float
    output_dir: Path | None


def evaluate_classify(model, tokenizer, source: str | os.PathLike, settings: ClassifySettings, output_dir=None, *,
                      fields: Fields = Fields(), batch_size: int = 64, precision: str = "auto", progress: bool = True,
                      max_examples: int | None = None, majority_label: str | None = None,
                      data: ClassificationData | None = None) -> ClassifyEvaluation:
    """Classify every labelled item of ``source`` and score it; files go to ``output_dir`` when given.

    ``data``: the items of ``source`` already read (then the file is not read again).
    """
    data = data if data is not None else read_classification(source, fields.text, fields.label, fields.text_pair)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    gold = check_labels(data, {name: i for i, name in enumerate(labels)})
    texts, pairs = data.texts, data.text_pairs
    if max_examples:
        texts, gold = texts[:max_examples], gold[:max_examples]
        pairs = pairs[:max_examples] if pairs is not None else None
    start = time.perf_counter()
    logits, counts = predict_texts(model, tokenizer, texts, settings, pairs, batch_size, precision, progress)
    seconds = time.perf_counter() - start
    predicted = logits.argmax(axis=1)
    metrics = classification_metrics(gold, predicted, labels)
    if majority_label is not None and majority_label in labels:
        k = labels.index(majority_label)
        base = classification_metrics(gold, [k] * len(gold), labels)
        metrics["majority_baseline"] = {"label": majority_label, "accuracy": base["accuracy"], "macro_f1": base["macro_f1"]}
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        probs = _softmax(logits)
        lines = [json.dumps({"index": i, "gold": labels[g], "label": labels[int(p)], "probability": round(float(pr.max()), 6),
                             "windows": int(n)}) for i, (g, p, pr, n) in enumerate(zip(gold, predicted, probs, counts))]
        atomic_write_text(out / "predictions.jsonl", "\n".join(lines) + "\n")
        atomic_write_json(out / "metrics.json", {"data": str(source), "examples": len(texts), "seconds": round(seconds, 1),
                                                 "metrics": metrics})
    return ClassifyEvaluation(metrics, len(texts), seconds, out)


def finetune_classify(
    model_path: str | os.PathLike, train_source: str | os.PathLike, output_dir: str | os.PathLike, *,
    dev_source: str | os.PathLike | None = None, settings: ClassifySettings = ClassifySettings(),
    fields: Fields = Fields(), args: FinetuneArguments | None = None, max_train_examples: int | None = None,
    max_dev_examples: int | None = None, eval_precision: str = "auto", dropout: float | None = None,
) -> dict:
    """Fine-tune any BERT-family checkpoint as a [CLS] classifier of the training labels and save it.

    Every window of a long training text carries the text's label. Returns a summary (also
    written as ``finetune_summary.json``); with ``dev_source``, dev accuracy is scored at every
    epoch end (or ``args.eval_every`` steps), the best evaluation's weights are kept when
    ``args.select_best``, and the summary holds the selection and the dev metrics.
    """
    args = args or FinetuneArguments(output_dir=str(output_dir))
    out = Path(output_dir)
    data = read_classification(train_source, fields.text, fields.label, fields.text_pair)
    texts, pairs, train_labels = data.texts, data.text_pairs, data.labels
    if max_train_examples:
        texts, train_labels = texts[:max_train_examples], train_labels[:max_train_examples]
        pairs = pairs[:max_train_examples] if pairs is not None else None
    names = label_set(train_labels)
    if len(names) < 2:
        raise ConfigError(f"{train_source}: the training data has a single label ({names[0]!r}); need at least 2")
    label_ids = np.asarray([names.index(x) for x in train_labels])
    torch.manual_seed(args.seed)  # the new head's initial weights: the same in every process and run
    model, tokenizer = load_classifier(model_path, num_labels=len(names), id2label=dict(enumerate(names)),
                                       label2id={n: i for i, n in enumerate(names)})
    check_positions(model.config, settings.max_seq_length)
    if dropout is not None:
        set_dropout(model, dropout)
    windows = build_windows(tokenizer, texts, settings, pairs)
    window_labels = label_ids[windows.doc]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logger.info("%d training texts, %d windows, labels %s", len(texts), len(windows), names)
    dev_data, dev = None, None
    if dev_source is not None:
        dev_data = read_classification(dev_source, fields.text, fields.label, fields.text_pair)
        dev_gold = check_labels(dev_data, {n: i for i, n in enumerate(names)})[:max_dev_examples or None]
        dev_pairs = dev_data.text_pairs[: len(dev_gold)] if dev_data.text_pairs is not None else None
        dev_windows = build_windows(tokenizer, dev_data.texts[: len(dev_gold)], settings, dev_pairs)

        def dev_accuracy(m: torch.nn.Module) -> dict[str, float]:
            """Accuracy on dev in percent (the headline, as GLUE reports SST-2), with macro-F1."""
            logits = window_logits(m, dev_windows, pad, precision=eval_precision)
            predicted = aggregate_logits(logits, dev_windows.doc, len(dev_gold), settings.aggregation).argmax(axis=1)
            metrics = classification_metrics(dev_gold, predicted, names)
            return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

        dev = DevEvaluation(dev_accuracy, "accuracy")
    result = finetune(model, windows.lengths(), lambda idx: collate(windows, idx, pad, window_labels), args, dev=dev,
                      data={"model": model_path, "train": train_source, "dev": dev_source})
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return {"steps": result.steps, "final_loss": result.last_loss}
    majority = names[int(np.bincount(label_ids, minlength=len(names)).argmax())]
    saved = settings_to_json(settings, majority_label=majority, text_field=fields.text, label_field=fields.label,
                             text_pair_field=fields.text_pair)
    summary: dict = {
        "model": str(model_path), "train": str(train_source), "train_examples": len(texts), "train_windows": len(windows),
        "labels": names, **training_summary(result),
    }
    with staged_output(out) as final:  # the model, dev results, card and summary replace the folder together
        save_task_model(final, model, tokenizer, {SETTINGS_FILE: saved})
        if dev_data is not None:
            ev = evaluate_classify(model, tokenizer, dev_source, settings, final / "dev", fields=fields,
                                   precision=eval_precision, progress=args.progress, max_examples=max_dev_examples,
                                   majority_label=majority, data=dev_data)
            summary.update({"dev": str(dev_source), "dev_examples": ev.examples, "dev_seconds": round(ev.seconds, 1),
                            "dev_metrics": {k: v for k, v in ev.metrics.items() if k != "per_class"}})
        atomic_write_text(final / "README.md", _card(summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return summary


def _card(summary: dict) -> str:
    return model_card("Text classifier fine-tuned with the `spanbert` toolkit", "text-classification", ["text-classification"],
                      "`transformers.AutoModelForSequenceClassification.from_pretrained(dir)` loads it; "
                      "`spanbert predict classify --model dir` and `spanbert.tasks.classify.TextClassifier(dir)` also apply "
                      "the windowing of `classify_settings.json` to long texts.", summary)


__all__ = ["finetune_classify", "evaluate_classify", "Fields", "ClassifyEvaluation", "majority_baseline"]
