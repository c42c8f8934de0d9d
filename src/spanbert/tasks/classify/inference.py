"""Batched text classification: texts in, labels with probabilities out.

    clf = TextClassifier("runs/sst2")
    clf.classify(["a charming and often affecting journey"])[0].label  # '1'

Long texts are cut into windows whose logits are averaged (see :mod:`.features`); windows of
all texts are batched together, sorted by length.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from spanbert.core.errors import ConfigError
from spanbert.core.batching import inference_batches
from spanbert.core.checkpoints import load_task_model
from spanbert.core.precision import inference_autocast
from spanbert.tasks.classify.features import Windows, aggregate_logits, build_windows, collate
from spanbert.tasks.classify.settings import ClassifySettings
from spanbert.tasks.protocol import Predictor

@dataclass(frozen=True)
class ClassPrediction:
    """The predicted ``label``, its probability ``score``, and every label's probability."""

    label: str
    score: float
    probabilities: dict[str, float]
    windows: int  # windows the text was cut into


def load_classifier(path: str | os.PathLike, dtype=None, *, trained: bool = False, **config_overrides):
    """``(model, tokenizer)`` for sequence classification from any BERT-family folder or hub id
    (SpanBERT pre-training folders become plain ``bert`` classifiers).
    ``trained``: the folder must be one fine-tuned for this task (prediction, evaluation)."""
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    return load_task_model(path, AutoModelForSequenceClassification, BertForSequenceClassification,
                           "classification", dtype=dtype, trained=trained, **config_overrides)


def window_logits(model, windows: Windows, pad_id: int, batch_size: int = 64, precision: str = "no",
                  progress: bool = False) -> np.ndarray:
    """Logits ``(windows, labels)`` (float32) of every window, in window order."""
    device = next(model.parameters()).device
    batches = inference_batches(windows.lengths(), batch_size)  # similar lengths share a batch, little padding
    out = np.zeros((len(windows), model.config.num_labels), dtype=np.float32)
    bar = tqdm(total=len(windows), disable=not progress, desc="classify", unit="win", dynamic_ncols=True)
    with torch.inference_mode(), inference_autocast(device, precision):
        for batch_idx in batches:
            idx = batch_idx.tolist()
            batch = {k: v.to(device) for k, v in collate(windows, idx, pad_id).items()}
            out[idx] = model(**batch).logits.float().cpu().numpy()  # (batch, labels)
            bar.update(len(idx))
    bar.close()
    return out


def predict_texts(model, tokenizer, texts: Sequence[str], settings: ClassifySettings, text_pairs: Sequence[str] | None = None,
                  batch_size: int = 64, precision: str = "no", progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Document logits ``(texts, labels)`` and the number of windows of each text."""
    model.eval()
    windows = build_windows(tokenizer, texts, settings, text_pairs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logits = window_logits(model, windows, pad, batch_size, precision, progress)
    return aggregate_logits(logits, windows.doc, len(texts), settings.aggregation), np.bincount(windows.doc, minlength=len(texts))


def softmax(x: np.ndarray) -> np.ndarray:
    """Probabilities of each row of logits (numerically stable)."""
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class TextClassifier(Predictor):
    """A fine-tuned classifier (``spanbert finetune classify``, or any transformers sequence
    classifier) with its windowing settings. ``precision``: ``no`` (fp32), ``bf16``, ``auto``."""

    task_name, default_batch_size = "classify", 64

    def __init__(self, model_dir: str | os.PathLike, *, device: str | None = None, batch_size: int = 64,
                 precision: str = "auto"):
        super().__init__(model_dir, device=device, batch_size=batch_size, precision=precision)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def classify(self, texts: str | Sequence[str], text_pairs: Sequence[str] | None = None) -> list[ClassPrediction]:
        """One :class:`ClassPrediction` per text (texts of any length)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(texts):
            if not t.strip():
                raise ConfigError(f"text {i}: empty")
        logits, counts = predict_texts(self.model, self.tokenizer, texts, self.settings, text_pairs,
                                       self.batch_size, self.precision)
        probs = softmax(logits)
        return [ClassPrediction(self.labels[int(p.argmax())], float(p.max()),
                                {name: float(v) for name, v in zip(self.labels, p)}, int(n))
                for p, n in zip(probs, counts)]


__all__ = ["TextClassifier", "ClassPrediction", "load_classifier", "predict_texts", "window_logits", "softmax"]
