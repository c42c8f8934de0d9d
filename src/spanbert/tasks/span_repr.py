"""Span representations over token states, for span classifiers (NER, relations, coreference).

Contract shared by every extractor (after allennlp's span extractors):

* ``hidden``: token states ``(batch, seq, hidden)``;
* ``spans``: inclusive token indices ``(batch, num_spans, 2)`` as ``[start, end]``;
* ``span_mask``: ``(batch, num_spans)``, 1 for real spans, 0 for padding spans (their output
  is zero);
* ``token_mask`` (where tokens are read): ``(batch, seq)``, 1 for real tokens;
* output ``(batch, num_spans, output_dim)``; ``output_dim`` lets heads size themselves.

Memory: the pooling extractors (self-attentive, max-pool) read each span through a window of
``W`` token positions, ``W`` = the widest real span's width in the batch (clipped to the
sequence): their largest intermediate is ``(batch, num_spans, W, hidden)``, never
``(num_spans, seq)`` -- 2,000 spans of <= 10 tokens over 10,000 tokens cost 2,000 x 10 x hidden,
not 2,000 x 10,000. Reading ``W`` is one device-to-host sync per call.

Extractors: :class:`EndpointSpanExtractor` (start/end states and combinations of them, plus an
optionally bucketed width embedding), :class:`SelfAttentiveSpanExtractor` (a learned
attention-weighted sum of the span's tokens), :class:`MaxPoolSpanExtractor`, and
:class:`SpanTokenCrossAttention`, which lets a span vector read the whole sequence.
:func:`enumerate_spans` and :func:`sample_negative_spans` build the spans to classify.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from spanbert.core.errors import ConfigError

COMBINATIONS = ("x", "y", "x*y", "y-x", "x+y")  # x: start state, y: end state


def _gather(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``hidden[b, index[b, s]]``: (batch, seq, h) x (batch, spans) -> (batch, spans, h)."""
    return hidden.gather(1, index.clamp(min=0).unsqueeze(-1).expand(-1, -1, hidden.size(-1)))


def _span_windows(spans: torch.Tensor, seq_len: int, span_mask: torch.Tensor | None = None,
                  token_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each span's own tokens as a window of ``W`` positions: ``(index, inside)``, both
    (batch, spans, W). ``index`` holds token positions from the span's start (clipped into the
    sequence); ``inside`` is True where that position lies in the span, inside the sequence and,
    with ``token_mask``, on a real token. ``W`` is the widest span's width within the sequence,
    over the real spans only when ``span_mask`` is given (>= 1); padding spans read a
    possibly shorter window, but their output is zeroed anyway."""
    start = spans[..., 0].clamp(min=0)  # (batch, spans)
    end = spans[..., 1].clamp(max=seq_len - 1)
    width = end - start + 1
    if span_mask is not None:
        width = width.masked_fill(~span_mask.bool(), 0)
    w = max(int(width.max()), 1) if width.numel() else 1  # the one host sync
    index = start.unsqueeze(-1) + torch.arange(w, device=spans.device)  # (batch, spans, W)
    inside = index <= end.unsqueeze(-1)
    index = index.clamp(max=seq_len - 1)
    if token_mask is not None:
        inside = inside & _at_windows(token_mask.bool(), index)
    return index, inside


def _at_windows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, s, w]]``: (batch, seq, ...) x (batch, spans, W) -> (batch, spans, W, ...)."""
    return values[torch.arange(values.size(0), device=index.device).view(-1, 1, 1), index]


def width_bucket_of(width: int) -> int:
    """:func:`width_bucket` of one width, in plain Python (no tensor: safe on the meta device)."""
    w = max(int(width), 1)
    return w - 1 if w <= 4 else int(math.floor(math.log2(w - 1))) + 2


def width_bucket(width: torch.Tensor, num_buckets: int) -> torch.Tensor:
    """Widths 1..4 keep their own bucket (0..3), longer ones share log2-sized buckets, as in
    Lee et al.'s coreference model: 5-8 -> 4, 9-16 -> 5, ...; capped at ``num_buckets - 1``."""
    w = width.clamp(min=1)
    log_bucket = torch.floor(torch.log2((w - 1).clamp(min=1).float())).long() + 2
    return torch.where(w <= 4, w - 1, log_bucket).clamp(max=num_buckets - 1)


class SpanExtractor(nn.Module):
    """Base class: ``forward(hidden, spans, span_mask=None, token_mask=None)`` -> (batch, spans, output_dim)."""

    output_dim: int

    def get_output_dim(self) -> int:
        return self.output_dim


class EndpointSpanExtractor(SpanExtractor):
    """``[combination_1; combination_2; ...; width embedding]`` of the start and end states.

    ``combination`` is a comma list of ``x`` (start), ``y`` (end), ``x*y``, ``y-x``, ``x+y``.
    ``width_embedding_dim > 0`` adds a learned embedding of the span width in tokens, one per
    width up to ``max_width`` or, with ``bucket_widths``, per log-sized bucket.
    """

    def __init__(self, input_dim: int, combination: str = "x,y", width_embedding_dim: int = 0,
                 max_width: int = 30, bucket_widths: bool = False):
        super().__init__()
        self.parts = [c.strip() for c in combination.split(",") if c.strip()]
        unknown = [c for c in self.parts if c not in COMBINATIONS]
        if unknown or not self.parts:
            raise ConfigError(f"combination: unknown part(s) {unknown or combination!r}; use {', '.join(COMBINATIONS)}")
        self.bucket_widths = bucket_widths
        self.num_widths = width_bucket_of(max_width) + 1 if bucket_widths else max_width
        self.width_embedding = nn.Embedding(self.num_widths, width_embedding_dim) if width_embedding_dim > 0 else None
        self.output_dim = input_dim * len(self.parts) + max(width_embedding_dim, 0)

    def forward(self, hidden: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor | None = None,
                token_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = _gather(hidden, spans[..., 0])  # (batch, spans, h)
        y = _gather(hidden, spans[..., 1])
        table = {"x": lambda: x, "y": lambda: y, "x*y": lambda: x * y, "y-x": lambda: y - x, "x+y": lambda: x + y}
        out = [table[p]() for p in self.parts]
        if self.width_embedding is not None:
            width = spans[..., 1] - spans[..., 0] + 1
            index = width_bucket(width, self.num_widths) if self.bucket_widths else (width - 1).clamp(0, self.num_widths - 1)
            out.append(self.width_embedding(index))
        result = torch.cat(out, dim=-1)
        return result if span_mask is None else result * span_mask.unsqueeze(-1).to(result.dtype)


class SelfAttentiveSpanExtractor(SpanExtractor):
    """Softmax-weighted sum of the span's token states, weights from a learned linear scorer
    (Lee et al. 2017): ``sum_t softmax_t(w . h_t) h_t`` over the tokens of the span (the softmax
    in float32 at least; zeros for a span with no real token). Reads only each span's window
    (see the module doc)."""

    def __init__(self, input_dim: int):
        super().__init__()
        self.scorer = nn.Linear(input_dim, 1)
        self.output_dim = input_dim

    def forward(self, hidden: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor | None = None,
                token_mask: torch.Tensor | None = None) -> torch.Tensor:
        index, inside = _span_windows(spans, hidden.size(1), span_mask, token_mask)  # (batch, spans, W) both
        scores = self.scorer(hidden).squeeze(-1)  # (batch, seq)
        logits = _at_windows(scores, index).masked_fill(~inside, float("-inf"))  # (batch, spans, W)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # the softmax in float32 at least
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0).to(hidden.dtype)  # empty (padding) spans -> 0
        out = torch.einsum("bsw,bswh->bsh", weights, _at_windows(hidden, index))  # (batch, spans, h)
        return out if span_mask is None else out * span_mask.unsqueeze(-1).to(out.dtype)


class MaxPoolSpanExtractor(SpanExtractor):
    """Element-wise maximum of the span's token states (zeros for a span with no real token).
    Reads only each span's window (see the module doc)."""

    def __init__(self, input_dim: int):
        super().__init__()
        self.output_dim = input_dim

    def forward(self, hidden: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor | None = None,
                token_mask: torch.Tensor | None = None) -> torch.Tensor:
        index, inside = _span_windows(spans, hidden.size(1), span_mask, token_mask)  # (batch, spans, W) both
        values = _at_windows(hidden, index).masked_fill(~inside.unsqueeze(-1), float("-inf"))  # (batch, spans, W, h)
        out = values.amax(dim=2)
        out = torch.where(torch.isinf(out), torch.zeros_like(out), out)
        return out if span_mask is None else out * span_mask.unsqueeze(-1).to(out.dtype)


class SpanTokenCrossAttention(nn.Module):
    """Span vectors attend over all token states and read context outside the span.

    ``span_vectors (batch, spans, span_dim)`` are projected to queries, the tokens to keys and
    values (multi-head, padding tokens masked), and the result is added back with a residual
    connection and LayerNorm: ``LayerNorm(s + W_o attn(W_q s, W_k h, W_v h))``.
    """

    def __init__(self, span_dim: int, token_dim: int, num_heads: int = 4, dropout: float = 0.1):
        super().__init__()
        if span_dim % num_heads:
            raise ConfigError(f"num_heads: {num_heads} does not divide span_dim {span_dim}")
        self.attention = nn.MultiheadAttention(span_dim, num_heads, dropout=dropout, kdim=token_dim, vdim=token_dim,
                                               batch_first=True)
        self.norm = nn.LayerNorm(span_dim)
        self.output_dim = span_dim

    def get_output_dim(self) -> int:
        return self.output_dim

    def forward(self, span_vectors: torch.Tensor, hidden: torch.Tensor, token_mask: torch.Tensor | None = None,
                span_mask: torch.Tensor | None = None) -> torch.Tensor:
        padding = None if token_mask is None else ~token_mask.bool()  # (batch, seq): True = ignore
        read, _ = self.attention(span_vectors, hidden, hidden, key_padding_mask=padding, need_weights=False)
        out = self.norm(span_vectors + read)  # (batch, spans, span_dim)
        return out if span_mask is None else out * span_mask.unsqueeze(-1).to(out.dtype)


def enumerate_spans(num_tokens: int, max_width: int, offset: int = 0, starts: Sequence[int] | None = None) -> np.ndarray:
    """All inclusive ``[start, end]`` spans of at most ``max_width`` tokens: (num_spans, 2).

    Ordered by start, then end. ``offset`` shifts the indices (e.g. past ``[CLS]``); with
    ``starts`` (sorted word-start token positions) spans begin and end on word boundaries.
    """
    if max_width < 1:
        raise ConfigError(f"max_width: must be >= 1, got {max_width}")
    if starts is None:
        s = np.repeat(np.arange(num_tokens), max_width)
        e = s + np.tile(np.arange(max_width), num_tokens)
        keep = e < num_tokens
        return np.stack([s[keep], e[keep]], axis=1) + offset
    words = list(starts) + [num_tokens]
    out = [(words[i], words[j + 1] - 1) for i in range(len(words) - 1)
           for j in range(i, min(i + max_width, len(words) - 1))]
    return np.asarray(out, dtype=np.int64).reshape(-1, 2) + offset


def sample_negative_spans(candidates: np.ndarray, gold: np.ndarray, rng: np.random.Generator, *,
                          count: int | None = None, ratio: float | None = None) -> np.ndarray:
    """Non-gold spans drawn without replacement from ``candidates`` (num, 2): a fixed ``count``
    or ``ratio`` x the number of gold spans (at least 1 when there is any candidate)."""
    if (count is None) == (ratio is None):
        raise ConfigError("sample_negative_spans: give exactly one of count or ratio")
    gold_set = {tuple(map(int, g)) for g in np.asarray(gold).reshape(-1, 2)}
    pool = np.array([c for c in candidates if tuple(map(int, c)) not in gold_set], dtype=np.int64).reshape(-1, 2)
    k = count if count is not None else max(1, math.ceil(ratio * len(gold_set)))
    k = min(k, len(pool))
    return pool[np.sort(rng.choice(len(pool), size=k, replace=False))] if k else pool[:0]
