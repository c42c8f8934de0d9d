"""Coreference features: a :class:`~spanbert.tasks.coref.conll.CorefDocument` -> subword segments,
candidate spans and gold clusters in subword indices; and raw text -> a document to predict.

* The document's words are tokenized once with the fast tokenizer (``word_ids``); a word
  without subwords becomes ``[UNK]``.
* The subwords are cut into independent, non-overlapping segments of at most
  ``max_segment_length`` tokens including ``[CLS]``/``[SEP]`` (384 for base models, as in the
  SpanBERT coreference setup): whole sentences are packed greedily; a sentence longer than a
  segment is cut at word boundaries (a single word longer than a segment keeps only its
  first subwords).
* Token positions below are *flat* indices into the concatenated segment contents (specials
  left out), which is how the model concatenates the encoder's token states.
* Candidate spans start at a word's first subword and end at a word's last subword, lie
  inside one sentence, and are at most ``max_span_width`` **subword tokens** wide (30, the
  paper's limit, counted in subwords as in the original code).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spanbert.core.errors import ConfigError
from spanbert.core.text import ABBREVIATIONS, split_sentences, split_words
from spanbert.tasks.coref.conll import CorefDocument, Span

GENRES = ("bc", "bn", "mz", "nw", "pt", "tc", "wb")  # OntoNotes genres; anything else is genre 0


@dataclass(frozen=True)
class SegmentConfig:
    """How a document becomes segments and candidate spans."""

    max_segment_length: int = 384  # tokens per segment, [CLS] and [SEP] included
    max_span_width: int = 30  # widest candidate span, in subword tokens

    def __post_init__(self) -> None:
        if self.max_segment_length < 3:
            raise ConfigError(f"max_segment_length: must be >= 3 ([CLS] x [SEP]), got {self.max_segment_length}")
        if self.max_span_width < 1:
            raise ConfigError(f"max_span_width: must be >= 1, got {self.max_span_width}")


@dataclass
class EncodedDocument:
    """One document ready for the model (flat token indices, see the module doc)."""

    name: str
    segments: list[np.ndarray]  # each: [CLS] subwords [SEP] token ids
    word_first: np.ndarray  # (num_words,) flat index of each word's first subword
    word_last: np.ndarray  # (num_words,) flat index of each word's last subword
    candidate_words: np.ndarray  # (num_spans, 2) inclusive word spans
    candidate_spans: np.ndarray  # (num_spans, 2) inclusive flat subword spans
    span_cluster_ids: np.ndarray  # (num_spans,) 1 + gold cluster index, 0 = not a gold mention
    speaker_ids: np.ndarray  # (num_tokens,) speaker index per flat token (0 when unknown)
    genre_id: int = 0
    gold_clusters: list[list[Span]] = field(default_factory=list)  # subword spans
    gold_not_candidates: int = 0  # gold mentions that are no candidate (too wide, crossing a sentence)

    @property
    def num_words(self) -> int:
        return len(self.word_first)

    @property
    def num_tokens(self) -> int:
        return int(sum(len(s) - 2 for s in self.segments))

    def word_span(self, start: int, end: int) -> Span:
        """Inclusive word span -> inclusive flat subword span."""
        return int(self.word_first[start]), int(self.word_last[end])


def _word_pieces(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Subword ids of each word (never empty: [UNK] at worst)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("tokenizer: coreference needs a fast tokenizer (word_ids)")
    enc = tokenizer(list(words), is_split_into_words=True, add_special_tokens=False, verbose=False)
    pieces: list[list[int]] = [[] for _ in words]
    for tok, w in zip(enc["input_ids"], enc.word_ids()):
        if w is not None:
            pieces[w].append(tok)
    for p in pieces:
        if not p:
            p.append(tokenizer.unk_token_id)
    return pieces


def _segment_word_ranges(lengths: Sequence[int], sentences: Sequence[tuple[int, int]], capacity: int) -> list[tuple[int, int]]:
    """``[start, end)`` word ranges of the segments: whole sentences packed greedily, a
    sentence longer than ``capacity`` subwords cut at word boundaries."""
    ranges: list[tuple[int, int]] = []
    start, used = 0, 0
    for s_start, s_end in sentences:
        size = sum(lengths[s_start:s_end])
        if used and used + size > capacity:  # the sentence does not fit: close the segment
            ranges.append((start, s_start))
            start, used = s_start, 0
        if size <= capacity - used:
            used += size
            continue
        for w in range(s_start, s_end):  # too long for one segment: cut at words
            if used and used + lengths[w] > capacity:
                ranges.append((start, w))
                start, used = w, 0
            used += min(lengths[w], capacity)
    if used:
        ranges.append((start, len(lengths)))
    return ranges


def _document_sentences(doc: CorefDocument) -> list[tuple[int, int]]:
    return list(doc.sentences) if doc.sentences else [(0, len(doc.words))]


def candidate_word_spans(word_first: np.ndarray, word_last: np.ndarray, sentences: Sequence[tuple[int, int]],
                         max_span_width: int) -> np.ndarray:
    """All inclusive word spans inside one sentence whose subword width is <= ``max_span_width``:
    (num_spans, 2), ordered by start word, then end word."""
    out = []
    for s_start, s_end in sentences:
        for i in range(s_start, s_end):
            for j in range(i, s_end):
                if word_last[j] - word_first[i] + 1 > max_span_width:
                    break
                out.append((i, j))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def encode_document(tokenizer, doc: CorefDocument, config: SegmentConfig = SegmentConfig()) -> EncodedDocument:
    """Segments, word <-> subword maps, candidate spans and gold clusters of one document."""
    if not doc.words:
        raise ConfigError(f"document {doc.name!r}: no words")
    capacity = config.max_segment_length - 2
    pieces = [p[:capacity] for p in _word_pieces(tokenizer, doc.words)]
    lengths = [len(p) for p in pieces]
    sentences = _document_sentences(doc)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    segments = []
    for start, end in _segment_word_ranges(lengths, sentences, capacity):
        ids = [t for w in range(start, end) for t in pieces[w]]
        segments.append(np.asarray([cls, *ids, sep], dtype=np.int64))
    word_last = np.cumsum(lengths) - 1
    word_first = word_last - np.asarray(lengths) + 1
    words = candidate_word_spans(word_first, word_last, sentences, config.max_span_width)
    spans = np.stack([word_first[words[:, 0]], word_last[words[:, 1]]], axis=1) if len(words) else words
    index = {(int(a), int(b)): k for k, (a, b) in enumerate(words)}
    cluster_ids = np.zeros(len(words), dtype=np.int64)
    missing = 0
    gold_clusters = []
    for c, cluster in enumerate(doc.clusters):
        gold_clusters.append([(int(word_first[s]), int(word_last[e])) for s, e in cluster])
        for mention in cluster:
            k = index.get(mention)
            if k is None:
                missing += 1
            else:
                cluster_ids[k] = c + 1
    speaker_names: dict[str, int] = {}
    speaker_ids = np.zeros(int(word_last[-1]) + 1, dtype=np.int64)
    if doc.speakers is not None:
        for w, name in enumerate(doc.speakers):
            speaker_ids[word_first[w] : word_last[w] + 1] = speaker_names.setdefault(name, len(speaker_names) + 1)
    genre = doc.name.lstrip("(")[:2]
    return EncodedDocument(doc.name, segments, word_first, word_last, words, spans, cluster_ids, speaker_ids,
                           GENRES.index(genre) + 1 if genre in GENRES else 0, gold_clusters, missing)


def segment_window(doc: EncodedDocument, first: int, count: int) -> EncodedDocument:
    """The part of ``doc`` in segments ``first .. first + count - 1``: its words, and the
    candidate spans (with their gold cluster ids) that lie wholly inside, re-indexed from 0.
    Training on long documents reads such a window, as the original code does."""
    ends = np.cumsum([0] + [len(s) - 2 for s in doc.segments])
    t0, t1 = int(ends[first]), int(ends[min(first + count, len(doc.segments))])
    inside_words = np.flatnonzero((doc.word_first >= t0) & (doc.word_last < t1))  # segments never cut a word
    w0 = int(inside_words[0])
    keep = (doc.candidate_spans[:, 0] >= t0) & (doc.candidate_spans[:, 1] < t1)
    return EncodedDocument(doc.name, doc.segments[first : first + count], doc.word_first[inside_words] - t0,
                           doc.word_last[inside_words] - t0, doc.candidate_words[keep] - w0, doc.candidate_spans[keep] - t0,
                           doc.span_cluster_ids[keep], doc.speaker_ids[t0:t1], doc.genre_id)


class TrainingCollator:
    """``collate(indices)`` for :func:`spanbert.tasks.finetune.finetune`: one document per micro-batch, cut to
    a random run of ``max_segments`` consecutive segments when longer (None: whole documents).
    The windows depend only on ``seed`` and the order of calls."""

    def __init__(self, documents: Sequence[EncodedDocument], pad_token_id: int, max_segments: int | None = None,
                 seed: int = 0):
        if max_segments is not None and max_segments < 1:
            raise ConfigError(f"max_training_segments: must be >= 1, got {max_segments}")
        self.documents, self.pad, self.max_segments = documents, pad_token_id, max_segments
        self.rng = np.random.default_rng([seed, 0xC0])

    def state_dict(self) -> dict:
        """The window generator's state (JSON-able): saved in fine-tuning checkpoints."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (a resumed fine-tuning cuts the windows the uninterrupted run would)."""
        self.rng.bit_generator.state = state["rng"]

    def lengths(self) -> list[int]:
        """Tokens each step reads at most, per document."""
        return [e.num_tokens if self.max_segments is None else
                int(sum(len(s) - 2 for s in e.segments[: self.max_segments])) for e in self.documents]

    def __call__(self, indices: Sequence[int]) -> dict:
        if len(indices) != 1:
            raise ConfigError(f"--batch-size: coreference trains one document per micro-batch, so it must be --grad-accum "
                              f"x processes (here micro-batches of {len(indices)})")
        doc = self.documents[indices[0]]
        if self.max_segments is not None and len(doc.segments) > self.max_segments:
            first = int(self.rng.integers(0, len(doc.segments) - self.max_segments + 1))
            doc = segment_window(doc, first, self.max_segments)
        return document_tensors(doc, self.pad)


def document_tensors(doc: EncodedDocument, pad_token_id: int, with_gold: bool = True) -> dict:
    """The model's inputs for one document (see :class:`spanbert.tasks.coref.model.BertForCoreference`):
    segments padded to the longest, ``content_mask`` on real subwords, flat spans."""
    import torch

    longest = max(len(s) for s in doc.segments)
    ids = torch.full((len(doc.segments), longest), pad_token_id, dtype=torch.long)  # (segments, seq)
    attention = torch.zeros_like(ids)
    for i, s in enumerate(doc.segments):
        ids[i, : len(s)] = torch.from_numpy(s)
        attention[i, : len(s)] = 1
    content = attention.clone()
    content[:, 0] = 0  # [CLS]
    content[torch.arange(len(doc.segments)), attention.sum(1) - 1] = 0  # [SEP]
    batch = {"input_ids": ids, "attention_mask": attention, "content_mask": content,
             "spans": torch.from_numpy(doc.candidate_spans.copy()), "num_words": torch.tensor(doc.num_words),
             "speaker_ids": torch.from_numpy(doc.speaker_ids.copy()), "genre_id": torch.tensor(doc.genre_id)}
    if with_gold:
        batch["span_cluster_ids"] = torch.from_numpy(doc.span_cluster_ids.copy())
    return batch


# -- raw text -------------------------------------------------------------------------------------

@dataclass
class TextDocument:
    """Raw text as a document: ``document.words`` with their ``(start, end)`` character offsets."""

    text: str
    document: CorefDocument
    offsets: list[tuple[int, int]]


def _keeps_period(word: str) -> bool:
    """Whether a period right after ``word`` belongs to it: a title or other abbreviation
    (:data:`spanbert.core.text.ABBREVIATIONS`: Mr, Dr, St, ...) or an initial."""
    return (len(word) == 1 and word.isalpha()) or word.lower() in ABBREVIATIONS


def text_document(text: str, name: str = "text") -> TextDocument:
    """Split raw text into sentences (:func:`spanbert.core.text.split_sentences`: a regex
    rule set for edited prose) and words (:func:`spanbert.core.text.split_words`, with a
    possessive ``'s``/``’s`` split off as its own word and the period of an abbreviation or
    initial kept with it, as in the PTB-tokenized LitBank and OntoNotes the models learn from:
    ``Mr. Darcy's friend`` -> ``Mr.``, ``Darcy``, ``'s``, ``friend``); an empty text is a
    ConfigError."""
    words: list[str] = []
    offsets: list[tuple[int, int]] = []
    sentences: list[tuple[int, int]] = []
    for s_start, s_end in split_sentences(text):
        first = len(words)
        for word, a, b in split_words(text[s_start:s_end]):
            a, b = s_start + a, s_start + b  # offsets into the whole text
            if word == "." and len(words) > first and offsets[-1][1] == a and _keeps_period(words[-1]):
                words[-1] += "."  # "Mr" + "." -> "Mr." (an abbreviation or an initial)
                offsets[-1] = (offsets[-1][0], b)
            elif len(word) > 2 and word[-2:] in ("'s", "’s", "'S", "’S"):
                words += [word[:-2], word[-2:]]
                offsets += [(a, b - 2), (b - 2, b)]
            else:
                words.append(word)
                offsets.append((a, b))
        if len(words) > first:
            sentences.append((first, len(words)))
    if not words:
        raise ConfigError(f"{name}: no words to resolve (empty text)")
    return TextDocument(text, CorefDocument(re.sub(r"\s+", "_", name), words, [], sentences, None), offsets)


__all__ = ["SegmentConfig", "EncodedDocument", "TextDocument", "candidate_word_spans", "document_tensors", "encode_document",
           "text_document", "segment_window", "TrainingCollator", "GENRES"]
