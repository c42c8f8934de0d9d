"""SQuAD v1.1 and v2.0 scoring with exactly the semantics of the official scripts.

The numbers match ``evaluate-v1.1.py`` and ``evaluate-v2.0.py`` of SQuAD-explorer key for
key (tests/test_qa_scoring.py checks this against their recorded output on real dev sets).
What the two scripts do, and what is reproduced here:

* Answers are compared after :func:`normalize_answer`: lowercase, drop ASCII punctuation,
  replace the whole words a/an/the by a space, collapse whitespace, in that order.
* Exact match is 1 when the normalised strings are equal. F1 is the token-overlap F1 of the
  normalised strings. Each question takes the maximum over its gold answers.
* v1.1 (:func:`squad_v1_metrics`): every question of the data file counts; a question without
  a prediction scores 0. F1 has no special case for empty strings: with no common token it is
  0, so an empty prediction scores F1 0 even against a gold answer that normalises to the
  empty string (whose exact match is 1).
* v2.0 (:func:`squad_v2_metrics`): a question "has an answer" when its ``answers`` list is
  non-empty (``is_impossible`` is never read); gold answers that normalise to "" are dropped
  and a question left with none has the single gold answer "". F1 is 1 when both sides are
  empty and 0 when only one is. With no-answer probabilities, a question whose probability
  is strictly above ``na_prob_thresh`` scores 1 if it has no answer and 0 otherwise, whatever
  was predicted; ``best_exact``/``best_f1`` come from the official threshold sweep (see
  :func:`squad_v2_metrics`).

Where the official scripts would crash (a v2.0 question without a prediction, a v1.1
question without gold answers, no questions at all) a :class:`ScoringError` says why.
Unlike the official scripts, prediction ids that are not questions of the data file are
rejected rather than ignored: they almost always mean the wrong data file.
"""

from __future__ import annotations

import json
import logging
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spanbert.core.errors import SpanBertError
from spanbert.core.sources import read_bytes

__all__ = [
    "GoldQuestion",
    "ScoringError",
    "SquadGold",
    "SquadScore",
    "SquadVersion",
    "apply_null_threshold",
    "detect_version",
    "evaluate_predictions",
    "exact_match_score",
    "f1_score",
    "fit_null_threshold",
    "gold_answers_from_squad",
    "normalize_answer",
    "score_squad_files",
    "squad_v1_metrics",
    "squad_v2_metrics",
]

logger = logging.getLogger(__name__)

SquadVersion = Literal["v1.1", "v2.0"]
_VERSIONS = ("v1.1", "v2.0")

# The official scripts use re's default (Unicode) \b and Python's string.punctuation (ASCII
# only: curly quotes, dashes and other Unicode punctuation are kept).
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)


class ScoringError(SpanBertError):
    """A data, predictions or no-answer-probability file cannot be scored."""


# --------------------------------------------------------------------------- per answer


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the words a/an/the, collapse whitespace.

    The order matters and is the official one: punctuation goes before articles are
    matched, so ``"the-end"`` becomes ``"theend"`` (no article left) while ``"the, end"``
    becomes ``"end"``.
    """
    text = text.lower().translate(_DROP_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, gold: str) -> float:
    """1.0 when prediction and gold answer are equal after :func:`normalize_answer`, else 0.0.

    The same in v1.1 and v2.0 (so two strings that both normalise to "" match).
    """
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, *, version: SquadVersion = "v2.0") -> float:
    """Token-overlap F1 of the normalised prediction and gold answer.

    ``version="v2.0"`` (default): if either side normalises to no tokens, F1 is 1.0 when both
    do and 0.0 otherwise. ``version="v1.1"``: no such rule; with no common token the F1 is 0.0,
    so ``f1_score("", "", version="v1.1") == 0.0`` (the division by an empty side cannot happen
    because zero overlap returns first).
    """
    _check_version(version)
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if version == "v2.0" and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    return _token_f1(pred_tokens, gold_tokens)


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """F1 over token multisets; same arithmetic as the official scripts (same rounding)."""
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


# --------------------------------------------------------------------------- gold data


@dataclass(frozen=True)
class GoldQuestion:
    """One question of a SQuAD file: its id and gold answer texts as written in the file."""

    qid: str
    answers: tuple[str, ...]  # file order, unnormalised; empty for an unanswerable question
    is_impossible: bool | None = None  # the file's flag, None when absent (only read by detect_version)
    where: str = ""  # JSON path, e.g. "data[3].paragraphs[0].qas[2]", for messages

    @property
    def has_answer(self) -> bool:
        """Official v2.0 rule: the ``answers`` list is non-empty (``is_impossible`` is ignored)."""
        return bool(self.answers)

    @property
    def v2_answers(self) -> tuple[str, ...]:
        """Gold answers under v2.0: those that normalise to "" are dropped; none left -> ("",)."""
        kept = tuple(a for a in self.answers if normalize_answer(a))
        return kept or ("",)


@dataclass(frozen=True)
class SquadGold:
    """The questions of a SQuAD data file in file order (a repeated id is kept each time)."""

    questions: tuple[GoldQuestion, ...]
    version: str | None = None  # the file's "version" field
    source: str = "the data"  # file name for messages


def gold_answers_from_squad(data: Mapping[str, Any], *, source: str = "the data") -> SquadGold:
    """Read the questions and gold answers of a parsed SQuAD JSON object (v1.1 or v2.0).

    ``data`` is ``{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
    "question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``. Answer texts
    are kept as written: v1.1 compares with them as they are, v2.0 applies
    :attr:`GoldQuestion.v2_answers`. Raises :class:`ScoringError` naming ``source`` and the
    JSON path when the structure is wrong.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise ScoringError(f"{source}: not a SQuAD file: expected a JSON object with a 'data' list")
    questions: list[GoldQuestion] = []
    for a, article in enumerate(data["data"]):
        if not isinstance(article, Mapping) or not isinstance(article.get("paragraphs"), list):
            raise ScoringError(f"{source}: data[{a}] has no 'paragraphs' list")
        for p, paragraph in enumerate(article["paragraphs"]):
            if not isinstance(paragraph, Mapping) or not isinstance(paragraph.get("qas"), list):
                raise ScoringError(f"{source}: data[{a}].paragraphs[{p}] has no 'qas' list")
            for q, qa in enumerate(paragraph["qas"]):
                questions.append(_read_question(qa, f"data[{a}].paragraphs[{p}].qas[{q}]", source))
    version = data.get("version")
    return SquadGold(tuple(questions), None if version is None else str(version), source)


def _read_question(qa: Any, where: str, source: str) -> GoldQuestion:
    if not isinstance(qa, Mapping):
        raise ScoringError(f"{source}: {where} is a JSON {_json_type(qa)}, not an object")
    qid = qa.get("id")
    if qid is None:
        raise ScoringError(f"{source}: {where} has no 'id'")
    if not isinstance(qid, str):
        # Prediction files are JSON objects, whose keys are always strings: a numeric id
        # could never be matched.
        raise ScoringError(f"{source}: {where} has an 'id' that is a JSON {_json_type(qid)}, not a string")
    answers = qa.get("answers")
    if not isinstance(answers, list):
        raise ScoringError(f"{source}: question {qid!r} ({where}) has no 'answers' list")
    texts = []
    for i, answer in enumerate(answers):
        text = answer.get("text") if isinstance(answer, Mapping) else None
        if not isinstance(text, str):
            raise ScoringError(f"{source}: question {qid!r} ({where}): answers[{i}] has no 'text' string")
        texts.append(text)
    flag = qa.get("is_impossible")
    return GoldQuestion(qid, tuple(texts), None if flag is None else bool(flag), where)


def detect_version(gold: SquadGold) -> SquadVersion:
    """v2.0 when the file's version starts with "v2" (or "2"), a question carries an
    ``is_impossible`` flag, or a question has no gold answer (v1.1 scoring cannot handle one:
    the official script crashes); v1.1 otherwise."""
    version = (gold.version or "").strip().lower()
    if version.startswith(("v2", "2")):
        return "v2.0"
    if any(q.is_impossible is not None or not q.answers for q in gold.questions):
        return "v2.0"
    return "v1.1"


def _as_gold(gold: SquadGold | Mapping[str, Sequence[str]]) -> SquadGold:
    """Accept a :class:`SquadGold` or a plain ``{qid: [gold answer texts]}`` mapping."""
    if isinstance(gold, SquadGold):
        return gold
    return SquadGold(tuple(GoldQuestion(qid, tuple(answers)) for qid, answers in gold.items()))


# --------------------------------------------------------------------------- metrics


def squad_v1_metrics(
    gold: SquadGold | Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    *,
    predictions_name: str = "the predictions",
) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent, exactly as ``evaluate-v1.1.py`` computes them.

    Every question counts (a repeated id counts each time, as in the official loop); one
    without a prediction scores 0, and their number is logged as a warning where the official
    script prints "Unanswered question ... will receive score 0." for each. ``gold`` is a
    :class:`SquadGold` or ``{qid: [answer texts]}``. Raises :class:`ScoringError` for a prediction id that
    is not a question, a non-string prediction, a question without gold answers (the
    official script crashes on one; score such data as v2.0) or no questions at all.
    """
    gold = _as_gold(gold)
    check_predictions(predictions, gold, predictions_name)
    if not gold.questions:
        raise ScoringError(f"{gold.source}: no questions to score")
    exact = f1 = 0.0  # running sums in file order, like the official script's `+=`
    missing: list[str] = []
    for question in gold.questions:
        if not question.answers:
            raise ScoringError(
                f"{gold.source}: question {question.qid!r} has no gold answer; "
                "SQuAD v1.1 scoring needs one (score this file as v2.0)"
            )
        if question.qid not in predictions:
            missing.append(question.qid)
            continue
        prediction = predictions[question.qid]
        exact += max(exact_match_score(prediction, a) for a in question.answers)
        f1 += max(f1_score(prediction, a, version="v1.1") for a in question.answers)
    total = len(gold.questions)
    if missing:
        logger.warning(
            "%d of %d questions of %s have no prediction in %s and score 0 (e.g. %r)",
            len(missing), total, gold.source, predictions_name, missing[0],
        )
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def squad_v2_metrics(
    gold: SquadGold | Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
    *,
    predictions_name: str = "the predictions",
    na_probs_name: str = "the no-answer probabilities",
) -> dict[str, float]:
    """The dictionary ``evaluate-v2.0.py`` prints, with the same keys, order and values.

    Keys: ``exact, f1, total``, then ``HasAns_exact/f1/total`` if some question has an answer
    and ``NoAns_exact/f1/total`` if some has none, then, only when ``na_probs`` is given,
    ``best_exact, best_exact_thresh, best_f1, best_f1_thresh``. Scores are percentages;
    totals count distinct question ids (a repeated id keeps its first position and its last
    answers, as the official dictionaries do).

    ``na_probs`` maps question id -> probability of no answer (default 0.0 for all). A
    question whose probability is strictly greater than ``na_prob_thresh`` scores 1 if it has
    no answer and 0 if it has one, whatever its predicted text.

    The best-threshold sweep is the official one: start from the score of answering every
    question with "" (the number of unanswerable questions), walk the questions by
    increasing probability in a stable sort of ``na_probs``' own key order, and after each
    add its raw score if it has an answer, or subtract 1 if it has none and its prediction
    is a non-empty string (raw text: " " or "the" count as an answer here although they
    normalise to ""); keep the first strictly best running score and that question's
    probability (0.0 when none beats the start). Ties are not grouped, so the reported best
    can be a running score reached in the middle of a group of equal probabilities, which
    no threshold actually gives; ``best_*`` may also be lower than ``exact``/``f1``.

    A question without a prediction is an error here (the official script counts it out of
    ``total`` but then fails with a KeyError on the HasAns/NoAns split); so is a prediction
    id that is not a question, a non-string prediction, a question missing from
    ``na_probs`` or a probability that is not a number. Ids in ``na_probs`` that are not
    questions are ignored, as officially.
    """
    gold = _as_gold(gold)
    check_predictions(predictions, gold, predictions_name)
    has_answer: dict[str, bool] = {}
    for question in gold.questions:
        has_answer[question.qid] = question.has_answer
    if not has_answer:
        raise ScoringError(f"{gold.source}: no questions to score")
    missing = [qid for qid in has_answer if qid not in predictions]
    if missing:
        raise ScoringError(
            f"{predictions_name}: {count_text(len(missing), 'question')} of {gold.source} "
            f"{'has' if len(missing) == 1 else 'have'} no prediction, e.g. {missing[0]!r} "
            "(SQuAD v2.0 scoring needs one per question; predict \"\" for no answer)"
        )
    if na_probs is not None:
        _check_na_probs(na_probs, has_answer, gold.source, na_probs_name)

    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for question in gold.questions:
        golds = question.v2_answers
        prediction = predictions[question.qid]
        exact_raw[question.qid] = max(exact_match_score(prediction, a) for a in golds)
        f1_raw[question.qid] = max(f1_score(prediction, a) for a in golds)

    probs = na_probs if na_probs is not None else dict.fromkeys(exact_raw, 0.0)
    exact = _apply_no_answer_threshold(exact_raw, probs, has_answer, na_prob_thresh)
    f1 = _apply_no_answer_threshold(f1_raw, probs, has_answer, na_prob_thresh)

    metrics = _summary(exact, f1, exact)  # over all scored questions
    has_ids = [qid for qid, has in has_answer.items() if has]
    no_ids = [qid for qid, has in has_answer.items() if not has]
    if has_ids:
        metrics.update(_prefixed("HasAns", _summary(exact, f1, has_ids)))
    if no_ids:
        metrics.update(_prefixed("NoAns", _summary(exact, f1, no_ids)))
    if na_probs is not None:
        best_exact, best_exact_thresh = _best_threshold(predictions, exact_raw, na_probs, has_answer)
        best_f1, best_f1_thresh = _best_threshold(predictions, f1_raw, na_probs, has_answer)
        metrics["best_exact"] = best_exact
        metrics["best_exact_thresh"] = best_exact_thresh
        metrics["best_f1"] = best_f1
        metrics["best_f1_thresh"] = best_f1_thresh
    return metrics


def _apply_no_answer_threshold(
    scores: dict[str, float], na_probs: Mapping[str, float], has_answer: dict[str, bool], thresh: float
) -> dict[str, float]:
    """Replace the score of each question predicted unanswerable (probability > thresh)."""
    return {
        qid: float(not has_answer[qid]) if na_probs[qid] > thresh else score
        for qid, score in scores.items()
    }


def _summary(exact: dict[str, float], f1: dict[str, float], qids: Iterable[str]) -> dict[str, float]:
    """exact/f1 (percent) and total over ``qids``, summed in the official order."""
    qids = list(qids)
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact[k] for k in qids) / total,
        "f1": 100.0 * sum(f1[k] for k in qids) / total,
        "total": total,
    }


def _prefixed(prefix: str, block: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in block.items()}


def _best_threshold(
    predictions: Mapping[str, str],
    scores: dict[str, float],
    na_probs: Mapping[str, float],
    has_answer: dict[str, bool],
) -> tuple[float, float]:
    """The official ``find_best_thresh`` sweep; see :func:`squad_v2_metrics`."""
    current = best = sum(1 for has in has_answer.values() if not has)
    best_thresh: float = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):  # stable: ties keep file order
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:  # the raw text, not its normalised form
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def fit_null_threshold(
    gold: SquadGold | Mapping[str, Sequence[str]],
    span_predictions: Mapping[str, str],
    null_odds: Mapping[str, float],
) -> tuple[float, float]:
    """The null threshold that maximises v2.0 F1, and that F1 (percent).

    ``span_predictions`` holds each question's best non-empty answer and ``null_odds`` its
    ``null score - best span score``; a question is answered "" when its odds exceed the
    threshold. Unlike the official sweep (``best_f1_thresh``), questions with equal odds
    switch together and "every question unanswered" is a candidate too, so the returned
    threshold really gives the returned F1 under :func:`squad_v2_metrics`' rule
    (``na_prob_thresh=threshold``). Ties between thresholds go to the lowest.
    """
    gold = _as_gold(gold)
    has_answer = {q.qid: q.has_answer for q in gold.questions}
    answers = {q.qid: q.v2_answers for q in gold.questions}
    missing = [qid for qid in has_answer if qid not in span_predictions or qid not in null_odds]
    if missing:
        raise ScoringError(f"fit_null_threshold: no prediction or null odds for question {missing[0]!r}")
    # start: every question unanswered (threshold below all odds)
    current = best = float(sum(1 for has in has_answer.values() if not has))
    order = sorted(has_answer, key=lambda qid: null_odds[qid])
    best_thresh = float(null_odds[order[0]]) - 1.0 if order else 0.0
    i = 0
    while i < len(order):
        odds = null_odds[order[i]]
        while i < len(order) and null_odds[order[i]] == odds:  # answer all questions with these odds
            qid = order[i]
            current += max(f1_score(span_predictions[qid], a) for a in answers[qid]) - float(not has_answer[qid])
            i += 1
        if current > best + 1e-12:
            best, best_thresh = current, float(odds)
    return best_thresh, 100.0 * best / len(has_answer)


def apply_null_threshold(predictions: Sequence[Any], threshold: float) -> dict[str, str]:
    """Final answers of :class:`~spanbert.tasks.qa.decoding.Prediction` objects under a null
    threshold: "" where ``null_odds > threshold``, the best span otherwise."""
    out = {}
    for p in predictions:
        span = p.best_span.text if p.best_span else ""
        out[p.id] = "" if (p.best_span is None or p.null_odds > threshold) else span
    return out


def evaluate_predictions(predictions: Sequence[Any], gold: SquadGold, version: str, fit_threshold: bool,
                         null_threshold: float = 0.0) -> tuple[dict[str, float], float | None, dict[str, str]]:
    """Official metrics of ``predictions`` (:class:`~spanbert.tasks.qa.decoding.Prediction`) and
    the final answers; for SQuAD 2.0 with ``null_threshold`` or, with ``fit_threshold``, the
    threshold that maximises F1 here (returned)."""
    if version == "1.1":
        answers = {p.id: p.text for p in predictions}
        return squad_v1_metrics(gold, answers), None, answers
    odds = {p.id: float(p.null_odds) for p in predictions}
    threshold = None
    if fit_threshold:
        spans = apply_null_threshold(predictions, float("inf"))  # best non-null answer everywhere
        threshold, _ = fit_null_threshold(gold, spans, odds)
    used = threshold if threshold is not None else null_threshold
    answers = apply_null_threshold(predictions, used)
    # The official script also forces "no answer" where na_prob > na_prob_thresh (default 1.0);
    # scoring with our own threshold keeps exact/f1 equal to what predictions.json says.
    return squad_v2_metrics(gold, answers, odds, na_prob_thresh=used), threshold, answers


# --------------------------------------------------------------------------- checks


def check_predictions(predictions: Any, gold: SquadGold, name: str) -> None:
    """Predictions must map question ids of ``gold`` to strings."""
    if not isinstance(predictions, Mapping):
        raise ScoringError(
            f"{name}: expected a JSON object mapping question id to answer text, "
            f"got a JSON {_json_type(predictions)}"
        )
    not_text = [qid for qid, text in predictions.items() if not isinstance(text, str)]
    if not_text:
        example = not_text[0]
        raise ScoringError(
            f"{name}: {count_text(len(not_text), 'prediction')} {'is' if len(not_text) == 1 else 'are'} "
            f"not a string, e.g. {example!r} is a JSON {_json_type(predictions[example])}"
        )
    known = {q.qid for q in gold.questions}
    unknown = [qid for qid in predictions if qid not in known]
    if unknown:
        one = len(unknown) == 1
        raise ScoringError(
            f"{name}: {count_text(len(unknown), 'prediction id')} {'is' if one else 'are'} not "
            f"{'a question' if one else 'questions'} of {gold.source}, e.g. {unknown[0]!r}"
        )


def _check_na_probs(na_probs: Any, has_answer: dict[str, bool], source: str, name: str) -> None:
    """No-answer probabilities must be numbers (not NaN) covering every question."""
    if not isinstance(na_probs, Mapping):
        raise ScoringError(
            f"{name}: expected a JSON object mapping question id to a no-answer probability, "
            f"got a JSON {_json_type(na_probs)}"
        )
    bad = [qid for qid, p in na_probs.items() if not _is_number(p)]
    if bad:
        value = repr(na_probs[bad[0]])
        value = value if len(value) <= 40 else value[:37] + "..."
        raise ScoringError(
            f"{name}: {count_text(len(bad), 'no-answer probability', 'no-answer probabilities')} "
            f"{'is' if len(bad) == 1 else 'are'} not a number, e.g. {bad[0]!r}: {value}"
        )
    missing = [qid for qid in has_answer if qid not in na_probs]
    if missing:
        raise ScoringError(
            f"{name}: {count_text(len(missing), 'question')} of {source} "
            f"{'has' if len(missing) == 1 else 'have'} no no-answer probability, e.g. {missing[0]!r}"
        )
    extra = len(na_probs) - len(has_answer)
    if extra > 0:
        logger.info("%s: %d ids are not questions of %s and are ignored", name, extra, source)


def _is_number(value: Any) -> bool:
    # JSON true/false parse to bool, an int subclass; NaN would make the sort meaningless.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def count_text(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 question"``, ``"3 questions"``."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _check_version(version: str) -> None:
    if version not in _VERSIONS:
        raise ScoringError(f"unknown SQuAD version {version!r} (expected 'v1.1' or 'v2.0')")


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class SquadScore:
    """What :func:`score_squad_files` found: the semantics used and the official metrics."""

    version: SquadVersion  # which official script's semantics were applied
    metrics: dict[str, float]  # exactly the dictionary that script prints


def score_squad_files(
    data_path: str | Path,
    predictions_path: str | Path,
    na_probs_path: str | Path | None = None,
    na_prob_thresh: float = 1.0,
    version: Literal["auto", "v1.1", "v2.0"] = "auto",
) -> SquadScore:
    """Score a predictions file against a SQuAD data file, as the official script would.

    Files are JSON, or gzip-compressed JSON (recognised by content, e.g. ``.json.gz``).
    ``version="auto"`` applies v2.0 semantics when :func:`detect_version` says so and v1.1
    otherwise. The returned :class:`SquadScore` holds the official dictionary unchanged
    (``metrics``, to be written as METRICS.json) and the version used. No-answer
    probabilities and a threshold other than 1.0 only exist in v2.0: asking for them on
    data scored as v1.1 is an error. Every problem raises :class:`ScoringError` with one line
    naming the file.
    """
    if version != "auto":
        _check_version(version)
    data_name, predictions_name = str(data_path), str(predictions_path)
    gold = gold_answers_from_squad(read_json(Path(data_path), "data"), source=data_name)
    predictions = read_json(Path(predictions_path), "predictions")
    used: SquadVersion = detect_version(gold) if version == "auto" else version
    if used == "v1.1":
        if na_probs_path is not None:
            raise ScoringError(
                f"{na_probs_path}: no-answer probabilities only apply to SQuAD v2.0, "
                f"but {data_name} is scored as v1.1"
            )
        if na_prob_thresh != 1.0:
            raise ScoringError(
                f"na_prob_thresh={na_prob_thresh} only applies to SQuAD v2.0, but {data_name} is scored as v1.1"
            )
        metrics = squad_v1_metrics(gold, predictions, predictions_name=predictions_name)
    else:
        na_probs = None
        if na_probs_path is not None:
            na_probs = read_json(Path(na_probs_path), "no-answer probabilities")
        metrics = squad_v2_metrics(
            gold, predictions, na_probs, na_prob_thresh,
            predictions_name=predictions_name, na_probs_name=str(na_probs_path),
        )
    return SquadScore(used, metrics)


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON or gzipped JSON file, turning every failure into a one-line ScoringError."""
    raw = read_bytes(path, what, ScoringError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScoringError(f"{path}: not UTF-8 text (invalid byte at offset {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ScoringError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise ScoringError(f"{path}: JSON nested too deeply") from None
