"""Loading any BERT-family checkpoint as a QA model, and saving fine-tuned QA models.

A fine-tuned model is saved as a plain ``transformers`` QA model (a SpanBERT encoder becomes a
``bert`` config: its heads are pre-training-only), so ``AutoModelForQuestionAnswering`` loads
it without importing ``spanbert``. Our QA settings (windows, answer length, the fitted null
threshold) travel beside it in ``qa_settings.json``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from spanbert.core.errors import CheckpointError
from spanbert.core.checkpoints import load_task_model, read_settings, save_task_model
from spanbert.tasks.qa.decoding import DecodeConfig
from spanbert.tasks.qa.features import WindowConfig

logger = logging.getLogger(__name__)
SETTINGS_FILE = "qa_settings.json"


@dataclass(frozen=True)
class QASettings:
    """Everything besides the weights that decides a QA model's answers."""

    windows: WindowConfig = WindowConfig()
    decoding: DecodeConfig = DecodeConfig()
    squad_version: str = "1.1"  # "2.0": the model may answer "no answer"

    def to_json(self) -> dict:
        return {"windows": asdict(self.windows), "decoding": asdict(self.decoding), "squad_version": self.squad_version}

    @classmethod
    def from_json(cls, data: dict, source: str = SETTINGS_FILE) -> QASettings:
        try:
            windows = WindowConfig(**{f.name: data["windows"][f.name] for f in fields(WindowConfig) if f.name in data["windows"]})
            decoding = DecodeConfig(**{f.name: data["decoding"][f.name] for f in fields(DecodeConfig) if f.name in data["decoding"]})
            return cls(windows, decoding, str(data.get("squad_version", "1.1")))
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{source}: malformed QA settings ({e})") from None


def load_qa_model(path: str | os.PathLike, dtype=None, *, trained: bool = False):
    """A ``(model, tokenizer)`` pair for QA from any BERT-family folder (or hub id).

    A SpanBERT pre-training folder gets a plain BERT QA model on its encoder (the MLM and SBO
    heads are dropped); other checkpoints load through ``AutoModelForQuestionAnswering``, a
    new QA head being created where the checkpoint has none.
    ``trained``: the folder must be one fine-tuned for this task (prediction, evaluation).
    """
    from transformers import AutoModelForQuestionAnswering, BertForQuestionAnswering

    return load_task_model(path, AutoModelForQuestionAnswering, BertForQuestionAnswering, "QA", dtype=dtype,
                           trained=trained)


def load_settings(path: str | os.PathLike) -> QASettings:
    """The QA settings saved beside a fine-tuned model (defaults when there are none)."""
    data = read_settings(path, SETTINGS_FILE)
    return QASettings() if data is None else QASettings.from_json(data, str(Path(path) / SETTINGS_FILE))


def save_qa_model(output_dir: str | os.PathLike, model, tokenizer, settings: QASettings, card: str = "") -> Path:
    """Save weights, tokenizer and ``qa_settings.json``; each file is written whole, then renamed in."""
    return save_task_model(output_dir, model, tokenizer, {SETTINGS_FILE: settings.to_json()}, card)
