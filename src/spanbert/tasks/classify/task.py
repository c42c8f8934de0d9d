"""Text classification as a :class:`~spanbert.tasks.protocol.Task`: a [CLS] head over windows.

``evaluate`` writes ``predictions.jsonl`` (one line per input: index, gold, label, probability,
windows) and ``metrics.json`` (accuracy, macro-F1, per-class P/R/F1, and the majority-class
baseline of the training labels). Fine-tuning with dev data selects on dev accuracy (the
headline, as GLUE reports SST-2).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError
from spanbert.tasks.classify.data import ClassificationData, check_labels, label_set, read_classification
from spanbert.tasks.classify.settings import ClassifySettings
from spanbert.tasks.classify.scoring import classification_metrics
from spanbert.tasks.protocol import Card, Task, TaskData, TrainingBatches, register_task

logger = logging.getLogger(__name__)


@dataclass
class ClassifyOutputs:
    """Document logits ``(texts, labels)``, windows per text, and the label names."""

    logits: Any  # np.ndarray (texts, labels)
    windows: Any  # np.ndarray (texts,)
    labels: list[str]


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


@register_task
class Classify(Task):
    """Fine-tune a [CLS] text classifier (sentiment, topic, ...); long texts are split into windows."""

    name, unit, metric = "classify", "examples", "accuracy"
    settings_type = options = ClassifySettings
    epochs, batch_size, lr, eval_batch_size, eval_unit = 2.0, 32, 5e-5, 64, "Windows"
    evaluate_summary = "Classify a labelled data set; write predictions and accuracy / macro-F1 / per-class scores."
    data_help = ".tsv/.csv with a header, .jsonl(.gz), a saved dataset folder or hf:NAME[:CONFIG][@SPLIT]."
    architectures, text_fields = ("ForSequenceClassification",), ("text", "text_pair")
    predictor, onnx_outputs = "spanbert.tasks.classify.inference:TextClassifier", ("logits",)
    model_loader = "spanbert.tasks.classify.inference:load_classifier"
    card = Card("Text classifier fine-tuned with the `spanbert` toolkit", "text-classification", ("text-classification",),
                "`transformers.AutoModelForSequenceClassification.from_pretrained(dir)` loads it; "
                "`spanbert predict classify --model dir` and `spanbert.tasks.classify.TextClassifier(dir)` also apply "
                "the windowing of `classify_settings.json` to long texts.")

    def read(self, source, options: ClassifySettings, *, split: str, labelled: bool = True) -> TaskData:
        data = read_classification(source, options.text_field, options.label_field, options.text_pair_field)
        return TaskData(str(source), data)

    def load_for_training(self, model_path, train: TaskData, options: ClassifySettings):
        import numpy as np

        from spanbert.core.checkpoints import check_positions
        from spanbert.tasks.classify.inference import load_classifier

        labels = train.examples.labels
        names = label_set(labels)
        if len(names) < 2:
            raise ConfigError(f"{train.source}: the training data has a single label ({names[0]!r}); need at least 2")
        model, tokenizer = load_classifier(model_path, num_labels=len(names), id2label=dict(enumerate(names)),
                                           label2id={n: i for i, n in enumerate(names)})
        check_positions(model.config, options.max_seq_length)
        ids = np.asarray([names.index(x) for x in labels])
        majority = names[int(np.bincount(ids, minlength=len(names)).argmax())]
        return model, tokenizer, replace(options, majority_label=majority)

    def check(self, data: TaskData, model, settings: ClassifySettings) -> None:
        check_labels(data.examples, {name: i for i, name in enumerate(_label_names(model))})

    def training_batches(self, train: TaskData, model, tokenizer, settings: ClassifySettings, args) -> TrainingBatches:
        import numpy as np

        from spanbert.tasks.classify.features import build_windows, collate

        data: ClassificationData = train.examples
        names = _label_names(model)
        label_ids = np.asarray([names.index(x) for x in data.labels])
        windows = build_windows(tokenizer, data.texts, settings, data.text_pairs)
        window_labels, pad = label_ids[windows.doc], _pad_id(tokenizer)
        logger.info("%d training texts, %d windows, labels %s", len(data), len(windows), names)
        return TrainingBatches(windows.lengths(), lambda idx: collate(windows, idx, pad, window_labels),
                               info={"train_windows": len(windows), "labels": names})

    def infer(self, model, tokenizer, data: TaskData, settings: ClassifySettings, *, batch_size: int, precision: str,
              progress: bool) -> ClassifyOutputs:
        from spanbert.tasks.classify.inference import predict_texts

        texts: ClassificationData = data.examples
        logits, counts = predict_texts(model, tokenizer, texts.texts, settings, texts.text_pairs, batch_size, precision,
                                       progress)
        return ClassifyOutputs(logits, counts, _label_names(model))

    def score(self, outputs: ClassifyOutputs, data: TaskData, settings: ClassifySettings) -> dict[str, Any]:
        labels = outputs.labels
        gold = check_labels(data.examples, {name: i for i, name in enumerate(labels)})
        metrics = classification_metrics(gold, outputs.logits.argmax(axis=1), labels)
        if settings.majority_label in labels:
            base = classification_metrics(gold, [labels.index(settings.majority_label)] * len(gold), labels)
            metrics["majority_baseline"] = {"label": settings.majority_label, "accuracy": base["accuracy"],
                                            "macro_f1": base["macro_f1"]}
        return metrics

    def dev_scores(self, outputs: ClassifyOutputs, data: TaskData, settings: ClassifySettings) -> dict[str, float]:
        """Accuracy on dev in percent (the headline, as GLUE reports SST-2), with macro-F1."""
        metrics = self.score(outputs, data, replace(settings, majority_label=None))
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

    def write(self, folder: Path, outputs: ClassifyOutputs, data: TaskData, settings: ClassifySettings,
              metrics: dict[str, Any], seconds: float) -> None:
        from spanbert.tasks.classify.inference import softmax

        labels = outputs.labels
        gold = check_labels(data.examples, {name: i for i, name in enumerate(labels)})
        probs = softmax(outputs.logits)
        lines = [json.dumps({"index": i, "gold": labels[g], "label": labels[int(p.argmax())],
                             "probability": round(float(p.max()), 6), "windows": int(n)})
                 for i, (g, p, n) in enumerate(zip(gold, probs, outputs.windows))]
        atomic_write_text(folder / "predictions.jsonl", "\n".join(lines) + "\n")
        atomic_write_json(folder / "metrics.json", {"data": data.source, "examples": len(data), "seconds": round(seconds, 1),
                                                    "metrics": metrics})

    def dev_summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in metrics.items() if k != "per_class"}

    def serve(self, api, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """``label``, ``score`` and every label's ``probabilities`` per item; items with a
        ``text_pair`` and items without are classified in two calls."""
        out: list[dict | None] = [None] * len(items)
        for with_pair in (False, True):
            idx = [i for i, it in enumerate(items) if (it.get("text_pair") is not None) == with_pair]
            if not idx:
                continue
            pairs = [items[i]["text_pair"] for i in idx] if with_pair else None
            for i, p in zip(idx, api.classify([items[i]["text"] for i in idx], pairs)):
                out[i] = {"label": p.label, "score": float(p.score),
                          "probabilities": {k: float(v) for k, v in p.probabilities.items()}}
        return out  # type: ignore[return-value]

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        lines = super().report(summary)
        lines[0] += f"; labels {summary['labels']}"
        return lines


def _label_names(model) -> list[str]:
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


__all__ = ["Classify", "ClassifyOutputs"]
