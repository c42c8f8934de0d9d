"""CMRC 2018 scoring (Chinese extractive QA) with the semantics of the official script.

This module owns the CMRC 2018 metric: the mixed Chinese/English segmentation, exact match,
the longest-common-substring F1 and the file-level totals, plus ``spanbert score cmrc``'s
command function. The official script is ``cmrc2018_evaluate.py`` of ymcui/cmrc2018 (v5-special
in ``squad-style-data/``, v6 in ``baseline/``; both score SQuAD-format files identically).
tests/test_qa_cmrc.py checks our numbers against its output on the real dev set.

What the official script does, and what is reproduced here:

* Both sides are lowercased and stripped (Unicode whitespace) first.
* Segmentation (:func:`cmrc_segment`): every character in U+4E00..U+9FA5 (the original CJK
  Unified Ideographs block up to 9FA5, so later ideographs and extension blocks are *not*
  Chinese here) and every punctuation character of :data:`CMRC_PUNCTUATION` is a token of
  its own; each maximal run of other characters (Latin, digits, spaces, ASCII ``.,!?()"'``,
  other Unicode punctuation such as ``…`` or ``—``) is split into English words.
* F1 (:func:`cmrc_f1`): segment with punctuation removed; the overlap is the length of the
  longest common *contiguous* run of tokens (not a bag of tokens as in SQuAD); precision =
  overlap / prediction tokens, recall = overlap / answer tokens; no overlap -> 0. The
  question's F1 is the maximum over its gold answers.
* Exact match (:func:`cmrc_em`): lowercased, stripped, punctuation characters deleted, then
  the character strings compared (inner spaces count: ``"a b" != "ab"``); 1 if any gold
  answer matches.
* Totals (:func:`score_cmrc`): every question of the data file counts, in file order (a
  repeated id each time); one without a prediction scores 0 and is counted in ``skipped``.
  ``f1``/``exact_match`` are 100 x sum / total, ``average`` is their mean. The official
  script prints these with three decimals (``"%.3f"``).

English words need nltk, the optional ``cmrc`` extra (``pip install 'spanbert[cmrc]'``); without
it, scoring stops with a one-line :class:`~spanbert.core.errors.MissingExtraError`.

Difference in tokenisation: the official script splits English runs with
``nltk.word_tokenize``, which first splits the run into sentences with the punkt English
model (a data download) and then applies nltk's Treebank-style ``NLTKWordTokenizer`` to each
sentence. We apply ``NLTKWordTokenizer`` to the whole run (no data needed). The tokens
differ only when punkt finds a sentence end *inside* a run: a period ending an inner
sentence is then a separate token officially (``"inc. the"`` -> ``inc . the`` rather than
``inc. the``); ``?`` and ``!`` are split either way, and a final period is split either way.
Such runs are rare: the gold answers of the dev set have three (``"henry a. walsh"``-like
names; the text is lowercased first, and punkt seldom ends a sentence before a lowercase
word), and the official numbers themselves depend on the installed nltk version and its
punkt model.

Differences in checks: where the official script would crash (a question with no gold
answer, no questions) or silently misbehave, a :class:`ScoringError` says why in one line
naming the file: prediction ids that are not questions of the data file are rejected
(the official script ignores them: they almost always mean the wrong data file), and so
are predictions that are not strings (officially passed through ``str()``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from spanbert.core.extras import require
from spanbert.tasks.qa.scoring import (ScoringError, SquadGold, check_predictions, count_text, gold_answers_from_squad,
                                      read_json)

__all__ = [
    "CMRC_PUNCTUATION",
    "cmrc_em",
    "cmrc_f1",
    "cmrc_segment",
    "cmrc_strip_punctuation",
    "score_cmrc",
    "score_cmrc_command",
    "score_cmrc_files",
]

logger = logging.getLogger(__name__)

# The official punctuation list, character for character. It also lists "……" (two U+2026),
# which is compared with single characters and so never matches: "…" is NOT removed. Neither
# are ASCII . , ! ? ' " ( ) nor the left quotes ‘ (U+2018), nor — (U+2014) or 【】.
CMRC_PUNCTUATION = frozenset(
    "-:_*^/\\~`+="  # ASCII
    "\uff0c\u3002\uff1a\uff1f\uff01"  # ，。：？！
    "\u201c\u201d\uff1b\u2019"  # “”；’
    "\u300a\u300b\u00b7\u3001"  # 《》·、
    "\u300c\u300d\uff08\uff09"  # 「」（）
    "\uff0d\uff5e\u300e\u300f"  # －～『』
)
_CHINESE = re.compile("[\u4e00-\u9fa5]")


# --------------------------------------------------------------------------- per answer


@functools.cache
def _word_tokenizer():
    """nltk's Treebank-style word tokenizer (imported lazily: importing nltk takes ~1 s, and it
    is the optional ``cmrc`` extra)."""
    tokenize = require("nltk.tokenize", "cmrc", "the CMRC 2018 metric")
    return tokenize.NLTKWordTokenizer().tokenize


@functools.lru_cache(maxsize=65536)
def _english_words(run: str) -> tuple[str, ...]:
    """The words of a run of non-Chinese characters (cached: the tokenizer is ~0.1 ms a call)."""
    if run.isspace():  # the tokenizer gives no token for any whitespace-only run
        return ()
    return tuple(_word_tokenizer()(run))


def _prepare(text: str) -> str:
    return text.lower().strip()


@functools.lru_cache(maxsize=65536)
def _segments(text: str, drop_punctuation: bool) -> tuple[str, ...]:
    """:func:`cmrc_segment` as a tuple, cached: gold answers are segmented once per file."""
    tokens: list[str] = []
    run: list[str] = []  # characters of the current non-Chinese run

    def flush() -> None:
        if run:
            tokens.extend(_english_words("".join(run)))
            run.clear()

    for char in _prepare(text):
        if drop_punctuation and char in CMRC_PUNCTUATION:
            continue  # dropped without ending the run: "a-b" is the run "ab"
        if char in CMRC_PUNCTUATION or _CHINESE.match(char):
            flush()
            tokens.append(char)
        else:
            run.append(char)
    flush()
    return tuple(tokens)


def cmrc_segment(text: str, *, drop_punctuation: bool = True) -> list[str]:
    """The official mixed segmentation of ``text`` (lowercased, stripped): one token per
    Chinese character (U+4E00..U+9FA5) and per :data:`CMRC_PUNCTUATION` character, runs of
    other characters split into English words by nltk's word tokenizer.

    ``drop_punctuation=True`` (what F1 uses) deletes the punctuation characters first, which
    also joins the text around them into one run (``"ω-force"`` -> ``["ωforce"]``).
    """
    return list(_segments(text, drop_punctuation))


def cmrc_strip_punctuation(text: str) -> str:
    """``text`` lowercased and stripped, with every :data:`CMRC_PUNCTUATION` character
    deleted (what exact match compares; inner whitespace is kept)."""
    return "".join(c for c in _prepare(text) if c not in CMRC_PUNCTUATION)


def _longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous run of tokens of ``a`` and ``b`` (O(|a||b|))."""
    best = 0
    previous = [0] * (len(b) + 1)  # previous[j]: common run ending at a[i-1], b[j-1]
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best = current[j]
        previous = current
    return best


def _f1_segments(prediction: tuple[str, ...], answer: tuple[str, ...]) -> float:
    overlap = _longest_common_run(answer, prediction)
    if overlap == 0:
        return 0.0
    # the official arithmetic, in its order, so the floats are bit-identical
    precision = 1.0 * overlap / len(prediction)
    recall = 1.0 * overlap / len(answer)
    return (2 * precision * recall) / (precision + recall)


def cmrc_f1(prediction: str, answers: Sequence[str]) -> float:
    """The official CMRC F1 of ``prediction``: the best over the gold ``answers`` of the F1
    from the longest common run of :func:`cmrc_segment` tokens (punctuation dropped).

    ``answers`` must not be empty (the official script crashes on a question without one).
    """
    if not answers:
        raise ValueError("cmrc_f1: no gold answers")
    predicted = _segments(prediction, True)
    return max(_f1_segments(predicted, _segments(answer, True)) for answer in answers)


def cmrc_em(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when ``prediction`` equals one of the gold ``answers`` after
    :func:`cmrc_strip_punctuation`, else 0.0."""
    predicted = cmrc_strip_punctuation(prediction)
    return float(any(cmrc_strip_punctuation(answer) == predicted for answer in answers))


# --------------------------------------------------------------------------- totals


def score_cmrc(
    dataset: Mapping[str, Any] | SquadGold,
    predictions: Mapping[str, str],
    *,
    data_name: str = "the data",
    predictions_name: str = "the predictions",
) -> dict[str, float]:
    """CMRC 2018 metrics of ``predictions`` (``{question id: answer text}``) on ``dataset``.

    ``dataset`` is a parsed SQuAD-format CMRC file (``{"data": [{"paragraphs": [{"qas":
    [{"id", "answers": [{"text"}]}]}]}]}``) or a :class:`~spanbert.tasks.qa.scoring.SquadGold`.
    Returns ``{"exact_match", "f1", "average"}`` in percent (unrounded; the official script
    prints them with ``"%.3f"``), ``"total"`` (questions) and ``"skipped"`` (questions without
    a prediction, scored 0). Raises :class:`ScoringError` naming ``data_name`` or
    ``predictions_name`` for a malformed file, a question without gold answers, no
    questions, a non-string prediction or a prediction id that is not a question.
    """
    gold = dataset if isinstance(dataset, SquadGold) else gold_answers_from_squad(dataset, source=data_name)
    if not gold.questions:
        raise ScoringError(f"{gold.source}: no questions to score")
    no_answer = [q for q in gold.questions if not q.answers]
    if no_answer:
        raise ScoringError(
            f"{gold.source}: {count_text(len(no_answer), 'question')} {'has' if len(no_answer) == 1 else 'have'} "
            f"no gold answer, e.g. {no_answer[0].qid!r} (CMRC scoring needs at least one per question)"
        )
    check_predictions(predictions, gold, predictions_name)
    f1_sum = 0.0
    em_sum = 0.0
    skipped = 0
    for question in gold.questions:  # file order, as the official sums
        if question.qid not in predictions:
            skipped += 1
            continue
        f1_sum += cmrc_f1(predictions[question.qid], question.answers)
        em_sum += cmrc_em(predictions[question.qid], question.answers)
    if skipped:
        logger.warning("%s: %d of %d questions have no prediction and score 0", predictions_name, skipped,
                       len(gold.questions))
    total = len(gold.questions)
    f1 = 100.0 * f1_sum / total
    exact_match = 100.0 * em_sum / total
    return {"exact_match": exact_match, "f1": f1, "average": (exact_match + f1) * 0.5,
            "total": total, "skipped": skipped}


def score_cmrc_files(data_path: str | Path, predictions_path: str | Path) -> dict[str, float]:
    """:func:`score_cmrc` of two files (JSON, or gzip-compressed JSON recognised by content).

    Every problem, including an unreadable or invalid file, raises :class:`ScoringError` with
    one line naming the file.
    """
    data = read_json(Path(data_path), "data")
    predictions = read_json(Path(predictions_path), "predictions")
    return score_cmrc(data, predictions, data_name=str(data_path), predictions_name=str(predictions_path))


# --------------------------------------------------------------------------- command


def score_cmrc_command(
    data: Annotated[Path, typer.Option(help="The CMRC 2018 data file in SQuAD format (JSON or .json.gz).")],
    predictions: Annotated[Path, typer.Option(help="predictions.json: {question id: answer text}.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics here as JSON.")] = None,
) -> None:
    """Score predictions exactly as the official CMRC 2018 evaluation script does (F1, EM, average)."""
    from spanbert.core.atomic import atomic_write_json

    require("nltk.tokenize", "cmrc", "spanbert score cmrc")  # before reading the files
    metrics = score_cmrc_files(data, predictions)
    typer.echo(json.dumps(metrics, indent=2))
    if output is not None:
        atomic_write_json(output, metrics)
