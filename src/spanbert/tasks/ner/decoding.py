"""From span label probabilities to non-overlapping entities: pure functions.

Each candidate span has a probability per label (label 0 = ``O``). Its score is its best
entity-type probability. A span is a candidate entity when that type beats ``O`` (its argmax
is not ``O``) or, with a ``threshold``, when its score is at least the threshold (so a
threshold under 0.5 can add spans whose ``O`` probability is higher). Candidates are taken
greedily, highest score first (ties: earlier start, then shorter span), skipping any that
overlaps a span already taken; the result is sorted by start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spanbert.tasks.ner.tags import Span, spans_to_tags


@dataclass(frozen=True)
class ScoredSpan:
    """A decoded entity: words ``start..end`` (inclusive), ``label`` id (> 0), ``score`` in [0, 1]."""

    start: int
    end: int
    label: int
    score: float


def decode_spans(spans: np.ndarray, probs: np.ndarray, threshold: float | None = None) -> list[ScoredSpan]:
    """Non-overlapping entities from candidate ``spans`` (n, 2) (inclusive word indices) and their
    label probabilities ``probs`` (n, labels), label 0 = ``O``; see the module doc."""
    spans = np.asarray(spans).reshape(-1, 2)
    if len(spans) == 0:
        return []
    probs = np.asarray(probs, dtype=np.float64).reshape(len(spans), -1)  # (spans, labels)
    if probs.shape[1] < 2:
        return []
    types = probs[:, 1:].argmax(axis=1) + 1  # best entity type of each span
    scores = probs[np.arange(len(spans)), types]
    if threshold is None:
        keep = scores > probs[:, 0]
    else:
        keep = scores >= threshold
    rows = np.flatnonzero(keep)
    # highest score first; ties broken by start, then end, so the result never depends on input order
    order = rows[np.lexsort((spans[rows, 1], spans[rows, 0], -scores[rows]))]
    taken: list[ScoredSpan] = []
    used = np.zeros(int(spans[:, 1].max()) + 1, dtype=bool)  # words already inside a taken span
    for r in order:
        s, e = int(spans[r, 0]), int(spans[r, 1])
        if used[s : e + 1].any():
            continue
        used[s : e + 1] = True
        taken.append(ScoredSpan(s, e, int(types[r]), float(scores[r])))
    return sorted(taken, key=lambda x: (x.start, x.end))


def spans_to_entities(decoded: Sequence[ScoredSpan], id2label: dict[int, str]) -> list[Span]:
    """Typed :class:`~spanbert.tasks.ner.tags.Span` objects of decoded spans."""
    return [Span(d.start, d.end, id2label[d.label]) for d in decoded]


def decoded_to_tags(length: int, decoded: Sequence[ScoredSpan], id2label: dict[int, str], scheme: str = "IOB2") -> list[str]:
    """Tags (IOB2 by default) of a sentence of ``length`` words with the decoded entities."""
    return spans_to_tags(length, spans_to_entities(decoded, id2label), scheme)


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95


def fit_threshold(candidates: Sequence[tuple[np.ndarray, np.ndarray]], gold: Sequence[Sequence[Span]],
                  id2label: dict[int, str], grid: Sequence[float] = THRESHOLD_GRID) -> tuple[float | None, float]:
    """The decoding threshold with the best micro F1 against ``gold`` and that F1.

    ``candidates[i]``: sentence i's ``(word_spans, probs)``. ``None`` (argmax decoding) is tried
    first and kept unless a threshold of ``grid`` does strictly better.
    """
    from spanbert.tasks.ner.scoring import score_spans

    best: tuple[float | None, float] = (None, -1.0)
    for t in (None, *grid):
        predicted = [spans_to_entities(decode_spans(s, p, t), id2label) for s, p in candidates]
        f1 = score_spans(gold, predicted).f1
        if f1 > best[1]:
            best = (t, f1)
    return best


__all__ = ["ScoredSpan", "decode_spans", "spans_to_entities", "decoded_to_tags", "fit_threshold"]
