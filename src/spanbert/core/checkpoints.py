"""Loading any BERT-family checkpoint under a task head (QA, classification, ...), and its
tokenizer (:func:`load_tokenizer`: any fast tokenizer folder, checked before use).

A SpanBERT pre-training folder is loaded as the plain ``bert`` model of the task: its encoder
weights are kept and its pre-training heads (MLM, SBO) are dropped, so the fine-tuned model saves
as a stock ``transformers`` checkpoint that loads without this package. A folder in today's
layout (``spanbert pretrain``, ``spanbert convert``) *is* a ``bert`` checkpoint (``BertForMaskedLM``,
its SBO head in side files these loaders never read) and goes through the task's ``Auto*``
class like any other; an older ``model_type: spanbert`` folder has its config translated
(:func:`bert_config_from_spanbert`). Either way a head the checkpoint lacks is created fresh,
the pooler included (SpanBERT never trained one, and today's folders do not store it).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from spanbert.core.atomic import atomic_write_json, atomic_write_text, publish_files
from spanbert.core.errors import CheckpointError, ConfigError, TokenizerError, one_line


def bert_config_from_spanbert(path: str | os.PathLike, **overrides):
    """A plain ``BertConfig`` from an older SpanBERT pre-training ``config.json`` (``model_type:
    spanbert``; the SBO fields dropped). Today's folders already have a ``BertConfig``."""
    from transformers import BertConfig

    data = read_checkpoint_config(Path(path))
    keep = {k: v for k, v in data.items() if not k.startswith("sbo_") and k not in ("model_type", "architectures", "auto_map")}
    return BertConfig.from_dict({**keep, **overrides})


# Where a model folder's weights may be; transformers 5 writes model.safetensors (or shards).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")  # the only weights we load
PICKLED_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")  # never unpickled
# Integer sizes of a BERT-family config that must be >= 1 where the config has them.
_POSITIVE_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                   "max_position_embeddings", "type_vocab_size", "sbo_max_span_tokens", "sbo_position_size")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}



def _load_errors() -> tuple[type[BaseException], ...]:
    """What transformers / safetensors raise for a damaged folder (bad config values, bad bytes)."""
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError

    return (OSError, ValueError, TypeError, KeyError, AssertionError, RuntimeError, StrictDataclassError, SafetensorError)


def _expand(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded; ``~user`` of an unknown user is a one-line error."""
    try:
        return Path(path).expanduser()
    except RuntimeError as e:  # "Could not determine home directory."
        raise CheckpointError(f"{path}: no such model folder (cannot expand '~': {e})") from None


def check_model_folder(path: str | os.PathLike) -> Path:
    """``path`` as a Path (``~`` expanded); a missing local folder (absolute or ./-relative) or
    one without ``config.json`` is a one-line error (anything else may be a hub id)."""
    local = _expand(path)
    if not local.exists() and local.name:
        ready = local.parent / f".{local.name}.ready"  # a fine-tuning's final swap that a crash cut short
        if ready.is_dir():
            from spanbert.core.run_folder import recover_output

            try:
                recover_output(local)
            except OSError as e:
                raise CheckpointError(f"{path}: missing; its new final model is complete in {ready} but could not "
                                      f"be moved in ({e.strerror or e})") from None
    if not local.exists() and (local.is_absolute() or str(path).startswith((".", "~")) or len(local.parts) > 2):
        raise CheckpointError(f"{path}: no such model folder")
    if local.exists() and not local.is_dir():
        raise CheckpointError(f"{path}: not a folder (expected a model folder with config.json)")
    if local.exists() and not (local / "config.json").is_file():
        raise CheckpointError(f"{local}: no config.json (not a model folder)")
    return local


def load_config(config_class, source: str | os.PathLike, what: str, **fields):
    """``config_class.from_pretrained(source, **fields)``; a config transformers cannot read
    (bad field types, unknown model type, no such hub id) is a one-line CheckpointError."""
    try:
        return config_class.from_pretrained(str(source), **fields)
    except _load_errors() as e:
        raise CheckpointError(f"{source}: cannot load a {what} config ({one_line(e)})") from None


def _read_json_object(file: Path, error: type[Exception]) -> dict:
    """The JSON object in ``file``; unreadable bytes, bad JSON or another JSON type raise ``error``
    with one line naming the file (and the line of a syntax error)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise error(f"{file}:{e.lineno}: not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{file}: cannot read it ({one_line(e)})") from None
    if not isinstance(data, dict):
        raise error(f"{file}: expected a JSON object, got {_JSON_TYPES.get(type(data), type(data).__name__)}")
    return data


def read_model_config(model_dir: str | os.PathLike) -> dict:
    """``config.json`` of a model folder; a missing folder or file is a one-line ConfigError."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such model folder")
    file = path / "config.json"
    if not file.is_file():
        raise ConfigError(f"{path}: not a model folder (no config.json)")
    return _read_json_object(file, ConfigError)


def read_checkpoint_config(folder: Path) -> dict:
    """``config.json`` of a local model folder as a dict; empty, non-JSON, or anything but a JSON
    object is a one-line :class:`CheckpointError` naming the file."""
    return _read_json_object(Path(folder) / "config.json", CheckpointError)


def check_model_config(config, where: str) -> None:
    """Refuse a config from which no model can be built, with one line naming ``where`` (the
    config file) and the field: sizes that are not positive integers, a hidden size that the
    heads do not divide, an unknown activation, a pad id outside the vocabulary, a dropout
    outside [0, 1]. (transformers would fail later with a bare KeyError/AssertionError.)"""
    import math

    from transformers.activations import ACT2FN

    for name in _POSITIVE_SIZES:
        value = getattr(config, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise CheckpointError(f"{where}: {name} must be a positive integer, got {value!r}")
    hidden, heads = getattr(config, "hidden_size", None), getattr(config, "num_attention_heads", None)
    if isinstance(hidden, int) and isinstance(heads, int) and hidden % heads:
        raise CheckpointError(f"{where}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    act = getattr(config, "hidden_act", None)
    if isinstance(act, str) and act not in ACT2FN:
        raise CheckpointError(f"{where}: unknown hidden_act {act!r} (e.g. gelu, relu, silu)")
    pad, vocab = getattr(config, "pad_token_id", None), getattr(config, "vocab_size", None)
    if pad is not None and isinstance(vocab, int) and (isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < vocab):
        raise CheckpointError(f"{where}: pad_token_id {pad!r} is outside the vocabulary (vocab_size {vocab})")
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        p = getattr(config, name, None)
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1):
            raise CheckpointError(f"{where}: {name} must be a number in [0, 1], got {p!r}")
    eps = getattr(config, "layer_norm_eps", None)
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0):
        raise CheckpointError(f"{where}: layer_norm_eps must be a finite number >= 0, got {eps!r}")


def check_weights_file(folder: Path) -> None:
    """A local model folder must hold safetensors weights (a pickled ``pytorch_model.bin`` alone is
    refused, never unpickled), and a ``model.safetensors`` must be readable (its header is
    parsed; a garbage or truncated file is a one-line CheckpointError)."""
    from safetensors import SafetensorError, safe_open

    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        pickled = next((name for name in PICKLED_WEIGHT_FILES if (folder / name).is_file()), None)
        if pickled:
            raise CheckpointError(f"{folder}: only {pickled}, a pickle, which spanbert never loads; save the model "
                                  "as model.safetensors (transformers' save_pretrained does) and try again")
        raise CheckpointError(f"{folder}: no model.safetensors (the model's weights are missing)")
    file = folder / "model.safetensors"
    if file.is_file():
        try:
            with safe_open(str(file), "pt"):
                pass
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{file}: not a readable safetensors file ({one_line(e)})") from None


def _is_encoder_key(key: str, prefix: str) -> bool:
    """Whether a state-dict key belongs to the encoder proper (embeddings and layers; not the
    pooler, not a head), with or without the base model's ``prefix``."""
    if prefix and key.startswith(prefix + "."):
        key = key[len(prefix) + 1 :]
    return key.startswith(("embeddings.", "encoder.")) and not key.endswith("position_ids")


def _check_loading_info(info: dict, model, path: str | os.PathLike, strict: bool) -> None:
    """Refuse weights that disagree with the config: a tensor of another shape, or encoder
    tensors missing from (or left over in) the file; with ``strict``, any missing tensor."""
    mismatched = sorted(info.get("mismatched_keys") or [], key=lambda m: m[0])  # (key, shape in file, by config)
    if mismatched:
        key, in_file, by_config = mismatched[0]
        raise CheckpointError(
            f"{path}: config.json does not match the weights: {key} is {list(in_file)} in the file but "
            f"{list(by_config)} by config.json (tensors that differ: {len(mismatched)})"
        )
    prefix = getattr(model, "base_model_prefix", "")
    missing = sorted(k for k in info.get("missing_keys") or [] if strict or _is_encoder_key(k, prefix))
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise CheckpointError(f"{path}: {len(missing)} tensors the config needs are missing from the weights ({shown})")
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if _is_encoder_key(k, prefix))
    if unexpected:
        shown = ", ".join(unexpected[:3]) + (", ..." if len(unexpected) > 3 else "")
        raise CheckpointError(f"{path}: the weights hold {len(unexpected)} encoder tensors config.json has no place for ({shown})")


def load_checked(model_class, path: str | os.PathLike, what: str, config, *, dtype=None, strict: bool = False):
    """``(model, loading_info)``: ``model_class.from_pretrained(path, config=config)`` where a
    damaged model folder is a one-line :class:`CheckpointError` naming it, never a silently
    half-random model: the config is checked (:func:`check_model_config`), a local folder's
    weights file must be there and readable, tensors whose shape disagrees with the config and
    missing or left-over encoder tensors are refused (any missing tensor with ``strict``: for a
    folder saved as this very class). Heads the checkpoint lacks are created fresh otherwise.
    ``dtype`` (None: the checkpoint's) goes to ``from_pretrained``."""
    import transformers

    local = Path(path)
    where = str(local / "config.json") if local.is_dir() else f"{path} (config)"
    check_model_config(config, where)
    if local.is_dir():
        check_weights_file(local)
    kwargs = {} if dtype is None else {"dtype": dtype}
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the load report: what matters in it is raised below
    try:
        model, info = model_class.from_pretrained(str(path), config=config, output_loading_info=True,
                                                  ignore_mismatched_sizes=True, use_safetensors=True, **kwargs)
    except _load_errors() as e:
        raise CheckpointError(f"{path}: cannot load a {what} model ({one_line(e)})") from None
    finally:
        transformers.logging.set_verbosity(level)
    _check_loading_info(info, model, path, strict)
    return model, info


def check_positions(config, length: int, option: str = "--max-seq-length") -> None:
    """Refuse a sequence length the encoder has no position embeddings for (a model fine-tuned so
    would fail on every longer input later): one line naming ``option``."""
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and length > limit:
        raise ConfigError(f"{option} {length}: the encoder has only {limit} positions")


def check_tokenizer_fits(tokenizer, config, path: str | os.PathLike) -> None:
    """The tokenizer's ids must index the model's embedding matrix (``config.vocab_size`` rows)."""
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int) and len(tokenizer) > vocab:
        raise CheckpointError(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but config.json vocab_size is {vocab} "
            "(tokenizer and weights do not belong together)"
        )


def _not_trained(path: str | os.PathLike, what: str, saved_as: str) -> str:
    return (f"{path}: not a fine-tuned {what} model (it was saved as {saved_as}); "
            f"fine-tune one first with `spanbert finetune`")


def load_task_model(path: str | os.PathLike, auto_class, bert_class, what: str, dtype=None, *, trained: bool = False,
                    **config_overrides):
    """``(model, tokenizer)`` of ``auto_class`` (e.g. ``AutoModelForQuestionAnswering``) from a
    local folder or hub id; SpanBERT folders become ``bert_class`` (e.g. ``BertForQuestionAnswering``).

    ``config_overrides`` (e.g. ``num_labels``, ``id2label``) go to the config. Weights load in
    float32 unless ``dtype`` says otherwise, whatever the checkpoint was saved in (inference and
    training get reduced precision from autocast, which needs float32 parameters on a CPU).
    Errors are one :class:`CheckpointError` line naming the path; ``what`` names the task in it.
    A folder saved as ``bert_class`` must hold all of its tensors; any other folder must hold
    the encoder's (the task head is then created fresh), unless ``trained``: for prediction and
    evaluation the folder must be one fine-tuned for this task (its ``architectures`` name a
    ``*For<Task>`` class, and every tensor is there), never a random head. See :func:`load_checked`.
    """
    import transformers

    local = check_model_folder(path)
    source = str(local) if local.exists() else str(path)
    data = read_checkpoint_config(local) if local.is_dir() else {}
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        if data.get("model_type") == "spanbert":
            config, model_class = bert_config_from_spanbert(local, **config_overrides), bert_class
        else:
            config, model_class = transformers.AutoConfig.from_pretrained(source, **config_overrides), auto_class
    except _load_errors() as e:
        raise CheckpointError(f"{path}: cannot load a {what} model ({one_line(e)})") from None
    finally:
        transformers.logging.set_verbosity(level)
    architectures = data.get("architectures")
    strict = isinstance(architectures, list) and bert_class.__name__ in architectures  # a folder saved as this class
    if trained:
        suffix = bert_class.__name__.removeprefix("Bert")  # e.g. ForQuestionAnswering, any model family
        if isinstance(architectures, list) and not any(str(a).endswith(suffix) for a in architectures):
            raise CheckpointError(_not_trained(path, what, ", ".join(map(str, architectures)) or "no architecture"))
        strict = True  # every tensor, the head's included, must come from the file
    model, _ = load_checked(model_class, source, what, config, dtype=torch.float32 if dtype is None else dtype,
                            strict=strict)  # reduced precision comes from autocast
    # Any fast or slow tokenizer (a classifier needs no mask token); loading failures are errors.
    tokenizer = load_tokenizer(source, require_fast=False, require_mask=False)
    check_tokenizer_fits(tokenizer, model.config, path)
    return model, tokenizer


def register_auto(model_class, *auto_classes, encoder=None) -> None:
    """Let transformers' Auto classes load our model type (once this module is imported):
    ``AutoConfig`` gets ``model_class.config_class``, ``AutoModel`` gets ``encoder`` (a
    ``BertModel`` bound to that config) or else ``model_class``, and each of ``auto_classes``
    (``AutoModelForTokenClassification``, ...) gets ``model_class``."""
    import transformers

    config = model_class.config_class
    transformers.AutoConfig.register(config.model_type, config, exist_ok=True)
    transformers.AutoModel.register(config, encoder or model_class, exist_ok=True)
    for auto in auto_classes:
        auto.register(config, model_class, exist_ok=True)


def load_head_model(path: str | os.PathLike, head_class, what: str, dtype=None, *, trained: bool = False, **fields):
    """``(model, tokenizer)`` of one of our task heads (a ``BertPreTrainedModel`` subclass whose
    config class subclasses ``BertConfig``) from a local folder or hub id.

    A folder already saved as this head loads as it is (``fields`` override its config) and
    must hold all its tensors; any other BERT-family folder (``bert``, which includes our
    pre-training runs, or an older ``spanbert`` one) gives its encoder weights and config, and the head is created fresh
    with ``fields`` (e.g. ``id2label``), unless ``trained`` (prediction, evaluation): then only a
    folder saved as this head is accepted. Damaged folders are one-line :class:`CheckpointError`s
    (see :func:`load_checked`).
    """
    import transformers

    config_class = head_class.config_class
    local = check_model_folder(path)
    source = str(local) if local.exists() else str(path)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        if local.is_dir():
            data = read_checkpoint_config(local)
        else:
            data = transformers.AutoConfig.from_pretrained(source).to_dict()
        saved_head = data.get("model_type") == config_class.model_type
        if trained and not saved_head:
            saved_as = data.get("architectures") or [f"model_type {data.get('model_type')!r}"]
            raise CheckpointError(_not_trained(path, what, ", ".join(map(str, saved_as))))
        if saved_head:
            config = config_class.from_pretrained(source, **fields)
        else:
            if data.get("model_type") not in ("bert", "spanbert"):
                raise CheckpointError(f"{path}: a {what} head needs a BERT encoder, not model_type {data.get('model_type')!r}")
            keep = {k: v for k, v in data.items() if not k.startswith("sbo_") and k not in ("model_type", "architectures", "auto_map")}
            config = config_class.from_dict({**keep, **fields})
    except _load_errors() as e:
        raise CheckpointError(f"{path}: cannot load a {what} model ({one_line(e)})") from None
    finally:
        transformers.logging.set_verbosity(level)
    model, _ = load_checked(head_class, source, what, config, dtype=torch.float32 if dtype is None else dtype,
                            strict=saved_head)  # reduced precision comes from autocast
    tokenizer = load_tokenizer(source)
    check_tokenizer_fits(tokenizer, model.config, path)
    return model, tokenizer


def read_settings(model_dir: str | os.PathLike, file_name: str) -> dict | None:
    """The JSON object a task saved beside its model (``None`` when the file is absent); bad
    JSON is a one-line :class:`CheckpointError` naming the file and line."""
    file = Path(model_dir) / file_name
    if not file.is_file():
        return None
    return _read_json_object(file, CheckpointError)


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
    model card; each file is written whole, then renamed in, so a crash leaves no half file.

    A fine-tuning saves into the folder :func:`spanbert.core.run_folder.staged_output` gives,
    so that these files, the dev results and the summary replace the output folder together."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".save.") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        publish_files(tmp, out)
    for name, obj in (settings or {}).items():
        atomic_write_json(out / name, obj)
    if card:
        atomic_write_text(out / "README.md", card)
    return out


# How the model card names the hyper-parameters of a run summary's "hyperparameters".
_HYPERPARAMETER_NAMES = {
    "lr": "peak learning rate", "head_lr": "peak learning rate of the head", "batch_size": "batch size (per optimizer step)",
    "grad_accum": "gradient accumulation steps", "micro_batch_size": "micro-batch per process", "processes": "processes",
    "epochs": "epochs (at most)", "max_steps": "optimizer steps (planned)", "warmup_steps": "warm-up steps (linear)",
    "weight_decay": "weight decay", "max_grad_norm": "gradient clipping (max norm)", "dropout": "dropout",
    "precision": "precision", "seed": "seed", "eval_every": "dev evaluation every (steps)",
    "select_best": "keep the best dev evaluation's weights", "early_stopping": "early stopping (evaluations)",
}


def _data_name(source) -> str | None:
    """A data set as the card's ``datasets`` names it: a file or folder name, a hub id for ``hf:``."""
    if source is None:
        return None
    text = str(source)
    if text.startswith("hf:"):
        return text[3:].split(":")[0].split("@")[0] or None
    return Path(text).name or text


def _is_hub_id(name) -> bool:
    """Whether ``name`` reads as a hub model id (``org/name`` or ``name``) and is no local path."""
    import re

    text = str(name or "")
    return bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?", text)) and not Path(text).expanduser().exists()


def model_card(title: str, pipeline_tag: str, tags: list[str], how_to_load: str, summary: dict) -> str:
    """A Hugging Face model card for a fine-tuned model, from its run ``summary``.

    The YAML header is the Hub's: ``library_name: transformers``, ``base_model`` (when the base
    is a hub id; a local folder is named in the text), ``datasets`` (the data names),
    ``pipeline_tag``, ``tags`` and, with dev results, a ``model-index`` of the dev metrics. The
    text says how to load the model, the base model and data, the hyper-parameters, the dev
    metrics and the dev selection, and ends with the whole summary as JSON.
    """
    from huggingface_hub import EvalResult, ModelCardData

    def listed(value) -> list:
        return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]

    base = summary.get("model")
    train, dev = listed(summary.get("train")), listed(summary.get("dev"))
    datasets = list(dict.fromkeys(n for n in map(_data_name, train + dev) if n))
    dev_metrics = {k: v for k, v in (summary.get("dev_metrics") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
    dev_name = ", ".join(n for n in map(_data_name, dev) if n) or "dev"
    results = [EvalResult(task_type=pipeline_tag, dataset_type=dev_name, dataset_name=dev_name, dataset_split="dev",
                          metric_type=k, metric_value=v, metric_name=f"dev {k}") for k, v in dev_metrics.items()]
    data = ModelCardData(library_name="transformers", base_model=str(base) if _is_hub_id(base) else None,
                         datasets=datasets or None, pipeline_tag=pipeline_tag, tags=["spanbert", *tags],
                         model_name=title if results else None, eval_results=results or None)
    lines = ["---", data.to_yaml(), "---", "", f"# {title}", "", how_to_load, "", "## Training", ""]
    if base is not None:
        lines.append(f"- base model: `{base}`")
    for what, sources in (("training data", train), ("dev data", dev)):
        if sources:
            lines.append(f"- {what}: " + ", ".join(f"`{s}`" for s in sources))
    if "steps" in summary:
        lines.append(f"- trained {summary['steps']} optimizer steps ({summary.get('epochs')} epochs) in "
                     f"{summary.get('train_seconds')} s; final training loss {summary.get('final_loss')}")
    hyper = summary.get("hyperparameters") or {}
    if hyper:
        lines += ["", "### Hyper-parameters", "", "| setting | value |", "|---|---|"]
        lines += [f"| {_HYPERPARAMETER_NAMES.get(k, k)} | {v} |" for k, v in hyper.items() if v is not None]
    if dev_metrics:
        lines += ["", "## Dev results", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in dev_metrics.items()]
    chosen = summary.get("selected_on_dev")
    if chosen:
        lines += ["", f"The weights are those of step {chosen.get('step')}, the best of {chosen.get('evaluations')} dev "
                  f"evaluations by {chosen.get('metric')} ({chosen.get('score')})"
                  + ("; early stopping ended the run." if chosen.get("stopped_early") else ".")]
    lines += ["", "## Run summary", "", "```json", json.dumps(summary, indent=2), "```", ""]
    return "\n".join(lines)


def _looks_like_path(name: str) -> bool:
    """A name the user meant as a local path, not a Hub id like ``org/model``."""
    return os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def load_tokenizer(path_or_name: str | Path, *, require_fast: bool = True, require_mask: bool = True):
    """Load a tokenizer with ``AutoTokenizer`` and check that span masking can use it.

    Args:
        path_or_name: a directory written by ``save_pretrained``, or a Hub id (only works
            online or from the local Hugging Face cache).
        require_fast: refuse a tokenizer without word ids and character offsets.
        require_mask: refuse a tokenizer without a mask token (a classifier needs none).

    Returns:
        the tokenizer, guaranteed to have a vocabulary beyond its special tokens, and (as
        required) fast and with a mask token.

    Raises:
        TokenizerError: (one line) the directory is missing, not a directory, holds no
            loadable tokenizer (damaged files, or no vocabulary: e.g. tokenizer.json is
            missing and only the special tokens load), or the tokenizer is not fast or has no
            mask token when those are required.
    """
    import transformers

    name = str(path_or_name)
    try:
        path = Path(name).expanduser()
    except RuntimeError as err:  # "~user" of an unknown user: "Could not determine home directory."
        raise TokenizerError(f"{name}: no such tokenizer directory (cannot expand '~': {err})") from None
    if path.exists():
        if not path.is_dir():
            raise TokenizerError(f"{path}: not a directory (expected a tokenizer directory from save_pretrained)")
        name = str(path)
    elif _looks_like_path(name):
        raise TokenizerError(f"{path}: no such tokenizer directory")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError... depending on what is missing
        reason = one_line(err)
        if path.exists():
            raise TokenizerError(f"{name}: cannot load a tokenizer from this directory ({reason})") from err
        raise TokenizerError(
            f"{name}: not a local directory, and no Hub tokenizer of that name loads ({reason})"
        ) from err
    if require_fast and not getattr(tokenizer, "is_fast", False):
        raise TokenizerError(
            f"{name}: {type(tokenizer).__name__} is not a fast tokenizer; word ids and offsets are needed "
            "(save one with a tokenizer.json)"
        )
    if require_mask and tokenizer.mask_token is None:
        raise TokenizerError(f"{name}: the tokenizer has no mask token (set mask_token in tokenizer_config.json)")
    try:
        ordinary = set(tokenizer.get_vocab()) - set(tokenizer.all_special_tokens)
    except Exception as err:  # noqa: BLE001 - a damaged tokenizer can fail here too
        raise TokenizerError(f"{name}: cannot read the tokenizer's vocabulary ({one_line(err)})") from err
    if not ordinary:
        # transformers 5 builds a tokenizer of the special tokens alone from tokenizer_config.json
        # when tokenizer.json (and vocab.txt) are absent: every word would become [UNK].
        raise TokenizerError(
            f"{name}: the tokenizer has no vocabulary beyond its {len(tokenizer)} special tokens "
            "(tokenizer.json or vocab.txt missing?)"
        )
    return tokenizer
