"""From start/end logits of an example's windows to answers: a pure function.

Candidates are the top-k start positions x top-k end positions of every window (k = 20),
restricted to context tokens, ``end >= start`` and at most ``max_answer_tokens`` tokens; a
start is taken only from the window where its token has the most context. A span's score is
``start_logit + end_logit``; spans with the same text are merged (the best kept), as in the
BERT/SpanBERT scripts. For SQuAD 2.0 the null score is ``start[CLS] + end[CLS]``, its minimum
over windows, and the answer is empty when ``null_score - best_span_score > null_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from spanbert.tasks.qa.features import NOT_CONTEXT
from spanbert.tasks.qa.settings import DecodeConfig


@dataclass(frozen=True)
class Candidate:
    """One answer candidate with its character span in the context ([start, end))."""

    text: str
    start: int
    end: int
    start_logit: float
    end_logit: float
    probability: float = 0.0

    @property
    def score(self) -> float:
        return self.start_logit + self.end_logit


@dataclass
class Prediction:
    """The answer to one question. ``text`` is "" for "no answer"; ``start``/``end`` are then -1.

    ``score`` is the best span's score, ``null_score`` the no-answer score and ``null_odds``
    their difference (``null_score - score``: the SQuAD 2.0 scripts' na-prob).
    """

    id: str
    text: str
    start: int
    end: int
    score: float
    null_score: float
    null_odds: float
    nbest: list[Candidate] = field(default_factory=list)
    best_span: Candidate | None = None  # the best non-empty answer, even when null is predicted

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("nbest")
        out.pop("best_span")
        return out


def _top_k(values: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest allowed values, largest first (ties: lower index first)."""
    idx = np.flatnonzero(allowed)
    if len(idx) > k:
        idx = idx[np.argpartition(-values[idx], k - 1)[:k]]
    return idx[np.lexsort((idx, -values[idx]))]


def decode_example(
    qid: str,
    context: str,
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    offsets: Sequence[np.ndarray],
    max_context: Sequence[np.ndarray],
    config: DecodeConfig = DecodeConfig(),
    null_index: int = 0,
) -> Prediction:
    """Answer one question from its windows' logits ``(len,)``, offsets ``(len, 2)`` and
    max-context masks ``(len,)`` (see :mod:`spanbert.tasks.qa.features`)."""
    spans: list[tuple[float, float, float, int, int]] = []  # (score, start_logit, end_logit, char start, char end)
    null_score, null_logits = math.inf, (0.0, 0.0)
    for s_log, e_log, off, best in zip(start_logits, end_logits, offsets, max_context):
        s_log = np.asarray(s_log, dtype=np.float64)
        e_log = np.asarray(e_log, dtype=np.float64)
        if s_log[null_index] + e_log[null_index] < null_score:
            null_score = float(s_log[null_index] + e_log[null_index])
            null_logits = (float(s_log[null_index]), float(e_log[null_index]))
        in_context = off[:, 0] != NOT_CONTEXT
        starts = _top_k(s_log, in_context & best, config.n_best)
        ends = _top_k(e_log, in_context, config.n_best)
        if len(starts) == 0 or len(ends) == 0:
            continue
        length = ends[None, :] - starts[:, None] + 1  # (k_start, k_end)
        ok = (length >= 1) & (length <= config.max_answer_tokens)
        si, ei = np.nonzero(ok)
        for a, b in zip(starts[si].tolist(), ends[ei].tolist()):
            spans.append((float(s_log[a] + e_log[b]), float(s_log[a]), float(e_log[b]), int(off[a, 0]), int(off[b, 1])))
    spans.sort(key=lambda t: (-t[0], t[3], t[4]))

    nbest: list[Candidate] = []
    seen: set[str] = set()
    for _, sl, el, a, b in spans:
        text = context[a:b]
        if text in seen:
            continue
        seen.add(text)
        nbest.append(Candidate(text, a, b, sl, el))
        if len(nbest) == config.n_best:
            break
    best = nbest[0] if nbest else None
    if config.allow_null and math.isfinite(null_score):
        nbest.append(Candidate("", -1, -1, *null_logits))
        nbest.sort(key=lambda c: -c.score)
    if nbest:
        scores = np.array([c.score for c in nbest])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        nbest = [Candidate(c.text, c.start, c.end, c.start_logit, c.end_logit, float(p)) for c, p in zip(nbest, probs)]

    best_score = best.score if best else -math.inf
    null_odds = null_score - best_score if math.isfinite(null_score) else -math.inf
    if best is None or (config.allow_null and null_odds > config.null_threshold):
        return Prediction(qid, "", -1, -1, best_score, null_score, null_odds, nbest, best)
    return Prediction(qid, best.text, best.start, best.end, best_score, null_score, null_odds, nbest, best)


def nbest_json(prediction: Prediction) -> list[dict]:
    """The n-best list in the format of the BERT/SpanBERT scripts (plus character offsets)."""
    return [
        {"text": c.text, "probability": c.probability, "start_logit": c.start_logit, "end_logit": c.end_logit,
         "start": c.start, "end": c.end}
        for c in prediction.nbest
    ]

