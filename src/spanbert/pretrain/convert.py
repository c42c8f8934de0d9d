"""Convert the checkpoints the SpanBERT authors released into our pre-training folder format.

This module owns: reading the authors' pickled checkpoints safely, mapping every tensor name
onto :class:`spanbert.pretrain.modeling.SpanBertForPreTraining`, deriving the configuration from the
tensor shapes, and writing the converted folder atomically, in the layout of
``spanbert pretrain``'s final model (:func:`spanbert.pretrain.modeling.save_pretraining_folder`): a plain
``BertForMaskedLM`` checkpoint that transformers loads alone, plus the SBO head and settings
beside it. A pooler in the source is not kept (``BertForMaskedLM`` has none, and SpanBERT,
trained without NSP, never trained it); ``conversion.json`` lists it as dropped. Two source layouts
(facts from facebookresearch/SpanBERT, read, not copied):

* **original-hf** (``spanbert_hf.tar.gz`` / ``spanbert_hf_base.tar.gz``, extracted): a
  pytorch-pretrained-bert folder, ``config.json`` (or ``bert_config.json``) +
  ``pytorch_model.bin``, no vocabulary. The authors' loader
  (``code/pytorch_pretrained_bert/modeling.py``, ``from_pretrained``) strips a leading
  ``decoder.``, renames LayerNorm ``gamma``/``beta`` to ``weight``/``bias`` and adds ``bert.``
  when it is missing; its LayerNorms use eps 1e-12. Usually encoder only: the heads we lack
  are created fresh (seeded).
* **fairseq** (``pretraining/``, model ``bert_pair`` of ``fairseq/models/pair_bert.py``, wrapped
  by fairseq as ``decoder``): a ``checkpoint_*.pt`` is ``dict(args, model, optimizer_history,
  last_optimizer_state, extra_state)`` (``fairseq/utils.py`` ``save_state``); the released
  ``spanbert_large_with_head`` ``model.pt`` is the bare ``model`` state dict. Its heads:
  ``cls.predictions`` (BERT's MLM head) and ``cls.pair_target_predictions`` (the SBO head:
  ``position_embeddings`` (max_pair_targets x 200), ``mlp_layer_norm`` = linear1 [2H+200 -> H]
  -> GeLU -> layer_norm1 -> linear2 [H -> H] -> GeLU -> layer_norm2 over
  ``cat(h_left, h_right, p_j)``, ``decoder`` tied to the word embeddings, own ``bias``); row j
  of the position table is the j-th token of the span (``fairseq/data/masking.py``
  ``span_masking``), as in ours.

Pickles are only ever read with ``torch.load(weights_only=True)``. A fairseq checkpoint's
``args`` is an ``argparse.Namespace`` holding a ``fairseq...BertConfig`` object, and its
``extra_state`` holds ``fairseq.meters`` objects: the Namespace is allow-listed, and each
``fairseq.*`` class is replaced by an inert placeholder that only receives its attribute
dict, so nothing from the file is executed and fairseq need not be installed.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from spanbert.core.atomic import atomic_directory, atomic_write_json, atomic_write_text
from spanbert.core.errors import CheckpointError, ConfigError, one_line
from spanbert.pretrain.modeling import (
    SBO_HEAD_FILE,
    SPANBERT_CONFIG_FILE,
    SpanBertConfig,
    SpanBertForPreTraining,
    save_pretraining_folder,
)

__all__ = [
    "ConversionResult",
    "convert_original_hf",
    "convert_fairseq",
    "map_original_names",
    "read_original_checkpoint",
]

# -- names -----------------------------------------------------------------------------------

# Head renames, original -> ours (after `decoder.` is stripped and `bert.` added). The encoder
# keeps BERT's names on both sides; LayerNorm `gamma`/`beta` become `weight`/`bias` everywhere.
_HEAD_PREFIXES: tuple[tuple[str, str], ...] = (
    ("cls.predictions.transform.", "cls.predictions.transform."),
    ("cls.pair_target_predictions.position_embeddings.", "sbo.position_embeddings."),
    ("cls.pair_target_predictions.mlp_layer_norm.linear1.", "sbo.dense1."),
    ("cls.pair_target_predictions.mlp_layer_norm.layer_norm1.", "sbo.LayerNorm1."),
    ("cls.pair_target_predictions.mlp_layer_norm.linear2.", "sbo.dense2."),
    ("cls.pair_target_predictions.mlp_layer_norm.layer_norm2.", "sbo.LayerNorm2."),
)
_HEAD_EXACT = {
    "cls.predictions.bias": "cls.predictions.bias",
    "cls.pair_target_predictions.bias": "sbo.bias",
}
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
# Every encoder name of BERT (the same in pytorch-pretrained-bert, the fairseq fork and transformers).
_ENCODER_NAME = re.compile(
    r"bert\.(embeddings\.(word|position|token_type)_embeddings\.weight"
    r"|embeddings\.LayerNorm\.(weight|bias)"
    r"|encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.(dense|LayerNorm)"
    r"|intermediate\.dense|output\.(dense|LayerNorm))\.(weight|bias)"
    r"|pooler\.dense\.(weight|bias))"
)
# Output projections the original ties to another tensor: checked equal, then not stored
# (ours ties them by construction).
_TIED = {
    "cls.predictions.decoder.weight": WORD_EMBEDDINGS,
    "cls.pair_target_predictions.decoder.weight": WORD_EMBEDDINGS,
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
# Tensors with no counterpart in SpanBERT: the NSP classifier (SpanBERT trains without NSP).
_DROPPABLE = {"cls.seq_relationship.weight", "cls.seq_relationship.bias"}
# Our aliases of tied tensors: never loaded directly.
_OUR_ALIASES = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
# Parts of our model that may be absent from a source and are then created fresh, as wholes.
_OPTIONAL_PARTS = {"cls.predictions.": "MLM head", "sbo.": "SBO head"}
# Tensors of the source that the saved folder has no place for (BertForMaskedLM has no pooler).
_NOT_SAVED = "bert.pooler."


def _few(names, n: int = 3) -> str:
    names = sorted(names)
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


@dataclass
class MappedWeights:
    """Tensors under our names, plus what happened to the rest of the source."""

    tensors: dict[str, torch.Tensor]
    renamed_layer_norm: int = 0
    tied_checked: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    source_dtypes: list[str] = field(default_factory=list)


def _our_name(name: str) -> str | None:
    """Our parameter name for an original one (prefixes normalised), or None if unknown."""
    if name.startswith("decoder."):  # the fairseq model wrapper
        name = name[len("decoder."):]
    if name.startswith(("embeddings.", "encoder.", "pooler.")):  # a bare BertModel state dict
        name = "bert." + name
    parts = name.split(".")
    if parts[-1] in ("gamma", "beta"):
        parts[-1] = "weight" if parts[-1] == "gamma" else "bias"
    name = ".".join(parts)
    if _ENCODER_NAME.fullmatch(name) or name in _TIED or name in _DROPPABLE:
        return name
    if name in _HEAD_EXACT:
        return _HEAD_EXACT[name]
    for old, new in _HEAD_PREFIXES:
        if name.startswith(old):
            return new + name[len(old):]
    return None


def map_original_names(state: Mapping[str, Any], source: str) -> MappedWeights:
    """Rename an original state dict to ours; every name must be known.

    Args:
        state: the authors' state dict (``decoder.``/``bert.``/no prefix, gamma/beta or
            weight/bias LayerNorm names).
        source: the file, for error messages.

    Returns:
        float32 tensors under our names; the tied output projections are checked equal to the
        tensor they are tied to and left out; the NSP head is left out and listed in ``dropped``.

    Raises:
        ConfigError: (one line) a value is not a tensor, a name is unknown, two names map to the
            same tensor, or a tied projection differs from its source.
    """
    tensors: dict[str, torch.Tensor] = {}
    tied: dict[str, torch.Tensor] = {}
    result = MappedWeights(tensors)
    unknown, dtypes = [], set()
    for original, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConfigError(f"{source}: entry {original!r} is a {type(value).__name__}, not a tensor")
        ours = _our_name(str(original))
        if ours is None:
            unknown.append(str(original))
            continue
        dtypes.add(str(value.dtype).removeprefix("torch."))
        if original.split(".")[-1] in ("gamma", "beta"):
            result.renamed_layer_norm += 1
        if ours in _DROPPABLE:
            result.dropped.append(str(original))
            continue
        target = tied if ours in _TIED else tensors
        if ours in target:
            raise ConfigError(f"{source}: two entries map to {ours} (one is {original})")
        target[ours] = value.float() if value.is_floating_point() else value
    if unknown:
        raise ConfigError(f"{source}: {len(unknown)} tensor(s) with no counterpart in SpanBertForPreTraining: {_few(unknown)}")
    for name, value in tied.items():
        source_of_tie = tensors.get(_TIED[name])
        if source_of_tie is None:
            raise ConfigError(f"{source}: {name} is present but {_TIED[name]}, to which it is tied, is missing")
        if value.shape != source_of_tie.shape or not torch.equal(value, source_of_tie):
            raise ConfigError(f"{source}: {name} differs from {_TIED[name]}; ours ties them, so untied weights cannot be converted")
        result.tied_checked.append(name)
    result.source_dtypes = sorted(dtypes)
    return result


# -- safe reading ----------------------------------------------------------------------------


class _Opaque:
    """Stand-in for a class of the authors' fairseq fork found in a pickle: keeps the
    attribute dict the unpickler gives it and runs nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {vars(self)}>"


_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_original_checkpoint(path: str | Path) -> Any:
    """Unpickle a ``.bin``/``.pt`` file with ``torch.load(weights_only=True)`` on the CPU.

    ``argparse.Namespace`` is allowed, and any ``fairseq.*`` class is read as an inert
    :class:`_Opaque` placeholder (attributes only). Any other global, or a file that is not a
    PyTorch pickle, is a one-line :class:`CheckpointError`; the file is never loaded with
    ``weights_only=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    mmap = zipfile.is_zipfile(path)  # the newer format can be mapped (optimizer states stay on disk)
    if not mmap:
        with open(path, "rb") as f:
            if f.read(1) != b"\x80":  # the legacy format starts with a pickle (protocol >= 2)
                raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip nor a pickle)")
    placeholders: dict[str, type] = {}
    while True:
        allowed = [argparse.Namespace, *((cls, name) for name, cls in placeholders.items())]
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as err:
            found = _UNSUPPORTED.search(str(err))
            name = found.group(1) if found else None
            if name and name.startswith("fairseq.") and name not in placeholders and len(placeholders) < 100:
                placeholders[name] = type(name.rsplit(".", 1)[-1], (_Opaque,), {"__module__": "fairseq-placeholder"})
                continue
            what = f"it needs {name}, which a weights-only load does not allow" if name else _unpickler_reason(err)
            raise CheckpointError(f"{path}: cannot be read safely as a checkpoint ({what})") from None
        except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError) as err:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint ({one_line(err, last=True)})") from None


def _unpickler_reason(err: BaseException) -> str:
    """The weights-only unpickler's own reason, without torch's advice around it."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", str(err), re.S)
    return " ".join(found.group(1).split())[:200] if found else one_line(err, last=True)



def _state_dict_of(obj: Any, path: Path) -> tuple[Mapping[str, Any], Any]:
    """(state dict, fairseq args or None) of a loaded checkpoint object."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        return obj["model"], obj.get("args")
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) for k in obj) and all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        return obj, None
    raise CheckpointError(
        f"{path}: not a model checkpoint (expected a state dict of tensors, or a fairseq dict with 'model'; "
        f"got {type(obj).__name__})"
    )


# -- configuration -------------------------------------------------------------------------


def _layer_indices(tensors: Mapping[str, torch.Tensor]) -> list[int]:
    return sorted({int(m.group(1)) for n in tensors if (m := re.match(r"bert\.encoder\.layer\.(\d+)\.", n))})


def _shape(tensors: Mapping[str, torch.Tensor], name: str, source: str) -> tuple[int, ...]:
    if name not in tensors:
        raise ConfigError(f"{source}: missing tensor {name} (needed to size the model)")
    return tuple(tensors[name].shape)


def config_from_tensors(tensors: Mapping[str, torch.Tensor], source: str, **fields: Any) -> SpanBertConfig:
    """A :class:`SpanBertConfig` whose sizes come from the tensor shapes; ``fields`` add the rest
    (heads, eps, activation, dropouts); ``num_attention_heads`` None means hidden/64 (BERT's)."""
    vocab_size, hidden = _shape(tensors, WORD_EMBEDDINGS, source)
    layers = _layer_indices(tensors)
    if not layers:
        raise ConfigError(f"{source}: no encoder layers (no bert.encoder.layer.N.* tensors)")
    if layers != list(range(len(layers))):
        raise ConfigError(f"{source}: encoder layers are not numbered 0..N-1 (found {_few(map(str, layers))})")
    sizes = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=len(layers),
        intermediate_size=_shape(tensors, "bert.encoder.layer.0.intermediate.dense.weight", source)[0],
        max_position_embeddings=_shape(tensors, "bert.embeddings.position_embeddings.weight", source)[0],
        type_vocab_size=_shape(tensors, "bert.embeddings.token_type_embeddings.weight", source)[0],
    )
    if "sbo.position_embeddings.weight" in tensors:
        rows, width = tensors["sbo.position_embeddings.weight"].shape
        sizes.update(sbo_max_span_tokens=rows, sbo_position_size=width)
        if "sbo.dense1.weight" in tensors and tensors["sbo.dense1.weight"].shape[1] != 2 * hidden + width:
            raise ConfigError(
                f"{source}: the SBO MLP takes {tensors['sbo.dense1.weight'].shape[1]} inputs, not 2 x {hidden} + {width} "
                "([left; right; position]); this layout cannot be converted"
            )
    heads = fields.pop("num_attention_heads", None) or (hidden // 64 if hidden % 64 == 0 else None)
    if not heads or hidden % heads:
        raise ConfigError(f"{source}: cannot tell the number of attention heads for hidden size {hidden}; give num_attention_heads")
    act = fields.get("hidden_act", "gelu")
    if not isinstance(act, str) or act not in ("gelu", "relu", "swish"):
        raise ConfigError(f"{source}: hidden_act {act!r} is not one of the original's gelu, relu, swish")
    return SpanBertConfig(**sizes, num_attention_heads=heads, **fields)


def _check_against(declared: Mapping[str, Any], config: SpanBertConfig, source: str) -> None:
    """Sizes a config file declares must equal those of the weights."""
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings",
                "type_vocab_size"):
        if key in declared and declared[key] != getattr(config, key):
            raise ConfigError(f"{source}: {key} is {declared[key]} but the weights have {getattr(config, key)}")


# -- building and writing ---------------------------------------------------------------------


@dataclass
class ConversionResult:
    """What a conversion did; also written as ``conversion.json`` in the output folder."""

    output_dir: str
    source: str
    layout: str
    tensors_loaded: int
    renamed_layer_norm: int
    tied_checked: list[str]
    dropped: list[str]
    fresh: list[str]
    source_dtypes: list[str]
    seed: int
    settings: dict[str, Any]
    notes: list[str]


def _fill_model(config: SpanBertConfig, mapped: MappedWeights, source: str, seed: int,
                fresh_allowed: set[str]) -> tuple[SpanBertForPreTraining, list[str]]:
    """A seeded fresh model with every mapped tensor loaded; returns it and the parts left fresh."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SpanBertForPreTraining(config)
    ours = {k: v for k, v in model.state_dict().items() if k not in _OUR_ALIASES and not k.startswith(_NOT_SAVED)}
    given = mapped.tensors
    unexpected = sorted(set(given) - set(ours))
    if unexpected:
        raise ConfigError(f"{source}: tensor(s) our model has no place for: {_few(unexpected)}")
    wrong = [f"{k} {tuple(given[k].shape)} vs {tuple(ours[k].shape)}" for k in given if given[k].shape != ours[k].shape]
    if wrong:
        raise ConfigError(f"{source}: tensor shapes differ from the derived config: {_few(wrong)}")
    missing = set(ours) - set(given)
    fresh = []
    for prefix, part in _OPTIONAL_PARTS.items():
        in_part = {k for k in ours if k.startswith(prefix)}
        absent = in_part & missing
        if absent == in_part and part in fresh_allowed:
            fresh.append(part)
            missing -= absent
    if missing:
        raise ConfigError(f"{source}: {len(missing)} tensor(s) missing: {_few(missing)}")
    model.load_state_dict(given, strict=False)
    model.eval()
    return model, fresh


def _resolve_tokenizer(tokenizer: Any, vocab_size: int, source: str):
    from spanbert.core.checkpoints import load_tokenizer

    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
    if len(tok) != vocab_size:
        raise ConfigError(
            f"{source}: the weights have {vocab_size} vocabulary rows but the tokenizer has {len(tok)} tokens "
            "(SpanBERT used BERT's cased vocabulary, 28,996)"
        )
    return tok


def _check_output(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"{output_dir}: exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{output_dir}: already exists and is not empty (pass overwrite to replace it)")


def _card(result: ConversionResult, config: SpanBertConfig) -> str:
    heads = [h for h in ("MLM head", "SBO head") if h not in result.fresh]
    loaded = f"from the source: encoder{''.join(', ' + h for h in heads)}"
    if result.fresh:
        loaded += f"; freshly initialised (seed {result.seed}): {', '.join(result.fresh)}"
    return (
        "---\nlibrary_name: transformers\npipeline_tag: fill-mask\ntags: [spanbert, bert, converted]\n---\n\n"
        f"# SpanBERT converted from the authors' {result.layout} checkpoint\n\n"
        f"{config.num_hidden_layers} layers, hidden {config.hidden_size}, {config.num_attention_heads} heads, "
        f"vocabulary {config.vocab_size}. Weights {loaded}.\n\n"
        "A standard `bert` checkpoint (no `spanbert` import needed):\n\n"
        "- `transformers.AutoModelForMaskedLM.from_pretrained(dir)` or `pipeline(\"fill-mask\", model=dir)`: "
        "encoder + MLM head;\n"
        "- `transformers.AutoModel.from_pretrained(dir, add_pooling_layer=False)`: the encoder (there is no "
        "pooler: SpanBERT was trained without NSP).\n\n"
        f"The SBO head is in `{SBO_HEAD_FILE}`, its settings in `{SPANBERT_CONFIG_FILE}`:\n\n"
        "- `spanbert fill --model dir \"text with [MASK] [MASK]\"` fills spans with the MLM and SBO heads;\n"
        "- `spanbert.pretrain.modeling.load_for_pretraining(dir)` loads encoder + MLM + SBO heads (`--init-from dir`).\n\n"
        "What was mapped: `conversion.json`.\n"
    )


def _convert(state: Mapping[str, Any], tokenizer: Any, output_dir: str | Path, *, source: Path, layout: str,
             fields: dict[str, Any], declared: Mapping[str, Any], settings: dict[str, Any], notes: list[str],
             fresh_allowed: set[str], seed: int, overwrite: bool) -> ConversionResult:
    output_dir = Path(output_dir)
    _check_output(output_dir, overwrite)
    mapped = map_original_names(state, str(source))
    pooler = sorted(k for k in mapped.tensors if k.startswith(_NOT_SAVED))
    if pooler:
        for k in pooler:
            del mapped.tensors[k]
        mapped.dropped.extend(pooler)
        notes = [*notes, "the source's pooler (bert.pooler.*) is not kept: BertForMaskedLM has none and SpanBERT "
                 "never trained it (no NSP); heads that use a pooler start it fresh"]
    config = config_from_tensors(mapped.tensors, str(source), **fields)
    _check_against(declared, config, str(source))
    tok = _resolve_tokenizer(tokenizer, config.vocab_size, str(source))
    if tok.pad_token_id is not None:
        config.pad_token_id = tok.pad_token_id
    model, fresh = _fill_model(config, mapped, str(source), seed, fresh_allowed)
    result = ConversionResult(
        output_dir=str(output_dir), source=str(source.resolve()), layout=layout, tensors_loaded=len(mapped.tensors),
        renamed_layer_norm=mapped.renamed_layer_norm, tied_checked=sorted(mapped.tied_checked),
        dropped=sorted(mapped.dropped), fresh=fresh, source_dtypes=mapped.source_dtypes, seed=seed,
        settings=settings, notes=notes,
    )
    with atomic_directory(output_dir) as tmp:
        save_pretraining_folder(model, tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "conversion.json", asdict(result))
        atomic_write_text(tmp / "README.md", _card(result, config))
    return result


# -- the two layouts -----------------------------------------------------------------------------

_HF_CONFIG_FIELDS = ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range",
                     "layer_norm_eps", "num_attention_heads")


def convert_original_hf(src_dir: str | Path, tokenizer: Any, output_dir: str | Path, *, seed: int = 0,
                        num_attention_heads: int | None = None, overwrite: bool = False) -> ConversionResult:
    """Convert an extracted ``spanbert_hf`` / ``spanbert_hf_base`` folder into our format.

    Args:
        src_dir: folder with ``config.json`` (or ``bert_config.json``) and ``pytorch_model.bin``.
        tokenizer: the vocabulary the model was trained with (a tokenizer folder or a loaded fast
            tokenizer); for the released models BERT's cased WordPiece (28,996 tokens).
        output_dir: our pre-training folder to write (weights, config, tokenizer,
            ``conversion.json``, model card), atomically.
        seed: seeds the heads the file lacks (usually MLM and SBO).
        num_attention_heads: overrides ``config.json``.
        overwrite: replace a non-empty ``output_dir``.

    Returns:
        a :class:`ConversionResult`.

    Raises:
        CheckpointError / ConfigError: (one line) missing or unreadable files, an unknown or
            missing tensor, sizes that contradict ``config.json``, a vocabulary size that differs
            from the tokenizer's, an existing output.
    """
    src = Path(src_dir)
    if not src.is_dir():
        hint = " (extract the tarball first: tar xzf FILE)" if src.name.endswith((".tar.gz", ".tgz")) else ""
        raise CheckpointError(f"{src}: not a folder{hint}; expected config.json + pytorch_model.bin")
    config_file = next((src / n for n in ("config.json", "bert_config.json") if (src / n).is_file()), None)
    if config_file is None:
        raise CheckpointError(f"{src}: no config.json or bert_config.json")
    try:
        declared = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{config_file}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(declared, dict):
        raise CheckpointError(f"{config_file}: expected a JSON object")
    weights = src / "pytorch_model.bin"
    if not weights.is_file():
        raise CheckpointError(f"{src}: no pytorch_model.bin")
    obj = read_original_checkpoint(weights)
    if isinstance(obj, Mapping) and "model" in obj and "args" in obj:
        raise CheckpointError(f"{weights}: a fairseq training checkpoint; convert it with the fairseq layout")
    state, _ = _state_dict_of(obj, weights)
    fields = {k: declared[k] for k in _HF_CONFIG_FIELDS if k in declared}
    fields.setdefault("layer_norm_eps", 1e-12)  # pytorch_pretrained_bert's BertLayerNorm
    if num_attention_heads:
        fields["num_attention_heads"] = num_attention_heads
    notes = []
    if "num_attention_heads" not in fields:
        notes.append("num_attention_heads not in config.json: hidden_size / 64 assumed")
    notes.append("the authors' fine-tuning code clamps attention scores to +-10000; ours does not (same outputs "
                 "unless a score exceeds 10000)")
    return _convert(state, tokenizer, output_dir, source=weights, layout="original-hf", fields=fields,
                    declared=declared, settings={"config.json": declared}, notes=notes,
                    fresh_allowed={"MLM head", "SBO head"}, seed=seed, overwrite=overwrite)


# fairseq architectures of the fork: bert_pair* (pair_bert.py, LayerNorm eps 1e-12, SBO head) and
# bert_hf* (hf_bert.py, LayerNorm eps 1e-5, MLM head only).
_ARCH_EPS = {"bert_pair": 1e-12, "bert_hf": 1e-5}


def _arch_family(arch: str | None) -> str | None:
    if not arch:
        return None
    for family in _ARCH_EPS:
        if arch.removeprefix("cased_").removesuffix("_large") == family:
            return family
    return None


def _from_args(args: Any, name: str) -> Any:
    """``args.config.<name>`` (what built the model), else ``args.<name>``, else None."""
    config = getattr(args, "config", None)
    value = getattr(config, name, None) if config is not None else None
    return value if value is not None else getattr(args, name, None)


def convert_fairseq(checkpoint: str | Path, tokenizer: Any, output_dir: str | Path, *, seed: int = 0,
                    num_attention_heads: int | None = None, layer_norm_eps: float | None = None,
                    allow_missing_heads: bool = False, overwrite: bool = False) -> ConversionResult:
    """Convert a checkpoint of the authors' fairseq pre-training code (with MLM and SBO heads).

    Args:
        checkpoint: a ``checkpoint_*.pt`` (dict with ``model`` and ``args``) or the released
            ``spanbert_large_with_head`` ``model.pt`` (the bare state dict, ``decoder.*`` keys).
        tokenizer: the vocabulary the model was trained with (its ``dict.txt`` is BERT's cased
            vocabulary in id order).
        output_dir: our pre-training folder to write, atomically.
        seed: seeds the heads the file lacks (with ``allow_missing_heads``).
        num_attention_heads: overrides ``args``; without ``args`` the default is hidden / 64.
        layer_norm_eps: overrides the eps implied by ``args.arch`` (bert_pair: 1e-12; bert_hf:
            1e-5); without ``args`` a state dict with an SBO head is taken as bert_pair.
        allow_missing_heads: create a missing MLM or SBO head fresh instead of failing.
        overwrite: replace a non-empty ``output_dir``.

    Raises:
        CheckpointError / ConfigError: (one line) an unreadable file, an unknown or missing tensor,
            settings our model cannot express (SBO from another layer than the last, internal
            span endpoints, an unknown architecture), a vocabulary size that differs from the
            tokenizer's, an existing output.
    """
    path = Path(checkpoint)
    if path.name.endswith((".tar.gz", ".tgz")):
        raise CheckpointError(f"{path}: a tarball; extract it first (tar xzf FILE) and pass the .pt file inside")
    state, args = _state_dict_of(read_original_checkpoint(path), path)
    settings: dict[str, Any] = {}
    notes: list[str] = []
    if args is not None:
        for name in ("arch", "max_pair_targets", "pair_positional_embedding_size", "pair_target_layer", "endpoints",
                     "pair_loss_weight", "no_nsp", "clamp_attention", "num_attention_heads", "hidden_act",
                     "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
            value = _from_args(args, name)
            if isinstance(value, (str, int, float, bool)):
                settings[name] = value
    has_sbo = any(".pair_target_predictions." in k for k in state)
    family = _arch_family(settings.get("arch"))
    if args is not None and "arch" in settings and family is None and layer_norm_eps is None:
        raise ConfigError(f"{path}: arch {settings['arch']!r} is not one of SpanBERT's bert_pair / bert_hf architectures")
    if layer_norm_eps is None:
        if family is None and not has_sbo:
            raise ConfigError(f"{path}: no args and no SBO head: cannot tell bert_pair (eps 1e-12) from bert_hf "
                              "(eps 1e-5); give layer_norm_eps")
        layer_norm_eps = _ARCH_EPS[family or "bert_pair"]
    layer = settings.get("pair_target_layer", -1)
    if has_sbo and layer not in (-1, None):
        raise ConfigError(f"{path}: the SBO head reads layer {layer} (pair_target_layer); ours reads the last layer only")
    if has_sbo and settings.get("endpoints", "external") != "external":
        raise ConfigError(f"{path}: endpoints={settings['endpoints']!r}; our SBO uses the external boundaries "
                          "h(s-1), h(e+1)")
    if has_sbo and settings.get("pair_positional_embedding_size") not in (None, 200):
        notes.append("args.pair_positional_embedding_size is ignored by the original model (its SBO table is "
                     "always 200 wide); the width here is the tensor's")
    if settings.get("clamp_attention"):
        notes.append("trained with --clamp-attention (scores clamped to +-10000); ours does not clamp "
                     "(same outputs unless a score exceeds 10000)")
    fields: dict[str, Any] = {"layer_norm_eps": layer_norm_eps}
    for name in ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
        if name in settings:
            fields[name] = settings[name]
    heads = num_attention_heads or settings.get("num_attention_heads")
    if heads:
        fields["num_attention_heads"] = heads
    else:
        notes.append("number of attention heads not in the checkpoint: hidden_size / 64 assumed")
    if settings.get("pair_loss_weight", 0) > 0:
        fields["sbo_loss_weight"] = settings["pair_loss_weight"]
    fresh_allowed = {"MLM head", "SBO head"} if allow_missing_heads else set()
    return _convert(state, tokenizer, output_dir, source=path, layout="fairseq", fields=fields, declared={},
                    settings=settings, notes=notes, fresh_allowed=fresh_allowed, seed=seed, overwrite=overwrite)
