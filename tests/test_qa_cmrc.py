"""Tests for spanbert.tasks.qa.cmrc: CMRC 2018 metrics equal to the official script's.

OFFICIAL below holds what the official ``cmrc2018_evaluate.py`` (ymcui/cmrc2018, commit
c0eb1b6b; both the squad-style v5-special script run under Python 3 with the minimal
py2->py3 edits, and the baseline v6 script, printed the same) printed for the prediction
files that :func:`make_predictions` builds from the real dev and trial files. In both
adapted scripts ``nltk.word_tokenize`` was replaced by ``NLTKWordTokenizer().tokenize``, as
in spanbert.tasks.qa.cmrc (punkt data cannot be downloaded here). The files were written and
scored with::

    python tests/test_qa_cmrc.py ../shared/data/cmrc2018/cmrc2018_dev.json OUT/dev
    python cmrc2018_evaluate_v6_py3.py ../shared/data/cmrc2018/cmrc2018_dev.json OUT/dev/VARIANT.json

(likewise for cmrc2018_trial.json). Every other expected value was worked out by hand; the
comment beside it shows the arithmetic.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.core.errors import SpanBertError
from spanbert.tasks.qa.cmrc import (
    _longest_common_run,
    cmrc_em,
    cmrc_f1,
    cmrc_segment,
    cmrc_strip_punctuation,
    score_cmrc,
    score_cmrc_command,
    score_cmrc_files,
)
from spanbert.tasks.qa.scoring import ScoringError

# --------------------------------------------------------------------------- the generator

VARIANTS = ("first_gold", "last_gold", "truncated", "extended", "shifted", "context_prefix", "neighbour",
            "empty", "missing", "mixed")

# How "mixed" dresses the first gold answer, by question index: Chinese and ASCII punctuation,
# case, English words (one with a period inside the English run), spaces between characters,
# "……" (not removed), an ideograph past U+9FA5 and full-width digits (neither counts as Chinese).
MIXED = (
    lambda a: a + "\u3002",  # 。
    lambda a: "\u300a" + a + "\u300b",  # 《》
    lambda a: a.upper() + " Inc. The End",
    lambda a: '"' + a + '", he said.',
    lambda a: " ".join(a),
    lambda a: a + "\u2026\u2026",
    lambda a: "The answer: " + a + "!",
    lambda a: "\u9fa6" + a + "\uff11\uff12",
    lambda a: "  " + a.lower() + "-(1)  ",
)


def _questions(data: dict) -> list[tuple[dict, str]]:
    return [(qa, para["context"]) for article in data["data"] for para in article["paragraphs"] for qa in para["qas"]]


def make_predictions(data: dict, variant: str) -> dict[str, str]:
    """Deterministic predictions ``{id: text}`` for every question of a CMRC SQuAD-format file."""
    questions = _questions(data)
    predictions = {}
    for i, (qa, context) in enumerate(questions):
        first = qa["answers"][0]
        answer = first["text"]
        if variant == "first_gold":
            text = answer
        elif variant == "last_gold":
            text = qa["answers"][-1]["text"]
        elif variant == "truncated":
            text = answer[:-1]
        elif variant == "extended":
            text = context[first["answer_start"] : first["answer_start"] + len(answer) + 3]
        elif variant == "shifted":  # the answer's window moved by -3..3 characters
            start = max(0, first["answer_start"] + i % 7 - 3)
            text = context[start : start + len(answer)]
        elif variant == "context_prefix":
            text = context[:30]
        elif variant == "neighbour":
            text = questions[(i + 1) % len(questions)][0]["answers"][0]["text"]
        elif variant == "empty":
            text = ""
        elif variant == "missing":
            if i % 3 == 0:
                continue
            text = answer
        elif variant == "mixed":
            text = MIXED[i % len(MIXED)](answer)
        else:
            raise ValueError(variant)
        predictions[qa["id"]] = text
    return predictions


# What the official script printed (AVERAGE, F1, EM as "%.3f"; TOTAL; SKIP), see the docstring.
OFFICIAL: dict[str, dict[str, dict[str, Any]]] = {
    "cmrc2018_dev.json": {
        "first_gold": {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 3219, "SKIP": 0},
        "last_gold": {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 3219, "SKIP": 0},
        "truncated": {"AVERAGE": "50.316", "F1": "86.528", "EM": "14.104", "TOTAL": 3219, "SKIP": 0},
        "extended": {"AVERAGE": "42.355", "F1": "81.882", "EM": "2.827", "TOTAL": 3219, "SKIP": 0},
        "shifted": {"AVERAGE": "42.245", "F1": "68.864", "EM": "15.626", "TOTAL": 3219, "SKIP": 0},
        "context_prefix": {"AVERAGE": "5.370", "F1": "10.740", "EM": "0.000", "TOTAL": 3219, "SKIP": 0},
        "neighbour": {"AVERAGE": "1.287", "F1": "2.575", "EM": "0.000", "TOTAL": 3219, "SKIP": 0},
        "empty": {"AVERAGE": "0.000", "F1": "0.000", "EM": "0.000", "TOTAL": 3219, "SKIP": 0},
        "missing": {"AVERAGE": "66.667", "F1": "66.667", "EM": "66.667", "TOTAL": 3219, "SKIP": 1073},
        "mixed": {"AVERAGE": "52.957", "F1": "83.639", "EM": "22.274", "TOTAL": 3219, "SKIP": 0},
    },
    "cmrc2018_trial.json": {
        "first_gold": {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 1002, "SKIP": 0},
        "last_gold": {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 1002, "SKIP": 0},
        "truncated": {"AVERAGE": "68.702", "F1": "92.793", "EM": "44.611", "TOTAL": 1002, "SKIP": 0},
        "extended": {"AVERAGE": "47.653", "F1": "89.019", "EM": "6.287", "TOTAL": 1002, "SKIP": 0},
        "shifted": {"AVERAGE": "51.775", "F1": "82.492", "EM": "21.058", "TOTAL": 1002, "SKIP": 0},
        "context_prefix": {"AVERAGE": "6.186", "F1": "12.373", "EM": "0.000", "TOTAL": 1002, "SKIP": 0},
        "neighbour": {"AVERAGE": "1.967", "F1": "3.935", "EM": "0.000", "TOTAL": 1002, "SKIP": 0},
        "empty": {"AVERAGE": "0.000", "F1": "0.000", "EM": "0.000", "TOTAL": 1002, "SKIP": 0},
        "missing": {"AVERAGE": "66.667", "F1": "66.667", "EM": "66.667", "TOTAL": 1002, "SKIP": 334},
        "mixed": {"AVERAGE": "55.509", "F1": "88.663", "EM": "22.355", "TOTAL": 1002, "SKIP": 0},
    },
}


@functools.cache
def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("file_name", "variant"), [(f, v) for f in sorted(OFFICIAL) for v in VARIANTS])
def test_matches_official_script_on_real_data(file_name: str, variant: str, shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "cmrc2018" / file_name
    if not path.exists():
        pytest.skip(f"{path} absent")
    predictions_path = tmp_path / f"{variant}.json"
    predictions_path.write_text(json.dumps(make_predictions(_load(path), variant), ensure_ascii=False),
                                encoding="utf-8")
    ours = score_cmrc_files(path, predictions_path)
    printed = {"AVERAGE": f"{ours['average']:.3f}", "F1": f"{ours['f1']:.3f}", "EM": f"{ours['exact_match']:.3f}",
               "TOTAL": ours["total"], "SKIP": ours["skipped"]}
    assert printed == OFFICIAL[file_name][variant]


def test_generator_exercises_every_case(shared_data: Path) -> None:
    """The real-data predictions contain what the comparison is meant to cover."""
    path = shared_data / "cmrc2018" / "cmrc2018_dev.json"
    if not path.exists():
        pytest.skip(f"{path} absent")
    data = _load(path)
    mixed = make_predictions(data, "mixed")
    texts = list(mixed.values())
    assert any("inc." in cmrc_segment(t) for t in texts)  # a period inside an English run (see cmrc.py)
    assert any("\u2026\u2026" in t for t in texts) and any("\u9fa6" in t for t in texts)
    empty = make_predictions(data, "truncated")
    assert "" in empty.values()  # one-character answers truncate to ""
    assert len(make_predictions(data, "missing")) < len(_questions(data))
    assert make_predictions(data, "mixed") == mixed  # deterministic


# --------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize(
    ("text", "drop", "expected"),
    [
        # one token per Chinese character; "-" is dropped and joins "ω" and "force" into one run
        ("光荣和ω-force", True, ["光", "荣", "和", "ωforce"]),
        ("光荣和ω-force", False, ["光", "荣", "和", "ω", "-", "force"]),
        # lowercased and stripped; an English run goes through the word tokenizer (',' split off)
        ("  Hello, World 2018年 ", True, ["hello", ",", "world", "2018", "年"]),
        ("《三体》：刘慈欣", True, ["三", "体", "刘", "慈", "欣"]),
        ("《三体》", False, ["《", "三", "体", "》"]),
        # U+9FA6 is past the official range: it is part of an "English" run
        ("\u9fa6中", True, ["\u9fa6", "中"]),
        ("１２月", True, ["１２", "月"]),  # full-width digits are not Chinese either
        ("北 京", True, ["北", "京"]),  # the space is a run of its own with no word
        ("the end!", True, ["the", "end", "!"]),  # ASCII '!' is not in the punctuation list
        ("", True, []),
        ("。，", True, []),
    ],
)
def test_segmentation(text: str, drop: bool, expected: list[str]) -> None:
    assert cmrc_segment(text, drop_punctuation=drop) == expected


def test_strip_punctuation() -> None:
    assert cmrc_strip_punctuation(" 《北京》：ABC ") == "北京abc"
    assert cmrc_strip_punctuation("好……") == "好……"  # the official "……" entry never matches a character
    assert cmrc_strip_punctuation("a b.") == "a b."  # inner space and ASCII '.' are kept


@given(st.lists(st.sampled_from("abc"), max_size=8), st.lists(st.sampled_from("abc"), max_size=8))
@settings(max_examples=200, deadline=None)
def test_longest_common_run_equals_brute_force(a: list[str], b: list[str]) -> None:
    brute = max((n for i in range(len(a)) for j in range(len(b)) for n in range(1, len(a) - i + 1)
                 if a[i : i + n] == b[j : j + n]), default=0)
    assert _longest_common_run(a, b) == brute == _longest_common_run(b, a)


# --------------------------------------------------------------------------- F1 / EM


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("北京大学", ["北京大学"], 1.0),
        ("清华大学", ["北京大学"], 0.5),  # common run 大学: p = r = 2/4
        # same four characters in another order: a bag of tokens would give 1.0, the longest
        # common run (北京 or 大学) gives p = r = 2/4
        ("大学北京", ["北京大学"], 0.5),
        # tokens [new, york, 市] vs [纽, 约, new, york]: run 2, p = 2/3, r = 2/4 -> 4/7
        ("New York市", ["纽约New York"], 4 / 7),
        ("北京", ["上海", "北京市"], 0.8),  # max(0, p = 1, r = 2/3 -> 0.8)
        ("。", ["北京"], 0.0),  # nothing left after punctuation removal
        ("", [""], 0.0),  # no overlap -> 0, even though both are empty
        ("《北京》", ["北京"], 1.0),
    ],
)
def test_f1(prediction: str, answers: list[str], expected: float) -> None:
    assert cmrc_f1(prediction, answers) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("《北京》", ["北京"], 1.0),  # Chinese punctuation is removed
        ("ABC", ["abc"], 1.0),  # case is ignored
        ("北 京", ["北京"], 0.0),  # an inner space counts
        ("北京.", ["北京"], 0.0),  # ASCII '.' is not removed
        ("北京", ["上海", "北京"], 1.0),
        ("", [""], 1.0),
    ],
)
def test_exact_match(prediction: str, answers: list[str], expected: float) -> None:
    assert cmrc_em(prediction, answers) == expected


def test_f1_needs_an_answer() -> None:
    with pytest.raises(ValueError):
        cmrc_f1("北京", [])


# --------------------------------------------------------------------------- totals


def _dataset(*questions: tuple[str, list[str]]) -> dict:
    qas = [{"id": qid, "question": "问", "answers": [{"text": t, "answer_start": 0} for t in answers]}
           for qid, answers in questions]
    return {"version": "v1.0", "data": [{"title": "t", "paragraphs": [{"context": "北京大学", "qas": qas}]}]}


def test_totals_by_hand() -> None:
    data = _dataset(("q1", ["北京大学"]), ("q2", ["北京大学", "北大"]), ("q3", ["北京"]), ("q1", ["北京大学"]))
    predictions = {"q1": "北京大学", "q2": "清华大学"}  # q3 missing; q1 twice in the file, counted twice
    metrics = score_cmrc(data, predictions)
    # F1: q1 1 + q2 max(0.5, 0) + q3 0 + q1 1 = 2.5 of 4; EM: 1 + 0 + 0 + 1 = 2 of 4
    assert metrics == {"exact_match": 50.0, "f1": 62.5, "average": 56.25, "total": 4, "skipped": 1}


def test_command_prints_and_writes(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    data = tmp_path / "dev.json"
    data.write_text(json.dumps(_dataset(("q1", ["北京"]), ("q2", ["上海"]))), encoding="utf-8")
    predictions = tmp_path / "pred.json"
    predictions.write_text(json.dumps({"q1": "北京"}), encoding="utf-8")
    app = typer.Typer()
    app.command()(score_cmrc_command)
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["--data", str(data), "--predictions", str(predictions), "-o", str(out)])
    assert result.exit_code == 0, result.output
    expected = {"exact_match": 50.0, "f1": 50.0, "average": 50.0, "total": 2, "skipped": 1}
    assert json.loads(result.stdout) == expected
    assert json.loads(out.read_text(encoding="utf-8")) == expected


# --------------------------------------------------------------------------- bad input


def _files(tmp_path: Path, data: Any, predictions: Any) -> tuple[Path, Path]:
    data_path, predictions_path = tmp_path / "dev.json", tmp_path / "pred.json"
    for path, value in ((data_path, data), (predictions_path, predictions)):
        path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return data_path, predictions_path


GOOD = _dataset(("q1", ["北京"]))


@pytest.mark.parametrize(
    ("data", "predictions", "culprit", "words"),
    [
        (GOOD, '{"q1": "北京",', "pred", "not valid JSON"),
        ('{"data": [', {"q1": "北京"}, "dev", "not valid JSON"),
        (GOOD, ["北京"], "pred", "JSON array"),
        (GOOD, {"q1": 3}, "pred", "not a string"),
        (GOOD, {"q1": "北京", "q9": "上海"}, "pred", "'q9'"),
        ({"data": "x"}, {}, "dev", "not a SQuAD file"),
        (_dataset(("q1", [])), {"q1": "北京"}, "dev", "no gold answer"),
        ({"version": "v1.0", "data": []}, {}, "dev", "no questions"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, data: Any, predictions: Any, culprit: str,
                                               words: str) -> None:
    data_path, predictions_path = _files(tmp_path, data, predictions)
    with pytest.raises(ScoringError) as err:
        score_cmrc_files(data_path, predictions_path)
    message = str(err.value)
    assert isinstance(err.value, SpanBertError) and "\n" not in message
    assert str(data_path if culprit == "dev" else predictions_path) in message and words in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpanBertError, match="no such data file"):
        score_cmrc_files(tmp_path / "absent.json", tmp_path / "pred.json")


if __name__ == "__main__":
    # python tests/test_qa_cmrc.py DATA.json OUT_DIR: write OUT_DIR/<variant>.json for the reference runs
    source, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:
        (out_dir / f"{name}.json").write_text(
            json.dumps(make_predictions(_load(source), name), ensure_ascii=False), encoding="utf-8")
    print(f"{len(VARIANTS)} prediction files -> {out_dir}")
