"""Loading any BERT-family checkpoint under a task head (QA, classification, ...).

A SpanBERT pre-training folder (``model_type: spanbert``) is loaded as the plain ``bert``
model of the task: its encoder weights are kept and its pre-training heads (MLM, SBO) are
dropped, so the fine-tuned model saves as a stock ``transformers`` checkpoint that loads
without this package. Other checkpoints go through the task's ``Auto*`` class; either way a
head the checkpoint lacks is created fresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import torch

from .atomic import atomic_write_json, atomic_write_text
from .errors import CheckpointError, ConfigError


def bert_config_from_spanbert(path: str | os.PathLike, **overrides):
    """A plain ``BertConfig`` from a SpanBERT pre-training ``config.json`` (the SBO fields dropped)."""
    from transformers import BertConfig

    data = json.loads((Path(path) / "config.json").read_text())
    keep = {k: v for k, v in data.items() if not k.startswith("sbo_") and k not in ("model_type", "architectures", "auto_map")}
    return BertConfig.from_dict({**keep, **overrides})


def _check_folder(path: str | os.PathLike) -> Path:
    """``path`` as a Path; a missing local folder (absolute or ./-relative) or one without
    ``config.json`` is a one-line error (anything else may be a hub id)."""
    local = Path(path)
    if not local.exists() and (local.is_absolute() or str(path).startswith((".", "~")) or len(local.parts) > 2):
        raise CheckpointError(f"{path}: no such model folder")
    if local.exists() and not (local / "config.json").is_file():
        raise CheckpointError(f"{local}: no config.json (not a model folder)")
    return local


def read_model_config(model_dir: str | os.PathLike) -> dict:
    """``config.json`` of a model folder; a missing folder or file is a one-line ConfigError."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such model folder")
    file = path / "config.json"
    if not file.is_file():
        raise ConfigError(f"{path}: not a model folder (no config.json)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{file}:{e.lineno}: not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot read it ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a JSON object")
    return data


def load_task_model(path: str | os.PathLike, auto_class, bert_class, what: str, dtype=None, **config_overrides):
    """``(model, tokenizer)`` of ``auto_class`` (e.g. ``AutoModelForQuestionAnswering``) from a
    local folder or hub id; SpanBERT folders become ``bert_class`` (e.g. ``BertForQuestionAnswering``).

    ``config_overrides`` (e.g. ``num_labels``, ``id2label``) go to the config. Weights load in
    float32 unless ``dtype`` says otherwise, whatever the checkpoint was saved in (inference and
    training get reduced precision from autocast, which needs float32 parameters on a CPU).
    Errors are one :class:`CheckpointError` line naming the path; ``what`` names the task in it.
    """
    import transformers
    from transformers import AutoTokenizer

    from .tokenizer import load_tokenizer

    local = _check_folder(path)
    kwargs = {"dtype": torch.float32 if dtype is None else dtype}  # reduced precision comes from autocast
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


def load_head_model(path: str | os.PathLike, head_class, what: str, dtype=None, **fields):
    """``(model, tokenizer)`` of one of our task heads (a ``BertPreTrainedModel`` subclass whose
    config class subclasses ``BertConfig``) from a local folder or hub id.

    A folder already saved as this head loads as it is (``fields`` override its config); any
    other BERT-family folder (``bert``, our ``spanbert`` pre-training runs) gives its encoder
    weights and config, and the head is created fresh with ``fields`` (e.g. ``id2label``).
    """
    import transformers

    from .tokenizer import load_tokenizer

    config_class = head_class.config_class
    local = _check_folder(path)
    kwargs = {"dtype": torch.float32 if dtype is None else dtype}  # reduced precision comes from autocast
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        if local.is_dir():
            data = json.loads((local / "config.json").read_text())
        else:
            data = transformers.AutoConfig.from_pretrained(str(path)).to_dict()
        if data.get("model_type") == config_class.model_type:
            config = config_class.from_pretrained(str(path), **fields)
        else:
            if data.get("model_type") not in ("bert", "spanbert"):
                raise CheckpointError(f"{path}: a {what} head needs a BERT encoder, not model_type {data.get('model_type')!r}")
            keep = {k: v for k, v in data.items() if not k.startswith("sbo_") and k not in ("model_type", "architectures", "auto_map")}
            config = config_class.from_dict({**keep, **fields})
        model = head_class.from_pretrained(str(path), config=config, **kwargs)
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot load a {what} model ({str(e).splitlines()[0]})") from None
    finally:
        transformers.logging.set_verbosity(level)
    return model, load_tokenizer(str(path))


def read_settings(model_dir: str | os.PathLike, file_name: str) -> dict | None:
    """The JSON object a task saved beside its model (``None`` when the file is absent); bad
    JSON is a one-line :class:`CheckpointError` naming the file and line."""
    file = Path(model_dir) / file_name
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object")
    return data


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout of ``model`` (and its config) to ``p``; e.g. 0 for exact comparisons."""
    config = getattr(model, "config", None)
    if config is not None:
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = p
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def save_task_model(output_dir: str | os.PathLike, model, tokenizer, settings: dict[str, dict] | None = None,
                    card: str = "") -> Path:
    """Save weights, config and tokenizer, plus ``settings`` (file name -> JSON object) and a
    model card; each file is written whole, then renamed in, so a crash leaves no half file."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".save.") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for f in Path(tmp).iterdir():
            if f.is_file():
                os.replace(f, out / f.name)
    for name, obj in (settings or {}).items():
        atomic_write_json(out / name, obj)
    if card:
        atomic_write_text(out / "README.md", card)
    return out


def model_card(title: str, pipeline_tag: str, tags: list[str], how_to_load: str, summary: dict) -> str:
    """A Hugging Face model card: metadata header, how to load, and the run summary as JSON."""
    lines = ["---", "library_name: transformers", f"pipeline_tag: {pipeline_tag}", f"tags: [{', '.join(['spanbert', *tags])}]",
             "---", "", f"# {title}", "", how_to_load, "", "```json", json.dumps(summary, indent=2), "```", ""]
    return "\n".join(lines)


def inference_autocast(device: torch.device, precision: str):
    """The autocast context for inference at ``precision`` (``no``, ``bf16``, ``fp16``, ``auto``:
    bf16 where the CPU/GPU has it natively); a no-op for fp32."""
    from .train import resolve_precision

    precision = resolve_precision(precision)
    if precision == "no":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
