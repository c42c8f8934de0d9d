"""Loading any BERT-family checkpoint under a task head (QA, classification, ...).

A SpanBERT pre-training folder (``model_type: spanbert``) is loaded as the plain ``bert``
model of the task: its encoder weights are kept and its pre-training heads (MLM, SBO) are
dropped, so the fine-tuned model saves as a stock ``transformers`` checkpoint that loads
without this package. Other checkpoints go through the task's ``Auto*`` class; either way a
head the checkpoint lacks is created fresh.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import CheckpointError


def bert_config_from_spanbert(path: str | os.PathLike, **overrides):
    """A plain ``BertConfig`` from a SpanBERT pre-training ``config.json`` (the SBO fields dropped)."""
    from transformers import BertConfig

    data = json.loads((Path(path) / "config.json").read_text())
    keep = {k: v for k, v in data.items() if not k.startswith("sbo_") and k not in ("model_type", "architectures", "auto_map")}
    return BertConfig.from_dict({**keep, **overrides})


def load_task_model(path: str | os.PathLike, auto_class, bert_class, what: str, dtype=None, **config_overrides):
    """``(model, tokenizer)`` of ``auto_class`` (e.g. ``AutoModelForQuestionAnswering``) from a
    local folder or hub id; SpanBERT folders become ``bert_class`` (e.g. ``BertForQuestionAnswering``).

    ``config_overrides`` (e.g. ``num_labels``, ``id2label``) go to the config. Errors are one
    :class:`CheckpointError` line naming the path; ``what`` names the task in it.
    """
    import transformers
    from transformers import AutoTokenizer

    from .tokenizer import load_tokenizer

    local = Path(path)
    if local.exists() and not (local / "config.json").is_file():
        raise CheckpointError(f"{local}: no config.json (not a model folder)")
    kwargs = {} if dtype is None else {"dtype": dtype}
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialized <head>" is expected here
    try:
        spanbert = local.is_dir() and json.loads((local / "config.json").read_text()).get("model_type") == "spanbert"
        if spanbert:
            config = bert_config_from_spanbert(local, **config_overrides)
            model = bert_class.from_pretrained(str(path), config=config, **kwargs)
        else:
            model = auto_class.from_pretrained(str(path), **config_overrides, **kwargs)
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot load a {what} model ({str(e).splitlines()[0]})") from None
    finally:
        transformers.logging.set_verbosity(level)
    try:
        tokenizer = load_tokenizer(str(path))
    except Exception:  # noqa: BLE001 - fall back to the generic loader for non-WordPiece models
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    return model, tokenizer
