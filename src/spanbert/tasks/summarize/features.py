"""Documents -> encoder segments of whole sentences -> padded batches for the summarizer.

A document's sentences are tokenised one by one (no special tokens) and packed, whole and in
order, into segments ``[CLS] s_i ... s_j [SEP]`` of at most ``max_segment_length`` tokens; a
sentence longer than a segment alone keeps its first ``max_segment_length - 2`` tokens. Each
segment is encoded independently; the model concatenates the segments' sentence tokens (not
their ``[CLS]``/``[SEP]``) into one document sequence, in which sentence ``k`` is the inclusive
span ``sentence_spans[k]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spanbert.core.errors import ConfigError


@dataclass
class DocumentFeatures:
    """One document ready for the model."""

    segments: list[list[int]]  # token ids per segment, [CLS] ... [SEP]
    token_positions: np.ndarray  # (doc_tokens, 2): (segment, position in segment) of each document token
    sentence_spans: np.ndarray  # (num_sentences, 2): inclusive [first, last] document-token index
    token_offsets: np.ndarray  # (doc_tokens, 3): (sentence, char start, char end in that sentence)
    labels: np.ndarray | None = None  # (num_sentences,) 0/1

    @property
    def num_tokens(self) -> int:
        return len(self.token_positions)


def encode_document(sentences: Sequence[str], tokenizer, max_segment_length: int,
                    labels: Sequence[int] | None = None) -> DocumentFeatures:
    """Tokenise and pack one document (see the module doc). A sentence the tokenizer turns into
    no tokens at all (e.g. only control characters) becomes one ``[UNK]``, so every sentence is
    a span."""
    if max_segment_length < 3:
        raise ConfigError(f"max_segment_length: must be >= 3, got {max_segment_length}")
    capacity = max_segment_length - 2
    cls, sep, unk = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id
    enc = tokenizer(list(sentences), add_special_tokens=False, return_offsets_mapping=True)
    segments: list[list[int]] = []
    positions, spans, offsets = [], [], []
    current: list[int] = []
    for k, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        ids, offs = list(ids[:capacity]), list(offs[:capacity])
        if not ids:
            ids, offs = [unk], [(0, len(sentences[k]))]
        if current and len(current) + len(ids) > capacity:
            segments.append([cls, *current, sep])
            current = []
        first = len(positions)
        for j, (tok, off) in enumerate(zip(ids, offs)):
            positions.append((len(segments), 1 + len(current) + j))  # +1: after [CLS]
            offsets.append((k, off[0], off[1]))
        current.extend(ids)
        spans.append((first, len(positions) - 1))
    if current:
        segments.append([cls, *current, sep])
    return DocumentFeatures(
        segments, np.asarray(positions, dtype=np.int64).reshape(-1, 2), np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        np.asarray(offsets, dtype=np.int64).reshape(-1, 3), None if labels is None else np.asarray(labels, dtype=np.float32),
    )


def collate_documents(docs: Sequence[DocumentFeatures], pad_token_id: int, labels: bool = False) -> dict[str, torch.Tensor]:
    """A padded batch of ``B`` documents with ``S`` segments in all:

    * ``input_ids``, ``attention_mask``: (S, L), every segment of every document;
    * ``token_index``: (B, T) row-major index into the (S * L) segment token states of each
      document token; ``token_mask`` (B, T) 1 for real document tokens (padding points at 0);
    * ``sentence_spans``: (B, N, 2) inclusive document-token spans; ``sentence_mask`` (B, N);
    * ``labels`` (B, N) float 0/1 (0 at padding) when ``labels``.
    """
    seg_len = max(len(s) for d in docs for s in d.segments)
    num_segments = sum(len(d.segments) for d in docs)
    input_ids = torch.full((num_segments, seg_len), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((num_segments, seg_len), dtype=torch.long)
    max_tokens = max(d.num_tokens for d in docs)
    max_sents = max(len(d.sentence_spans) for d in docs)
    token_index = torch.zeros((len(docs), max_tokens), dtype=torch.long)
    token_mask = torch.zeros((len(docs), max_tokens), dtype=torch.long)
    spans = torch.zeros((len(docs), max_sents, 2), dtype=torch.long)
    sentence_mask = torch.zeros((len(docs), max_sents), dtype=torch.long)
    target = torch.zeros((len(docs), max_sents), dtype=torch.float)
    first = 0
    for b, d in enumerate(docs):
        for s, seg in enumerate(d.segments):
            input_ids[first + s, : len(seg)] = torch.tensor(seg)
            attention_mask[first + s, : len(seg)] = 1
        pos = torch.from_numpy(d.token_positions)
        token_index[b, : d.num_tokens] = (first + pos[:, 0]) * seg_len + pos[:, 1]
        token_mask[b, : d.num_tokens] = 1
        spans[b, : len(d.sentence_spans)] = torch.from_numpy(d.sentence_spans)
        sentence_mask[b, : len(d.sentence_spans)] = 1
        if labels:
            if d.labels is None:
                raise ConfigError("collate_documents: a training document has no labels")
            target[b, : len(d.labels)] = torch.from_numpy(d.labels)
        first += len(d.segments)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_index": token_index,
             "token_mask": token_mask, "sentence_spans": spans, "sentence_mask": sentence_mask}
    if labels:
        batch["labels"] = target
    return batch


__all__ = ["DocumentFeatures", "encode_document", "collate_documents"]
