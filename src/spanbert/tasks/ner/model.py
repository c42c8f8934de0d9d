"""The span NER model: ``BertModel`` -> span representations -> label logits per span.

For each candidate span (word boundaries, at most ``max_span_width`` words; built by
:mod:`spanbert.tasks.ner.features`) the model reads ``[h_start; h_end; (h_start*h_end); width]``
with :class:`spanbert.tasks.span_repr.EndpointSpanExtractor` (start = the first subword of the
start word, end = the last subword of the end word; the width embedding is over subword
widths), optionally lets it attend over all tokens with
:class:`spanbert.tasks.span_repr.SpanTokenCrossAttention` (context outside the span), and
classifies it with a two-layer FFNN into ``O`` (label 0, "not an entity") or an entity type. The loss is
the cross-entropy over the spans a batch labels: every gold span plus sampled negatives.

The model registers with ``AutoConfig``, ``AutoModel`` and ``AutoModelForTokenClassification``
(``model_type`` ``spanbert_span_ner``), so a saved folder loads with
``AutoModel.from_pretrained`` once ``spanbert.tasks.ner.model`` is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoModelForTokenClassification, BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertPreTrainedModel
from transformers.utils import ModelOutput

from spanbert.core.checkpoints import register_auto
from spanbert.core.errors import ConfigError
from spanbert.tasks.ner.features import IGNORE
from spanbert.tasks.span_repr import EndpointSpanExtractor, SpanTokenCrossAttention

OUTSIDE = "O"


@strict
class SpanNerConfig(BertConfig):
    """``BertConfig`` plus the span NER head's settings.

    ``id2label``: ``{0: "O", 1: TYPE, ...}``, entity types (not BIO tags), ``O`` first.
    ``max_span_width``: longest candidate span, in words.
    ``span_combination``: endpoint combination, ``"x,y"`` or ``"x,y,x*y"`` (see span_repr).
    ``width_embedding_dim``: size of the learned (bucketed) span-width embedding; 0 = none.
    ``use_cross_attention``/``cross_attention_heads``: span-to-token cross-attention.
    ``negative_ratio``: negative spans sampled per window = ceil(ratio x words); <= 0: all.
    ``classifier_hidden_size``: hidden layer of the span classifier.
    """

    model_type = "spanbert_span_ner"

    max_span_width: int = 8
    span_combination: str = "x,y"
    width_embedding_dim: int = 32
    use_cross_attention: bool = True
    cross_attention_heads: int = 4
    negative_ratio: float | int = 1.0
    classifier_hidden_size: int = 256


@dataclass
class SpanNerOutput(ModelOutput):
    """``logits`` (batch, spans, labels); ``loss``: mean cross-entropy over the labelled spans."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class SpanClassifier(nn.Module):
    """Dropout -> Linear -> GELU -> LayerNorm -> Dropout -> Linear: span vector -> label logits."""

    def __init__(self, input_dim: int, hidden: int, num_labels: int, dropout: float, eps: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(input_dim, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)  # the name lets transformers' init find it
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.LayerNorm(F.gelu(self.dense(self.dropout(x))))
        return self.out(self.dropout(h))


class BertForSpanNER(BertPreTrainedModel):
    """Span classifier over a BERT encoder; see the module doc.

    ``forward(input_ids, attention_mask, spans, span_mask, span_labels)``: ``spans`` (batch,
    num_spans, 2) inclusive subword positions; ``span_labels`` (batch, num_spans), ``-100`` =
    ignored. Without ``spans`` every token is scored as a one-token span (batch, seq, labels).
    """

    config_class = SpanNerConfig

    def __init__(self, config: SpanNerConfig):
        super().__init__(config)
        if config.id2label.get(0) != OUTSIDE:
            raise ConfigError(f"id2label: label 0 must be {OUTSIDE!r} (not an entity), got {config.id2label.get(0)!r}")
        if config.max_span_width < 1:
            raise ConfigError(f"max_span_width: must be >= 1, got {config.max_span_width}")
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        # widths are counted in subwords, one embedding each up to 2 x max_span_width, longer ones share
        # the last. (bucket_widths=True would call .item() in __init__, which fails on the meta device
        # that from_pretrained builds models on.)
        self.span_extractor = EndpointSpanExtractor(config.hidden_size, config.span_combination, config.width_embedding_dim,
                                                    max_width=2 * config.max_span_width)
        span_dim = self.span_extractor.get_output_dim()
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.cross_attention = None
        if config.use_cross_attention:
            self.cross_attention = SpanTokenCrossAttention(span_dim, config.hidden_size, config.cross_attention_heads,
                                                           config.attention_probs_dropout_prob)
        self.classifier = SpanClassifier(span_dim, config.classifier_hidden_size, config.num_labels, dropout,
                                         config.layer_norm_eps)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, spans: torch.Tensor | None = None,
                span_mask: torch.Tensor | None = None, span_labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, **kwargs) -> SpanNerOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        output_hidden_states=output_hidden_states)
        hidden = out.last_hidden_state  # (batch, seq, hidden)
        if spans is None:  # every token on its own
            positions = torch.arange(input_ids.size(1), device=input_ids.device)
            spans = positions.view(1, -1, 1).expand(input_ids.size(0), -1, 2)  # (batch, seq, 2)
            span_mask = attention_mask
        vectors = self.span_extractor(hidden, spans, span_mask)  # (batch, spans, span_dim)
        if self.cross_attention is not None:
            vectors = self.cross_attention(vectors, hidden, attention_mask, span_mask)
        logits = self.classifier(vectors)  # (batch, spans, labels)
        loss = None
        if span_labels is not None:
            labels = span_labels if span_mask is None else span_labels.masked_fill(span_mask == 0, IGNORE)
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels).float(), labels.reshape(-1), ignore_index=IGNORE)
        return SpanNerOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


register_auto(BertForSpanNER, AutoModelForTokenClassification)


def label_maps(types: list[str]) -> dict:
    """``id2label``/``label2id`` config fields for entity ``types``: ``O`` = 0, then the types in order."""
    labels = [OUTSIDE, *[t for t in types if t != OUTSIDE]]
    return {"id2label": dict(enumerate(labels)), "label2id": {t: i for i, t in enumerate(labels)}}


def load_ner_model(path: str | os.PathLike, dtype=None, *, trained: bool = False, **fields):
    """``(model, tokenizer)``: a saved span NER model as it is, or any BERT-family folder (ours or
    plain ``bert``) with a fresh head made from ``fields`` (``id2label``, ``max_span_width``, ...).
    ``trained``: the folder must be one fine-tuned for this task (prediction, evaluation)."""
    from spanbert.core.checkpoints import load_head_model

    return load_head_model(path, BertForSpanNER, "span NER", dtype=dtype, trained=trained, **fields)


__all__ = ["SpanNerConfig", "BertForSpanNER", "SpanNerOutput", "label_maps", "load_ner_model", "OUTSIDE"]
