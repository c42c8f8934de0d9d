"""Tests for spanbert.tasks.qa.scoring: SQuAD v1.1 / v2.0 metrics equal to the official scripts'.

The reference numbers in tests/data/squad/official_scores.json were printed by the official
``evaluate-v1.1.py`` and ``evaluate-v2.0.py`` on predictions built by :func:`make_predictions`
(seeded, deterministic) for real dev data: the committed samples of tests/data/squad/ and,
when present, the full SQuAD v1.1 dev set, XQuAD English and the CS224n SQuAD 2.0 dev split
from the shared data folder. The file says how each number was produced. Every other
expected value below was worked out by hand, and the comment beside it shows the arithmetic.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.core.errors import SpanBertError
from spanbert.tasks.qa.scoring import (
    GoldQuestion,
    ScoringError,
    SquadGold,
    detect_version,
    exact_match_score,
    f1_score,
    gold_answers_from_squad,
    normalize_answer,
    score_squad_files,
    squad_v1_metrics,
    squad_v2_metrics,
)

SQUAD = Path(__file__).parent / "data" / "squad"
OFFICIAL = json.loads((SQUAD / "official_scores.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the generator

# How an answerable question's prediction is made from one of its gold answers (weights).
ANSWERABLE_MODES = {
    "exact": 30, "variant": 12, "article": 8, "truncate": 12, "extend": 8,
    "span": 16, "empty": 8, "blank": 6,
}
# ... and an unanswerable one's, from a plausible answer (SQuAD 2.0) or a context word.
UNANSWERABLE_MODES = {"empty": 40, "exact": 20, "span": 20, "blank": 10, "variant": 10}
# Strings that normalise to "" but are not empty (the raw text matters in the v2 sweep).
BLANKS = (" ", "the", "A", "...", "an .", "\t")


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    r = rng.random() * sum(weights.values())
    for mode, weight in weights.items():
        r -= weight
        if r < 0:
            return mode
    return mode


def _perturb(mode: str, answer: str, words: list[str], rng: random.Random) -> str:
    if mode == "exact":
        return answer
    if mode == "variant":  # case, ASCII and Unicode punctuation, whitespace
        return rng.choice([
            answer.upper(), answer.lower(), answer.title(), f'"{answer}."', f"({answer})",
            answer.replace(" ", "  "), f" {answer}\n", answer + "!?", f"\u201c{answer}\u201d",
        ])
    if mode == "article":
        return rng.choice(["the ", "The ", "a ", "An "]) + answer
    if mode == "truncate":
        tokens = answer.split()
        if len(tokens) > 1:
            cut = 1 + rng.randrange(len(tokens) - 1)
            return " ".join(tokens[cut:] if rng.random() < 0.5 else tokens[:-cut])
        return answer[: max(1, len(answer) // 2)]
    if mode == "extend":
        start = rng.randrange(len(words))
        extra = " ".join(words[start : start + 1 + rng.randrange(3)])
        return f"{answer} {extra}" if rng.random() < 0.5 else f"{extra} {answer}"
    if mode == "span":  # a random (usually wrong) span of the context
        start = rng.randrange(len(words))
        return " ".join(words[start : start + 1 + rng.randrange(8)])
    if mode == "empty":
        return ""
    if mode == "blank":
        return rng.choice(BLANKS)
    raise AssertionError(mode)


def make_predictions(
    data: dict[str, Any], seed: int, *, missing_rate: float = 0.0, na_prob_digits: int | None = None
) -> tuple[dict[str, str], dict[str, float] | None]:
    """Seeded fake predictions (and no-answer probabilities) for every question of ``data``.

    Per question, in file order: with probability ``missing_rate`` no prediction; otherwise
    an answerable question gets an exact gold answer, a case/punctuation/whitespace variant,
    an article-prefixed, truncated or extended gold answer, a random context span, "" or a
    string that normalises to ""; an unanswerable one mostly "" or a plausible answer.
    With ``na_prob_digits``, each question also gets a probability (uniform squared for
    answerable, square root for unanswerable ones) rounded to that many digits, so that many
    tie; their dict is returned in a shuffled order because ties follow the key order.
    Uses only ``random.Random(seed)``: the same seed gives the same output on any Python 3.
    """
    rng = random.Random(seed)
    predictions: dict[str, str] = {}
    na_probs: dict[str, float] = {}
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            words = paragraph["context"].split()
            for qa in paragraph["qas"]:
                golds = [a["text"] for a in qa["answers"]]
                decoys = golds or [a["text"] for a in qa.get("plausible_answers", [])] or words[:1]
                if rng.random() < missing_rate:
                    continue
                mode = _pick(rng, ANSWERABLE_MODES if golds else UNANSWERABLE_MODES)
                predictions[qa["id"]] = _perturb(mode, rng.choice(decoys), words, rng)
                if na_prob_digits is not None:
                    p = rng.random()
                    na_probs[qa["id"]] = round(p**2 if golds else p**0.5, na_prob_digits)
    if na_prob_digits is None:
        return predictions, None
    order = list(na_probs)
    rng.shuffle(order)
    return predictions, {qid: na_probs[qid] for qid in order}


# --------------------------------------------------------------------------- official numbers


def _load(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _data_path(spec: str, shared: Path | None) -> Path:
    kind, _, rel = spec.partition(":")
    if kind == "sample":
        return SQUAD / rel
    assert kind == "shared" and shared is not None
    return shared / rel


def _assert_official(ours: dict[str, float], official: dict[str, float]) -> None:
    assert list(ours) == list(official)  # same keys, in the printed order
    for key, value in official.items():
        assert abs(ours[key] - value) < 1e-9, (key, ours[key], value)


def _check_run(run: dict[str, Any], data_path: Path, tmp_path: Path) -> None:
    """Regenerate a recorded run's predictions and compare with the official output."""
    data = _load(data_path)
    predictions, na_probs = make_predictions(
        data, run["seed"], missing_rate=run["missing_rate"], na_prob_digits=run["na_prob_digits"]
    )
    gold = gold_answers_from_squad(data, source=str(data_path))
    if run["script"] == "evaluate-v1.1.py":
        ours = squad_v1_metrics(gold, predictions)
    else:
        thresh = run["na_prob_thresh"] if run["na_prob_thresh"] is not None else 1.0
        ours = squad_v2_metrics(gold, predictions, na_probs if run["use_na_probs"] else None, thresh)
    _assert_official(ours, run["official"])

    # The same through the file reader (the data file as stored: .json or .json.gz).
    pred_file = tmp_path / "pred.json"
    pred_file.write_text(json.dumps(predictions), encoding="utf-8")
    na_file = None
    if run["use_na_probs"]:
        na_file = tmp_path / "na_probs.json"
        na_file.write_text(json.dumps(na_probs), encoding="utf-8")
    version = "v1.1" if run["script"] == "evaluate-v1.1.py" else "v2.0"
    score = score_squad_files(
        data_path, pred_file, na_file,
        run["na_prob_thresh"] if run["na_prob_thresh"] is not None else 1.0, version=version,
    )
    assert score.version == version
    _assert_official(score.metrics, run["official"])


SAMPLE_RUNS = [r for r in OFFICIAL["runs"] if r["data"].startswith("sample:")]
SHARED_RUNS = [r for r in OFFICIAL["runs"] if r["data"].startswith("shared:")]


def test_recorded_runs_cover_both_scripts() -> None:
    scripts = {(r["script"], r["data"].split(":")[0]) for r in OFFICIAL["runs"]}
    assert scripts >= {
        ("evaluate-v1.1.py", "sample"), ("evaluate-v2.0.py", "sample"),
        ("evaluate-v1.1.py", "shared"), ("evaluate-v2.0.py", "shared"),
    }


@pytest.mark.parametrize("run", SAMPLE_RUNS, ids=[r["name"] for r in SAMPLE_RUNS])
def test_matches_official_scripts_on_committed_samples(run: dict[str, Any], tmp_path: Path) -> None:
    _check_run(run, _data_path(run["data"], None), tmp_path)


@pytest.mark.parametrize("run", SHARED_RUNS, ids=[r["name"] for r in SHARED_RUNS])
def test_matches_official_scripts_on_real_dev_sets(run: dict[str, Any], shared_data: Path, tmp_path: Path) -> None:
    path = _data_path(run["data"], shared_data)
    if not path.exists():
        pytest.skip(f"{path} absent")
    _check_run(run, path, tmp_path)


def test_generator_exercises_every_case() -> None:
    """The sample predictions contain what the comparison is meant to cover."""
    data = _load(SQUAD / "cs224n_dev_v2_sample.json")
    predictions, na_probs = make_predictions(data, 6, na_prob_digits=1)
    gold = gold_answers_from_squad(data)
    texts = list(predictions.values())
    assert "" in texts and any(t and not normalize_answer(t) for t in texts)
    assert any(q.has_answer and predictions[q.qid] in q.answers for q in gold.questions)
    assert any(not q.has_answer and predictions[q.qid] for q in gold.questions)
    assert na_probs is not None and len(set(na_probs.values())) < len(na_probs)  # ties
    assert make_predictions(data, 6, na_prob_digits=1) == (predictions, na_probs)  # deterministic


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Quick, Brown Fox!", "quick brown fox"),  # lower, drop ',' '!', drop "the"
        ("theater an anthem", "theater anthem"),  # articles only as whole words
        ("the-end", "theend"),  # punctuation goes first, so no article is left
        ("the, end", "end"),  # "the end" -> " end"
        ("Don't", "dont"),
        ("  a\tb \n c ", "b c"),  # "a" is an article; any whitespace run -> one space
        ("A.M.", "am"),
        ("\u201cquoted\u201d", "\u201cquoted\u201d"),  # curly quotes are not ASCII punctuation
        ("the caf\u00e9", "caf\u00e9"),
        ("thecaf\u00e9", "thecaf\u00e9"),  # \b is Unicode-aware: no boundary inside the word
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match() -> None:
    assert exact_match_score("The Beatles.", "beatles") == 1.0
    assert exact_match_score("Beatles band", "beatles") == 0.0
    assert exact_match_score("", "the") == 1.0  # both normalise to ""


def test_f1_token_overlap() -> None:
    # pred [cat, sat], gold [cat, sat, on, mat]: 2 common, P = 1, R = 1/2, F1 = 2*1*.5/1.5 = 2/3
    assert f1_score("the cat sat", "Cat sat on the mat") == pytest.approx(2 / 3)
    # multisets: pred {x:1, y:2}, gold {y:3, z:1}: 2 common, P = 2/3, R = 2/4, F1 = 4/7
    assert f1_score("x y y", "y y y z") == pytest.approx(4 / 7)
    assert f1_score("cat", "dog") == 0.0


def test_f1_empty_strings_by_version() -> None:
    # v2.0: an empty side scores 1 if both are empty, else 0.
    assert f1_score("", "") == 1.0
    assert f1_score("the", "...") == 1.0  # both normalise to no tokens
    assert f1_score("", "cat") == 0.0
    assert f1_score("cat", "") == 0.0
    # v1.1: no special case; zero overlap returns 0 before any division, even for "" vs "".
    assert f1_score("", "", version="v1.1") == 0.0
    assert f1_score("", "cat", version="v1.1") == 0.0
    assert f1_score("the cat", "cat", version="v1.1") == 1.0


def test_bad_version_is_rejected() -> None:
    with pytest.raises(ScoringError, match="unknown SQuAD version"):
        f1_score("a", "b", version="v3")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_properties(a: str, b: str) -> None:
    assert normalize_answer(normalize_answer(a)) == normalize_answer(a)
    for version in ("v1.1", "v2.0"):
        f = f1_score(a, b, version=version)
        assert 0.0 <= f <= 1.0
        assert f == f1_score(b, a, version=version)
    if exact_match_score(a, b) == 1.0:
        assert f1_score(a, b) == 1.0  # v2.0: exact implies F1 1, empty or not
        assert f1_score(a, b, version="v1.1") == float(bool(normalize_answer(a)))


# --------------------------------------------------------------------------- v1.1 metrics


def test_v1_max_over_golds_and_missing(caplog: pytest.LogCaptureFixture) -> None:
    gold = {
        "q1": ["Denver Broncos", "Broncos", "the Denver Broncos"],
        "q2": ["Paris"],
        "q3": ["1990"],
    }
    # q1 "Broncos win": vs "Broncos" P=1/2 R=1 F1=2/3; vs "Denver Broncos" P=R=1/2 F1=1/2 -> 2/3, EM 0
    # q2 exact -> EM 1, F1 1; q3 missing -> 0 (but still counted in the total of 3)
    with caplog.at_level(logging.WARNING, logger="spanbert.tasks.qa.scoring"):
        m = squad_v1_metrics(gold, {"q1": "Broncos win", "q2": "paris."})
    assert m == pytest.approx({"exact_match": 100 / 3, "f1": 100 * (2 / 3 + 1) / 3})
    assert list(m) == ["exact_match", "f1"]
    assert "1 of 3 questions" in caplog.text and "'q3'" in caplog.text


def test_v1_empty_prediction_against_article_gold() -> None:
    # gold "the" normalises to "": EM("", "the") = 1 but v1.1 F1 = 0 (no common token)
    assert squad_v1_metrics({"q": ["the"]}, {"q": ""}) == {"exact_match": 100.0, "f1": 0.0}
    # v2.0 scores the same pair 1 and 1; "the" still makes the question answerable (HasAns)
    m = squad_v2_metrics({"q": ["the"]}, {"q": ""})
    assert m == {"exact": 100.0, "f1": 100.0, "total": 1, "HasAns_exact": 100.0, "HasAns_f1": 100.0, "HasAns_total": 1}


def test_v1_duplicate_ids_count_twice() -> None:
    gold = SquadGold((GoldQuestion("q", ("a cat",)), GoldQuestion("q", ("dog",))))
    # "cat" matches the first occurrence only: (1 + 0) / 2 questions
    assert squad_v1_metrics(gold, {"q": "cat"}) == {"exact_match": 50.0, "f1": 50.0}


def test_v1_question_without_gold_answer_is_an_error() -> None:
    with pytest.raises(ScoringError, match="'q2' has no gold answer"):
        squad_v1_metrics({"q1": ["x"], "q2": []}, {"q1": "x", "q2": ""})


# --------------------------------------------------------------------------- v2.0 metrics

# q1, q2 answerable; q3, q4 unanswerable. Raw scores:
#   q1 "Paris" vs "Paris": EM 1, F1 1
#   q2 "whale" vs "blue whale": EM 0, F1 = 2*1*(1/2)/(3/2) = 2/3
#   q3 "" vs "": EM 1, F1 1
#   q4 "Lyon" vs "": EM 0, F1 0
TOY_GOLD = {"q1": ["Paris", "paris France"], "q2": ["blue whale"], "q3": [], "q4": []}
TOY_PRED = {"q1": "Paris", "q2": "whale", "q3": "", "q4": "Lyon"}
TOY_NA = {"q1": 0.1, "q2": 0.2, "q4": 0.3, "q3": 0.8}


def test_v2_without_na_probs() -> None:
    m = squad_v2_metrics(TOY_GOLD, TOY_PRED)
    assert list(m) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                       "NoAns_exact", "NoAns_f1", "NoAns_total"]
    assert m == pytest.approx({
        "exact": 50.0,  # (1 + 0 + 1 + 0) / 4
        "f1": 100 * (1 + 2 / 3 + 1 + 0) / 4,  # 66.67
        "total": 4,
        "HasAns_exact": 50.0, "HasAns_f1": 100 * (1 + 2 / 3) / 2, "HasAns_total": 2,  # 83.33
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
    })


def test_v2_na_prob_threshold() -> None:
    # thresh 0.15: q2 (0.2), q4 (0.3), q3 (0.8) are predicted unanswerable, whatever their text:
    # q2 has an answer -> 0; q4, q3 have none -> 1. exact = f1 = (1 + 0 + 1 + 1) / 4
    m = squad_v2_metrics(TOY_GOLD, TOY_PRED, TOY_NA, 0.15)
    assert (m["exact"], m["f1"], m["HasAns_exact"], m["HasAns_f1"], m["NoAns_exact"], m["NoAns_f1"]) == (
        75.0, 75.0, 50.0, 50.0, 100.0, 100.0
    )
    # thresh 0.2: strictly greater, so q2 (0.2) keeps its F1 2/3: f1 = (1 + 2/3 + 1 + 1) / 4 = 91.67
    m = squad_v2_metrics(TOY_GOLD, TOY_PRED, TOY_NA, 0.2)
    assert (m["exact"], m["f1"]) == pytest.approx((75.0, 100 * (11 / 3) / 4))
    # default thresh 1.0: nothing is overridden, same as without probabilities (plus best_*)
    m = squad_v2_metrics(TOY_GOLD, TOY_PRED, TOY_NA)
    assert (m["exact"], m["f1"]) == pytest.approx((50.0, 100 * (8 / 3) / 4))
    # without probabilities all are 0.0, so a negative threshold makes every question null:
    # q1, q2 -> 0, q3, q4 -> 1: 50 / 50
    m = squad_v2_metrics(TOY_GOLD, TOY_PRED, None, -0.5)
    assert (m["exact"], m["f1"], m["HasAns_f1"], m["NoAns_f1"]) == (50.0, 50.0, 0.0, 100.0)


def test_v2_best_thresholds() -> None:
    # Start: 2 unanswerable questions, i.e. everything predicted "" scores 2. Sweep by na_prob:
    #   exact: q1 (0.1) +1 -> 3 (best, t=0.1); q2 (0.2) +0 -> 3 (not better); q4 (0.3) "Lyon" -1 -> 2;
    #          q3 (0.8) "" +0 -> 2.  best_exact = 3/4 = 75, thresh 0.1
    #   f1:    q1 +1 -> 3 (t=0.1); q2 +2/3 -> 3.667 (best, t=0.2); q4 -1 -> 2.667; q3 -> 2.667.
    #          best_f1 = 3.667/4 = 91.67, thresh 0.2
    m = squad_v2_metrics(TOY_GOLD, TOY_PRED, TOY_NA)
    assert list(m)[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
    assert m["best_exact"] == 75.0 and m["best_exact_thresh"] == 0.1
    assert m["best_f1"] == pytest.approx(100 * (11 / 3) / 4) and m["best_f1_thresh"] == 0.2


def test_v2_best_threshold_ties_follow_key_order() -> None:
    # qa answerable and right, qb unanswerable but answered "x"; both at 0.5. Start = 1.
    gold = {"qa": ["yes"], "qb": []}
    pred = {"qa": "yes", "qb": "x"}
    # qa first: 1 + 1 = 2 (best, t=0.5), then qb: 2 - 1 = 1. best = 2/2 = 100 at 0.5 -- a score
    # no threshold gives (at 0.5 both are answered: 1 of 2 right).
    m = squad_v2_metrics(gold, pred, {"qa": 0.5, "qb": 0.5})
    assert (m["best_exact"], m["best_exact_thresh"]) == (100.0, 0.5)
    # qb first: 1 - 1 = 0, then 0 + 1 = 1, never above the start: best = 1/2 = 50 at 0.0.
    m = squad_v2_metrics(gold, pred, {"qb": 0.5, "qa": 0.5})
    assert (m["best_exact"], m["best_exact_thresh"]) == (50.0, 0.0)
    assert m["exact"] == 50.0


def test_v2_best_sweep_uses_raw_prediction_text() -> None:
    # qn unanswerable, answered "the": EM("the", "") = 1, but the sweep sees a non-empty text.
    # Start 1; qn (0.1): -1 -> 0; qa (0.5): +1 -> 1, not above 1: best_exact = 1/2 = 50 at 0.0,
    # below the plain exact of (1 + 1) / 2 = 100.
    m = squad_v2_metrics({"qa": ["yes"], "qn": []}, {"qa": "yes", "qn": "the"}, {"qn": 0.1, "qa": 0.5})
    assert (m["exact"], m["best_exact"], m["best_exact_thresh"]) == (100.0, 50.0, 0.0)


def test_v2_is_impossible_flag_is_ignored() -> None:
    data = {"version": "v2.0", "data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "q", "question": "?", "answers": [{"text": "cat", "answer_start": 0}], "is_impossible": True},
    ]}]}]}
    gold = gold_answers_from_squad(data)
    assert detect_version(gold) == "v2.0"
    m = squad_v2_metrics(gold, {"q": "cat"})
    assert m["HasAns_total"] == 1 and "NoAns_total" not in m and m["exact"] == 100.0


def test_v2_only_no_answer_split() -> None:
    m = squad_v2_metrics({"q1": [], "q2": []}, {"q1": "", "q2": "no"})
    assert m == {"exact": 50.0, "f1": 50.0, "total": 2, "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2}


def test_v2_missing_prediction_is_an_error() -> None:
    # The official script would drop q2 from "total", then fail with a KeyError.
    with pytest.raises(ScoringError, match=r"1 question of the data has no prediction, e\.g\. 'q2'"):
        squad_v2_metrics({"q1": ["x"], "q2": []}, {"q1": "x"})


def test_v2_gold_answers_normalising_to_empty() -> None:
    gold = gold_answers_from_squad({"data": [{"paragraphs": [{"qas": [
        {"id": "q", "answers": [{"text": "The"}, {"text": "Rome"}]},
        {"id": "r", "answers": [{"text": "..."}]},
    ]}]}]})
    assert [q.v2_answers for q in gold.questions] == [("Rome",), ("",)]
    assert [q.has_answer for q in gold.questions] == [True, True]


# --------------------------------------------------------------------------- files


def _write(path: Path, obj: Any) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


TINY = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "a cat sat", "qas": [
    {"id": "q1", "question": "who?", "answers": [{"text": "cat", "answer_start": 2}]},
    {"id": "q2", "question": "did?", "answers": [{"text": "sat", "answer_start": 6}]},
]}]}]}


def test_score_files_auto_version_and_gzip(tmp_path: Path) -> None:
    data = _write(tmp_path / "dev.json", TINY)
    gz = tmp_path / "dev.json.gz"
    gz.write_bytes(gzip.compress(data.read_bytes()))
    pred = _write(tmp_path / "pred.json", {"q1": "the cat", "q2": "sits"})
    for path in (data, gz):
        score = score_squad_files(path, pred)
        assert score.version == "v1.1"
        assert score.metrics == {"exact_match": 50.0, "f1": 50.0}
    forced = score_squad_files(data, pred, version="v2.0")
    assert forced.version == "v2.0" and forced.metrics["HasAns_total"] == 2

    sample = SQUAD / "cs224n_dev_v2_sample.json"
    predictions, _ = make_predictions(_load(sample), 0)
    score = score_squad_files(sample, _write(tmp_path / "p2.json", predictions))
    assert score.version == "v2.0" and score.metrics["NoAns_total"] == 11


def _error(tmp_path: Path, **files: Any) -> str:
    """Run score_squad_files on the given files and return its one-line error message."""
    paths = {name: _write(tmp_path / f"{name.upper()}.json", obj) for name, obj in files.items() if obj is not None}
    data = paths.get("dev", tmp_path / "DEV.json")
    pred = paths.get("pred", tmp_path / "PRED.json")
    with pytest.raises(ScoringError) as info:
        score_squad_files(data, pred, paths.get("null_odds"), version="v2.0" if "null_odds" in paths else "auto")
    message = str(info.value)
    assert isinstance(info.value, SpanBertError) and "\n" not in message
    return message


GOOD_PRED = {"q1": "cat", "q2": ""}


@pytest.mark.parametrize(
    ("files", "culprit", "expected"),
    [
        ({"pred": GOOD_PRED}, "DEV.json", "no such data file"),
        ({"dev": TINY}, "PRED.json", "no such predictions file"),
        ({"dev": '{"version": "1.1",\n "data": [,]}', "pred": GOOD_PRED}, "DEV.json",
         "not valid JSON (Expecting value at line 2, column 11)"),
        ({"dev": TINY, "pred": '{"q1": "cat"'}, "PRED.json",
         "not valid JSON (Expecting ',' delimiter at line 1, column 13)"),
        ({"dev": TINY, "pred": ["cat", "sat"]}, "PRED.json",
         "expected a JSON object mapping question id to answer text, got a JSON array"),
        ({"dev": TINY, "pred": {"q1": "cat", "q2": 3}}, "PRED.json",
         "1 prediction is not a string, e.g. 'q2' is a JSON number"),
        ({"dev": TINY, "pred": {"q1": "x", "abc": "x", "abd": "y", "abe": "z"}}, "PRED.json",
         "3 prediction ids are not questions of {DEV}, e.g. 'abc'"),
        ({"dev": {"version": "1.1", "articles": []}, "pred": GOOD_PRED}, "DEV.json",
         "not a SQuAD file: expected a JSON object with a 'data' list"),
        ({"dev": {"data": [{"title": "t"}]}, "pred": GOOD_PRED}, "DEV.json", "data[0] has no 'paragraphs' list"),
        ({"dev": {"data": [{"paragraphs": [{"context": "c"}]}]}, "pred": GOOD_PRED}, "DEV.json",
         "data[0].paragraphs[0] has no 'qas' list"),
        ({"dev": {"data": [{"paragraphs": [{"qas": [{"id": "q1", "answers": []}, {"answers": []}]}]}]},
          "pred": GOOD_PRED}, "DEV.json", "data[0].paragraphs[0].qas[1] has no 'id'"),
        ({"dev": {"data": [{"paragraphs": [{"qas": [{"id": 7, "answers": []}]}]}]}, "pred": GOOD_PRED}, "DEV.json",
         "data[0].paragraphs[0].qas[0] has an 'id' that is a JSON number, not a string"),
        ({"dev": {"data": [{"paragraphs": [{"qas": [{"id": "q1"}]}]}]}, "pred": GOOD_PRED}, "DEV.json",
         "question 'q1' (data[0].paragraphs[0].qas[0]) has no 'answers' list"),
        ({"dev": {"data": [{"paragraphs": [{"qas": [{"id": "q1", "answers": [{"answer_start": 0}]}]}]}]},
          "pred": GOOD_PRED}, "DEV.json",
         "question 'q1' (data[0].paragraphs[0].qas[0]): answers[0] has no 'text' string"),
        ({"dev": TINY, "pred": GOOD_PRED, "null_odds": {"q1": 0.5}}, "NULL_ODDS.json",
         "1 question of {DEV} has no no-answer probability, e.g. 'q2'"),
        ({"dev": TINY, "pred": GOOD_PRED, "null_odds": {"q1": 0.5, "q2": "0.3"}}, "NULL_ODDS.json",
         "1 no-answer probability is not a number, e.g. 'q2': '0.3'"),
        ({"dev": TINY, "pred": GOOD_PRED, "null_odds": {"q1": True, "q2": None}}, "NULL_ODDS.json",
         "2 no-answer probabilities are not a number, e.g. 'q1': True"),
        ({"dev": TINY, "pred": GOOD_PRED, "null_odds": {"q1": float("nan"), "q2": 0.1}}, "NULL_ODDS.json",
         "1 no-answer probability is not a number, e.g. 'q1': nan"),
        ({"dev": TINY, "pred": GOOD_PRED, "null_odds": [0.5]}, "NULL_ODDS.json",
         "expected a JSON object mapping question id to a no-answer probability, got a JSON array"),
    ],
)
def test_file_errors(tmp_path: Path, files: dict[str, Any], culprit: str, expected: str) -> None:
    message = _error(tmp_path, **files)
    assert message == f"{tmp_path / culprit}: " + expected.format(DEV=tmp_path / "DEV.json")


def test_more_file_errors(tmp_path: Path) -> None:
    data = _write(tmp_path / "DEV.json", TINY)
    pred = _write(tmp_path / "PRED.json", GOOD_PRED)
    # missing na_probs file
    with pytest.raises(ScoringError, match=r"ODDS\.json: no such no-answer probabilities file"):
        score_squad_files(data, pred, tmp_path / "ODDS.json", version="v2.0")
    # v2.0 without a prediction for q2 names both files
    short = _write(tmp_path / "SHORT.json", {"q1": "cat"})
    with pytest.raises(ScoringError, match=r"SHORT\.json: 1 question of .*DEV\.json has no prediction, e\.g\. 'q2'"):
        score_squad_files(data, short, version="v2.0")
    # no-answer probabilities on data scored as v1.1
    odds = _write(tmp_path / "NULL.json", {"q1": 0.1, "q2": 0.9})
    with pytest.raises(ScoringError, match=r"NULL\.json: no-answer probabilities only apply to SQuAD v2\.0"):
        score_squad_files(data, pred, odds)
    with pytest.raises(ScoringError, match=r"na_prob_thresh=0\.5 only applies to SQuAD v2\.0, but .*DEV\.json"):
        score_squad_files(data, pred, na_prob_thresh=0.5)
    # a broken gzip file, non-UTF-8 bytes, a directory, an unknown version, no questions
    bad_gz = tmp_path / "BAD.json.gz"
    bad_gz.write_bytes(gzip.compress(b'{"data": []}')[:-6])
    with pytest.raises(ScoringError, match=r"BAD\.json\.gz: not a valid gzip file"):
        score_squad_files(bad_gz, pred)
    latin = tmp_path / "LATIN.json"
    latin.write_bytes(b'{"q1": "caf\xe9"}')
    with pytest.raises(ScoringError, match=r"LATIN\.json: not UTF-8 text"):
        score_squad_files(data, latin)
    with pytest.raises(ScoringError, match="is a directory"):
        score_squad_files(tmp_path, pred)
    with pytest.raises(ScoringError, match="unknown SQuAD version 'v3'"):
        score_squad_files(data, pred, version="v3")  # type: ignore[arg-type]
    empty = _write(tmp_path / "EMPTY.json", {"version": "1.1", "data": []})
    with pytest.raises(ScoringError, match=r"EMPTY\.json: no questions to score"):
        score_squad_files(empty, _write(tmp_path / "NONE.json", {}))


def test_detect_version() -> None:
    def gold(version: str | None, qa: dict[str, Any]) -> SquadGold:
        data: dict[str, Any] = {"data": [{"paragraphs": [{"qas": [qa]}]}]}
        if version is not None:
            data["version"] = version
        return gold_answers_from_squad(data)

    answered = {"id": "q", "answers": [{"text": "x"}]}
    assert detect_version(gold("1.1", answered)) == "v1.1"
    assert detect_version(gold(None, answered)) == "v1.1"
    assert detect_version(gold("v2.0", answered)) == "v2.0"
    assert detect_version(gold("1.1", {**answered, "is_impossible": False})) == "v2.0"
    assert detect_version(gold("1.1", {"id": "q", "answers": []})) == "v2.0"  # v1.1 would crash


def test_fit_null_threshold_groups_ties_and_can_answer_nothing() -> None:
    from spanbert.tasks.qa.scoring import fit_null_threshold

    gold = {"a": ["Paris"], "b": [], "c": ["Rome"], "d": []}
    spans = {"a": "Paris", "b": "Lyon", "c": "Milan", "d": "Nice"}
    # all unanswered: b, d right -> 2/4. Answer a (odds -1): +1 -> 3/4. Then b and c share
    # odds 0: c scores 0 and b loses 1 -> 2/4, so the best threshold stays -1 (answer only a).
    odds = {"a": -1.0, "b": 0.0, "c": 0.0, "d": 2.0}
    assert fit_null_threshold(gold, spans, odds) == (-1.0, 75.0)
    assert squad_v2_metrics(gold, spans, odds, na_prob_thresh=-1.0)["f1"] == 75.0
    # when answering never helps, the threshold lies below every odds value
    spans = {"a": "Lyon", "b": "Lyon", "c": "Milan", "d": "Nice"}
    t, f1 = fit_null_threshold(gold, spans, odds)
    assert t < -1.0 and f1 == 50.0
    assert squad_v2_metrics(gold, spans, odds, na_prob_thresh=t)["f1"] == 50.0
