"""Sentences of words -> model inputs: subword windows, word-boundary spans, training batches.

Each sentence is tokenised from its words (``is_split_into_words``); a fast tokenizer's
``word_ids`` give each word's first and last subword. A word the tokenizer turns into nothing
(e.g. a lone control or combining character) is encoded as the unknown token, so every word
can start and end a span.

**Long sentences**: a sentence whose subwords do not fit in ``max_seq_length - 2`` tokens is
cut into consecutive windows of whole words, each as full as it can be (no overlap); each
window is encoded as ``[CLS] words [SEP]`` on its own. Spans never cross a window boundary:
a gold entity cut by one is left out of training (counted in :class:`EncodedCorpus`) and
cannot be predicted. A single word longer than a window keeps only its first subwords.

Spans are enumerated on word boundaries (``spanbert.tasks.span_repr.enumerate_spans`` with the word
starts): start = the first subword of the start word, end = the last subword of the end word,
at most ``max_span_width`` words. Training uses the gold spans plus negative spans sampled per
window (``spanbert.tasks.span_repr.sample_negative_spans``), seeded by (seed, window, draw).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from spanbert.core.errors import ConfigError
from spanbert.tasks.ner.settings import WindowConfig
from spanbert.tasks.span_repr import enumerate_spans, sample_negative_spans

IGNORE = -100  # span label of padding spans in a batch


@dataclass
class Window:
    """One encoder input: a run of whole words of one sentence.

    ``word_starts[w]``/``word_ends[w]``: the first/last subword position (in ``input_ids``,
    [CLS] = 0) of the window's word ``w``; ``first_word``: the sentence index of word 0.
    ``gold``: ``(start_word, end_word, label_id)`` spans inside the window (window word indices).
    """

    sentence: int
    first_word: int
    input_ids: np.ndarray  # (tokens,)
    word_starts: np.ndarray  # (words,)
    word_ends: np.ndarray  # (words,)
    gold: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def num_words(self) -> int:
        return len(self.word_starts)


@dataclass
class EncodedCorpus:
    """Windows of a list of sentences, and what could not be kept."""

    windows: list[Window]
    gold_cut_by_windows: int = 0  # gold entities that cross a window boundary
    long_sentences: int = 0  # sentences cut into more than one window

    def lengths(self) -> np.ndarray:
        return np.array([len(w.input_ids) for w in self.windows])

    def __len__(self) -> int:
        return len(self.windows)


def word_subwords(tokenizer, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """For each sentence, the subword ids of each of its words (never empty: [UNK] at worst)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("tokenizer: span NER needs a fast tokenizer (word_ids)")
    unk = tokenizer.unk_token_id
    out: list[list[list[int]]] = []
    batch = 512
    for b in range(0, len(sentences), batch):
        chunk = [list(s) for s in sentences[b : b + batch]]
        enc = tokenizer(chunk, is_split_into_words=True, add_special_tokens=False)
        for i, words in enumerate(chunk):
            pieces: list[list[int]] = [[] for _ in words]
            for tok, w in zip(enc["input_ids"][i], enc.word_ids(i)):
                if w is not None:
                    pieces[w].append(tok)
            for w, p in enumerate(pieces):
                if not p:
                    p.append(unk)
            out.append(pieces)
    return out


def encode_sentences(tokenizer, sentences: Sequence[Sequence[str]], config: WindowConfig = WindowConfig(),
                     gold: Sequence[Sequence[tuple[int, int, int]]] | None = None) -> EncodedCorpus:
    """Cut ``sentences`` (lists of words) into windows of whole words (see the module doc).

    ``gold[i]``: sentence i's ``(start_word, end_word, label_id)`` spans, kept in the windows
    that contain them whole.
    """
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ConfigError("tokenizer: needs [CLS] and [SEP] tokens")
    capacity = config.max_seq_length - 2
    windows: list[Window] = []
    cut = long = 0
    for s, pieces in enumerate(word_subwords(tokenizer, sentences)):
        groups: list[tuple[int, int]] = []  # [first_word, last_word + 1) of each window
        start, used = 0, 0
        for w, p in enumerate(pieces):
            if used + len(p) > capacity and w > start:
                groups.append((start, w))
                start, used = w, 0
            used += len(p)
        groups.append((start, len(pieces)))
        long += len(groups) > 1
        spans = list(gold[s]) if gold is not None else []
        for first, stop in groups:
            ids, starts, ends = [cls], [], []
            for p in pieces[first:stop]:
                room = capacity - (len(ids) - 1)
                starts.append(len(ids))
                ids.extend(p[: max(room, 1)] if room < len(p) else p)
                ends.append(len(ids) - 1)
            ids = ids[: capacity + 1] + [sep]
            inside = [(a - first, b - first, lab) for a, b, lab in spans if first <= a and b < stop]
            windows.append(Window(s, first, np.asarray(ids, dtype=np.int64), np.asarray(starts, dtype=np.int64),
                                  np.asarray(ends, dtype=np.int64), inside))
        if len(groups) > 1:
            cut += sum(1 for a, b, _ in spans if not any(f <= a and b < t for f, t in groups))
    return EncodedCorpus(windows, cut, long)


def window_spans(window: Window, max_span_width: int) -> tuple[np.ndarray, np.ndarray]:
    """All candidate spans of a window: ``(word_spans, token_spans)``, both (num_spans, 2), aligned.

    Token spans come from ``enumerate_spans`` over the subwords with the word starts, so each
    starts at its first word's first subword and ends at its last word's last subword.
    """
    words = enumerate_spans(window.num_words, max_span_width)
    tokens = enumerate_spans(int(window.word_ends[-1]) + 1, max_span_width, starts=window.word_starts.tolist())
    return words, tokens


def negatives_for(window: Window, negative_ratio: float) -> int | None:
    """How many negative spans to sample for a window: ``ceil(ratio x words)``; ``None`` = all."""
    if negative_ratio <= 0:
        return None
    return max(1, math.ceil(negative_ratio * window.num_words))


class TrainingCollator:
    """``collate(indices) -> batch`` for :func:`spanbert.tasks.finetune.finetune`: gold spans plus
    sampled negatives (label 0 = ``O``) of each window. Each call draws fresh negatives,
    reproducibly: the draw depends on (seed, window index, how often the window was drawn)."""

    def __init__(self, corpus: EncodedCorpus, max_span_width: int, negative_ratio: float, pad_token_id: int,
                 seed: int = 0):
        self.corpus, self.max_span_width, self.negative_ratio = corpus, max_span_width, negative_ratio
        self.pad, self.seed = pad_token_id, seed
        self.draws = np.zeros(len(corpus), dtype=np.int64)

    def state_dict(self) -> dict:
        """How often each window was drawn (what decides the next draws): saved in fine-tuning checkpoints."""
        return {"draws": self.draws.tolist()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (a resumed fine-tuning draws what the uninterrupted run would)."""
        self.draws = np.asarray(state["draws"], dtype=np.int64)

    def spans_of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Token spans (n, 2) and labels (n,) of window ``index`` for its next draw."""
        window = self.corpus.windows[index]
        words, tokens = window_spans(window, self.max_span_width)
        gold = {(a, b): lab for a, b, lab in window.gold if b - a + 1 <= self.max_span_width}
        labels = np.array([gold.get((int(a), int(b)), 0) for a, b in words], dtype=np.int64)
        count = negatives_for(window, self.negative_ratio)
        if count is not None:
            rng = np.random.default_rng([self.seed, index, int(self.draws[index])])
            self.draws[index] += 1
            positive = words[labels > 0]
            negative = sample_negative_spans(words, positive, rng, count=count)
            chosen = np.concatenate([positive, negative])
            tokens = np.stack([window.word_starts[chosen[:, 0]], window.word_ends[chosen[:, 1]]], axis=1)
            labels = np.concatenate([labels[labels > 0], np.zeros(len(negative), dtype=np.int64)])
        return tokens, labels

    def __call__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        windows = [self.corpus.windows[i] for i in indices]
        spans = [self.spans_of(i) for i in indices]
        batch = pad_inputs([w.input_ids for w in windows], self.pad)
        batch.update(pad_spans([s for s, _ in spans], [lab for _, lab in spans]))
        return batch


def pad_inputs(input_ids: Sequence[np.ndarray], pad_token_id: int) -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` (batch, longest) from unpadded id arrays."""
    longest = max(len(x) for x in input_ids)
    ids = np.full((len(input_ids), longest), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(input_ids), longest), dtype=np.int64)
    for i, x in enumerate(input_ids):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def pad_spans(spans: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """``spans`` (batch, most, 2), ``span_mask`` (batch, most) and, with labels, ``span_labels``
    (batch, most; ``IGNORE`` on padding). Padding spans are ``[0, 0]``."""
    most = max(1, max(len(s) for s in spans))
    out = np.zeros((len(spans), most, 2), dtype=np.int64)
    mask = np.zeros((len(spans), most), dtype=np.int64)
    for i, s in enumerate(spans):
        out[i, : len(s)] = s
        mask[i, : len(s)] = 1
    batch = {"spans": torch.from_numpy(out), "span_mask": torch.from_numpy(mask)}
    if labels is not None:
        lab = np.full((len(spans), most), IGNORE, dtype=np.int64)
        for i, x in enumerate(labels):
            lab[i, : len(x)] = x
        batch["span_labels"] = torch.from_numpy(lab)
    return batch


__all__ = ["Window", "EncodedCorpus", "encode_sentences", "word_subwords", "window_spans",
           "negatives_for", "TrainingCollator", "pad_inputs", "pad_spans", "IGNORE"]
