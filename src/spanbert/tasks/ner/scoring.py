"""Entity-level scoring with seqeval's semantics: exact-span P/R/F1 per type, micro, macro, weighted.

An entity is ``(sentence, start, end, type)``; a predicted entity is correct when all four
match a gold one. Chunks are read off the tags by :func:`spanbert.tasks.ner.tags.tags_to_spans`
(``mode="default"``, seqeval's default = conlleval's lenient reading) or
:func:`spanbert.tasks.ner.tags.strict_spans` (``mode="strict"`` with ``scheme`` IOB2 or IOBES, as
``seqeval.metrics.classification_report(mode="strict", scheme=IOB2)``).

Numbers as seqeval computes them (with ``zero_division=0``): per type ``precision =
correct / predicted``, ``recall = correct / support`` (0 when the denominator is 0), ``f1 =
2 p r / (p + r)`` (0 when both are 0); the types are those of gold or predicted entities,
sorted. ``micro`` pools the counts; ``macro`` is the plain mean over types, ``weighted`` the
mean weighted by support (all 0 when there is no gold entity). tests/test_ner_scoring.py checks
these against ``seqeval`` on hand-made, random and real WNUT-17 sequences.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from spanbert.core.errors import ConfigError, CorpusError
from spanbert.tasks.ner.tags import Span, check_scheme, strict_spans, tags_to_spans

MODES = ("default", "strict")


def extract_spans(tags: Sequence[str], mode: str = "default", scheme: str = "IOB2") -> list[Span]:
    """The entities of one tagged sentence under ``mode`` (``default`` or ``strict``)."""
    if mode == "default":
        return tags_to_spans(tags)
    if mode == "strict":
        return strict_spans(tags, scheme)
    raise ConfigError(f"mode: {mode!r} is not one of {', '.join(MODES)}")


@dataclass(frozen=True)
class TypeScore:
    """Counts and scores of one entity type (or an average)."""

    precision: float
    recall: float
    f1: float
    support: int  # gold entities
    predicted: int = 0
    correct: int = 0

    def to_json(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support,
                "predicted": self.predicted, "correct": self.correct}


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with 0 where ``b == 0`` (seqeval's zero_division=0)."""
    out = a / np.where(b == 0, 1, b)
    return np.where(b == 0, 0.0, out)


def _f1(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    denominator = p + r
    return 2 * p * r / np.where(denominator == 0, 1, denominator)


@dataclass(frozen=True)
class NerScore:
    """Per-type scores and the micro, macro and weighted averages."""

    per_type: dict[str, TypeScore]
    micro: TypeScore
    macro: TypeScore
    weighted: TypeScore
    mode: str = "default"
    scheme: str | None = None

    @property
    def f1(self) -> float:
        """Micro F1, the usual headline number."""
        return self.micro.f1

    def to_json(self) -> dict:
        return {
            "mode": self.mode, "scheme": self.scheme,
            "precision": self.micro.precision, "recall": self.micro.recall, "f1": self.micro.f1,
            "per_type": {k: v.to_json() for k, v in self.per_type.items()},
            "micro": self.micro.to_json(), "macro": self.macro.to_json(), "weighted": self.weighted.to_json(),
        }


def score_spans(gold: Iterable[Iterable[Span]], predicted: Iterable[Iterable[Span]], mode: str = "default",
                scheme: str | None = None) -> NerScore:
    """Score sentence-aligned span lists (``gold[i]`` and ``predicted[i]`` belong to sentence i)."""
    gold_set: dict[str, set] = {}
    pred_set: dict[str, set] = {}
    n_gold = n_pred = 0
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        for s in g:
            gold_set.setdefault(s.label, set()).add((i, s.start, s.end))
            n_gold += 1
        for s in p:
            pred_set.setdefault(s.label, set()).add((i, s.start, s.end))
            n_pred += 1
    types = sorted(set(gold_set) | set(pred_set))
    true_sum = np.array([len(gold_set.get(t, ())) for t in types], dtype=np.int64)
    pred_sum = np.array([len(pred_set.get(t, ())) for t in types], dtype=np.int64)
    tp_sum = np.array([len(gold_set.get(t, set()) & pred_set.get(t, set())) for t in types], dtype=np.int64)

    p, r = _divide(tp_sum, pred_sum), _divide(tp_sum, true_sum)
    f = _f1(p, r)
    per_type = {t: TypeScore(float(p[k]), float(r[k]), float(f[k]), int(true_sum[k]), int(pred_sum[k]), int(tp_sum[k]))
                for k, t in enumerate(types)}
    counts = dict(support=int(true_sum.sum()), predicted=int(pred_sum.sum()), correct=int(tp_sum.sum()))
    mp = _divide(tp_sum.sum(keepdims=True), pred_sum.sum(keepdims=True))
    mr = _divide(tp_sum.sum(keepdims=True), true_sum.sum(keepdims=True))
    micro = TypeScore(float(mp[0]), float(mr[0]), float(_f1(mp, mr)[0]), **counts)
    if types:
        macro = TypeScore(float(np.average(p)), float(np.average(r)), float(np.average(f)), **counts)
    else:
        macro = TypeScore(0.0, 0.0, 0.0, **counts)
    if true_sum.sum() > 0:
        weighted = TypeScore(float(np.average(p, weights=true_sum)), float(np.average(r, weights=true_sum)),
                             float(np.average(f, weights=true_sum)), **counts)
    else:  # seqeval: nothing to weigh by
        weighted = TypeScore(0.0, 0.0, 0.0, **counts)
    return NerScore(per_type, micro, macro, weighted, mode, scheme)


def score_tags(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], mode: str = "default",
               scheme: str = "IOB2") -> NerScore:
    """Score tag sequences, sentence by sentence, with seqeval's semantics (see the module doc)."""
    if len(gold) != len(predicted):
        raise ConfigError(f"score: {len(gold)} gold sentences but {len(predicted)} predicted")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ConfigError(f"score: sentence {i} has {len(g)} gold tags but {len(p)} predicted")
    if mode == "strict":
        scheme = check_scheme(scheme)
    gold_spans = [extract_spans(g, mode, scheme) for g in gold]
    pred_spans = [extract_spans(p, mode, scheme) for p in predicted]
    return score_spans(gold_spans, pred_spans, mode, scheme if mode == "strict" else None)


def read_tag_column(path: str | os.PathLike, scheme: str | None = None) -> tuple[list[list[str]], list[list[str]], list[tuple[int, ...]]]:
    """Tokens, last-column tags and file line numbers of each sentence of a CoNLL file."""
    from spanbert.tasks.ner.data import read_conll

    corpus = read_conll(path, scheme or "auto")
    sentences = corpus.sentences
    return [list(s.tokens) for s in sentences], [list(s.tags) for s in sentences], [s.lines for s in sentences]


def score_ner_files(gold_path: str | os.PathLike, pred_path: str | os.PathLike, mode: str = "default",
                    scheme: str = "IOB2") -> NerScore:
    """Score a predicted CoNLL file against a gold one (tags in the last column of each).

    The files must hold the same sentences and tokens in the same order; the first place where
    they differ is one :class:`CorpusError` line naming both files and lines. With
    ``mode="strict"`` a tag outside ``scheme`` is an error naming its line.
    """
    if mode not in MODES:
        raise ConfigError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    strict_scheme = check_scheme(scheme) if mode == "strict" else None
    if strict_scheme == "IOB1":
        raise ConfigError("--scheme: strict mode takes IOB2 or IOBES")
    g_tokens, g_tags, g_lines = read_tag_column(gold_path, strict_scheme)
    p_tokens, p_tags, p_lines = read_tag_column(pred_path, strict_scheme)
    for i in range(min(len(g_tokens), len(p_tokens))):
        for k in range(min(len(g_tokens[i]), len(p_tokens[i]))):
            if g_tokens[i][k] != p_tokens[i][k]:
                raise CorpusError(f"{pred_path}:{p_lines[i][k]}: token {p_tokens[i][k]!r} does not match "
                                  f"{gold_path}:{g_lines[i][k]} {g_tokens[i][k]!r}")
        if len(g_tokens[i]) != len(p_tokens[i]):
            short, other = (pred_path, p_lines[i]) if len(p_tokens[i]) < len(g_tokens[i]) else (gold_path, g_lines[i])
            longer_path, longer = (gold_path, g_lines[i]) if short == pred_path else (pred_path, p_lines[i])
            k = min(len(g_tokens[i]), len(p_tokens[i]))
            raise CorpusError(f"{short}:{other[-1]}: sentence ends here, but {longer_path}:{longer[k]} continues it "
                              f"(sentence {i + 1})")
    if len(g_tokens) != len(p_tokens):
        if len(p_tokens) < len(g_tokens):
            raise CorpusError(f"{pred_path}: {len(p_tokens)} sentences, but {gold_path} has {len(g_tokens)} "
                              f"(first missing at {gold_path}:{g_lines[len(p_tokens)][0]})")
        raise CorpusError(f"{pred_path}:{p_lines[len(g_tokens)][0]}: extra sentence; {gold_path} has only {len(g_tokens)}")
    return score_tags(g_tags, p_tags, mode, strict_scheme or "IOB2")


__all__ = ["NerScore", "TypeScore", "extract_spans", "score_spans", "score_tags", "score_ner_files", "MODES"]
