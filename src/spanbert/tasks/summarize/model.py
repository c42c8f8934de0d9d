"""The extractive summarizer: a BERT encoder over long documents, sentences scored as spans.

    segments (S, L) --BertModel--> token states (S, L, H)
      -> gather each document's sentence tokens  (B, T, H)       (segments concatenated)
      -> sentence spans (B, N, 2) -> span vectors (B, N, D)      (endpoint and/or self-attentive)
      -> Linear to H (+ a learned sentence-position embedding)   (B, N, H)
      -> span-to-document cross-attention over ALL T tokens      (B, N, H)  (padding masked)
      -> MLP -> one logit per sentence                           (B, N)

Loss: binary cross-entropy against 0/1 oracle labels, averaged over the batch's real sentences
(``pos_weight`` > 1 weighs the rare positive sentences up). The head's settings are declared
fields of :class:`ExtractiveSummarizerConfig` (``model_type: spanbert_extsum``), registered
with ``AutoConfig``/``AutoModel``, so ``AutoModel.from_pretrained(dir)`` loads a saved model
once ``spanbert.tasks.summarize.model`` is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from spanbert.core.checkpoints import register_auto
from spanbert.core.errors import ConfigError
from spanbert.tasks.span_repr import EndpointSpanExtractor, SelfAttentiveSpanExtractor, SpanTokenCrossAttention

SPAN_REPRESENTATIONS = ("endpoint", "self_attentive", "endpoint+self_attentive")


class ExtractiveSummarizerConfig(BertConfig):
    """``BertConfig`` plus the summarization head's settings."""

    model_type = "spanbert_extsum"

    span_representation: str = "endpoint"  # one of SPAN_REPRESENTATIONS
    endpoint_combination: str = "x,y"  # see spanbert.tasks.span_repr.EndpointSpanExtractor
    use_cross_attention: bool = True
    cross_attention_heads: int = 4
    max_segment_length: int = 512  # tokens per encoder segment, [CLS] and [SEP] included
    max_sentence_positions: int = 64  # sentence-index embeddings (later sentences share the last); 0: none
    pos_weight: float = 1.0  # BCE weight of positive sentences


@dataclass
class ExtractiveSummarizerOutput(ModelOutput):
    """``logits`` (B, N): one score per sentence (0 at padding); ``loss`` when labels were given."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class BertForExtractiveSummarization(BertPreTrainedModel):
    """Scores every sentence of a document (batch layout: :func:`~spanbert.tasks.summarize.features.collate_documents`)."""

    config_class = ExtractiveSummarizerConfig
    base_model_prefix = "bert"

    def __init__(self, config: ExtractiveSummarizerConfig):
        super().__init__(config)
        if config.span_representation not in SPAN_REPRESENTATIONS:
            raise ConfigError(f"span_representation: {config.span_representation!r} is not one of {', '.join(SPAN_REPRESENTATIONS)}")
        hidden = config.hidden_size
        if config.use_cross_attention and hidden % config.cross_attention_heads:
            raise ConfigError(f"cross_attention_heads: {config.cross_attention_heads} does not divide hidden_size {hidden}")
        self.bert = BertModel(config, add_pooling_layer=False)
        kinds = config.span_representation.split("+")
        self.endpoint = EndpointSpanExtractor(hidden, config.endpoint_combination) if "endpoint" in kinds else None
        self.self_attentive = SelfAttentiveSpanExtractor(hidden) if "self_attentive" in kinds else None
        span_dim = sum(e.get_output_dim() for e in (self.endpoint, self.self_attentive) if e is not None)
        self.span_projection = nn.Linear(span_dim, hidden)
        self.sentence_position = (nn.Embedding(config.max_sentence_positions, hidden)
                                  if config.max_sentence_positions > 0 else None)
        self.cross_attention = (SpanTokenCrossAttention(hidden, hidden, config.cross_attention_heads,
                                                        config.attention_probs_dropout_prob)
                                if config.use_cross_attention else None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.scorer_dense = nn.Linear(hidden, hidden)
        self.scorer_act = ACT2FN[config.hidden_act]
        self.scorer_out = nn.Linear(hidden, 1)
        self.post_init()

    def sentence_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_index: torch.Tensor,
                        token_mask: torch.Tensor, sentence_spans: torch.Tensor, sentence_mask: torch.Tensor) -> torch.Tensor:
        """(B, N) sentence scores; padding sentences get 0."""
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (S, L, H)
        flat = states.reshape(-1, states.size(-1))  # (S*L, H)
        doc = flat[token_index]  # (B, T, H): each document's sentence tokens, segments concatenated
        doc = doc * token_mask.unsqueeze(-1).to(doc.dtype)  # padding positions read as zeros
        parts = []
        if self.endpoint is not None:
            parts.append(self.endpoint(doc, sentence_spans, sentence_mask))  # (B, N, 2H)
        if self.self_attentive is not None:
            parts.append(self.self_attentive(doc, sentence_spans, sentence_mask, token_mask))  # (B, N, H)
        spans = self.span_projection(torch.cat(parts, dim=-1))  # (B, N, H)
        if self.sentence_position is not None:
            index = torch.arange(spans.size(1), device=spans.device).clamp(max=self.sentence_position.num_embeddings - 1)
            spans = spans + self.sentence_position(index)  # (N, H) broadcast over B
        if self.cross_attention is not None:
            spans = self.cross_attention(spans, doc, token_mask, sentence_mask)  # (B, N, H)
        hidden = self.scorer_act(self.scorer_dense(self.dropout(spans)))
        logits = self.scorer_out(self.dropout(hidden)).squeeze(-1)  # (B, N)
        return logits * sentence_mask.to(logits.dtype)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_index: torch.Tensor,
                token_mask: torch.Tensor, sentence_spans: torch.Tensor, sentence_mask: torch.Tensor,
                labels: torch.Tensor | None = None, **kwargs) -> ExtractiveSummarizerOutput:
        logits = self.sentence_logits(input_ids, attention_mask, token_index, token_mask, sentence_spans, sentence_mask)
        loss = None
        if labels is not None:
            weight = torch.tensor(self.config.pos_weight, device=logits.device, dtype=torch.float)
            per_sentence = nn.functional.binary_cross_entropy_with_logits(
                logits.float(), labels.float(), pos_weight=weight, reduction="none")  # (B, N)
            mask = sentence_mask.to(per_sentence.dtype)
            loss = (per_sentence * mask).sum() / mask.sum().clamp(min=1)
        return ExtractiveSummarizerOutput(loss=loss, logits=logits)


register_auto(BertForExtractiveSummarization)


def load_summarizer(path: str | os.PathLike, dtype=None, *, trained: bool = False, **fields):
    """``(model, tokenizer)``: a saved summarizer as it is, or a fresh head on any BERT-family
    encoder (``fields`` set the head's config, e.g. ``max_segment_length``).
    ``trained``: the folder must be one fine-tuned for this task (prediction, evaluation)."""
    from spanbert.core.checkpoints import load_head_model

    return load_head_model(path, BertForExtractiveSummarization, "summarization", dtype=dtype, trained=trained, **fields)


__all__ = ["ExtractiveSummarizerConfig", "BertForExtractiveSummarization", "ExtractiveSummarizerOutput",
           "load_summarizer", "SPAN_REPRESENTATIONS"]
