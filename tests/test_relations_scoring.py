"""Relation metrics: the official SemEval-2010 Task 8 scorer's numbers (recorded from the real Perl
script v1.2 in tests/data/relations/official_scores.json), hand-computed cases, TACRED micro
semantics, and the ``spanbert score semeval`` command."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from spanbert.cli import main
from spanbert.core.errors import CorpusError
from spanbert.tasks.relations.scoring import (
    SEMEVAL_LABELS,
    read_answer_file,
    relation_metrics,
    score_semeval,
    score_semeval_files,
)

from .conftest import DATA, shared_data_dir

REL = DATA / "relations"
OFFICIAL = json.loads((REL / "official_scores.json").read_text())
SAMPLES = "sample:semeval_train_sample.txt+semeval_test_sample.txt"
TEST_KEY = "shared:semeval2010_task8/TEST_FILE_FULL.TXT"
# name, key source, kind of predictions, seed, allow missing ids
RUNS = [
    ("sample-perfect", SAMPLES, "perfect", 0, False),
    ("sample-random", SAMPLES, "random", 1, False),
    ("sample-flipped", SAMPLES, "flipped", 0, False),
    ("sample-all-other", SAMPLES, "all_other", 0, False),
    ("sample-mixed", SAMPLES, "mixed", 2, False),
    ("sample-partial", SAMPLES, "partial", 3, True),
    ("test-perfect", TEST_KEY, "perfect", 0, False),
    ("test-random", TEST_KEY, "random", 11, False),
    ("test-flipped", TEST_KEY, "flipped", 0, False),
    ("test-all-other", TEST_KEY, "all_other", 0, False),
    ("test-mixed", TEST_KEY, "mixed", 12, False),
    ("test-partial", TEST_KEY, "partial", 13, True),
]
ALL_LABELS = sorted(SEMEVAL_LABELS)


def key_labels(source: str, sample_dir: Path, shared_dir: Path) -> tuple[list[str], list[str]]:
    """Ids and directed labels of SemEval files: the line after each ``id<TAB>"sentence"`` line."""
    kind, names = source.split(":", 1)
    ids, labels = [], []
    for name in names.split("+"):
        path = (sample_dir if kind == "sample" else shared_dir) / name
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            m = re.match(r'^(\d+)\t"', line)
            if m:
                ids.append(m.group(1))
                labels.append(lines[n + 1].strip())
    return ids, labels


def flip(label: str) -> str:
    return label.replace("(e1,e2)", "(x)").replace("(e2,e1)", "(e1,e2)").replace("(x)", "(e2,e1)")


def make_predictions(ids: list[str], labels: list[str], kind: str, seed: int) -> dict[str, str]:
    """Seeded predictions of a given character for the key ``ids``/``labels`` (id -> label).

    perfect; all_other; flipped (every direction swapped); random (uniform over the 19 labels);
    mixed (55% right, 15% right relation with the other direction, 15% a random label, 15% Other);
    partial (mixed, with about 20% of the ids left out).
    """
    rng = random.Random(seed)
    out = {}
    for i, gold in zip(ids, labels):
        if kind == "perfect":
            label = gold
        elif kind == "all_other":
            label = "Other"
        elif kind == "flipped":
            label = flip(gold)
        elif kind == "random":
            label = rng.choice(ALL_LABELS)
        elif kind in ("mixed", "partial"):
            r = rng.random()
            if r < 0.55:
                label = gold
            elif r < 0.70:
                label = flip(gold) if gold != "Other" else rng.choice(ALL_LABELS)
            elif r < 0.85:
                label = rng.choice(ALL_LABELS)
            else:
                label = "Other"
            if kind == "partial" and rng.random() < 0.2:
                continue
        else:
            raise ValueError(kind)
        out[i] = label
    return out


def _runs():
    for run in OFFICIAL["runs"]:
        yield pytest.param(run, id=run["name"])


def _fmt(x: float) -> str:
    return f"{x:.2f}"


@pytest.mark.parametrize("run", list(_runs()))
def test_equals_the_official_perl_scorer(run):
    """Every number the Perl script printed (3 evaluations, per relation, micro, macro, accuracies)."""
    if run["key"].startswith("shared:") and not (shared_data_dir() / "semeval2010_task8").is_dir():
        pytest.skip("shared SemEval data absent; set SPANBERT_SHARED_DATA")
    ids, labels = key_labels(run["key"], REL, shared_data_dir())
    proposed = make_predictions(ids, labels, run["kind"], run["seed"])
    assert len(proposed) == run["predicted_ids"] and len(ids) == run["key_ids"]
    ours = score_semeval(dict(zip(ids, labels)), proposed)
    assert _fmt(ours["official_macro_f1"]) == run["official_macro_f1"]
    for name, theirs in run["evaluations"].items():
        mine = ours["evaluations"][name]
        for acc in ("coverage", "accuracy", "accuracy_skipped_as_wrong", "accuracy_skipped_as_other"):
            assert f"{mine[acc]:5.2f}".strip() == theirs[acc]["value"], (name, acc)
        assert theirs["accuracy"]["numerator"] == mine["correct"]
        for part in ("precision", "recall", "f1"):
            assert _fmt(mine["micro"][part]) == theirs["micro"][part], (name, "micro", part)
            assert _fmt(mine["macro"][part]) == theirs["macro"][part], (name, "macro", part)
        for count in ("correct", "proposed", "answer"):
            assert mine["micro"][count] == theirs["micro"][count], (name, count)
        assert set(mine["per_relation"]) == {k.replace("_Other", "Other") for k in theirs["per_relation"]}
        for label, row in theirs["per_relation"].items():
            m = mine["per_relation"][label.replace("_Other", "Other")]
            assert (m["correct"], m["proposed"], m["answer"]) == (row["correct"], row["proposed"], row["answer"]), (name, label)
            assert m["wrong_direction"] == row.get("wrong_direction", 0)
            assert (_fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"])) == (row["precision"], row["recall"], row["f1"])


def test_official_runs_cover_the_interesting_cases():
    by_name = {r["name"]: r for r in OFFICIAL["runs"]}
    assert by_name["test-perfect"]["official_macro_f1"] == "100.00"
    assert by_name["test-all-other"]["official_macro_f1"] == "0.00"
    assert by_name["test-flipped"]["official_macro_f1"] == "0.00"  # right relation, wrong direction: wrong
    flipped = by_name["test-flipped"]["evaluations"]
    assert flipped["9+1_way_undirected"]["macro"]["f1"] == "100.00"
    assert flipped["9+1_way_directed_official"]["micro"]["proposed"] == 2717 - 454  # every non-Other is a wrong guess
    assert by_name["test-partial"]["evaluations"]["19_way"]["coverage"]["value"] != "100.00"
    assert by_name["sample-random"]["warnings"]  # labels absent from the (small) key


def _hand_key():
    # 2 x A(e1,e2), 1 x A(e2,e1), 2 x B(e1,e2), 1 x Other -- using real SemEval relation names
    a, ar, b = "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Message-Topic(e1,e2)"
    key = {"1": a, "2": a, "3": ar, "4": b, "5": b, "6": "Other"}
    return key, a, ar, b


def test_hand_computed_wrong_direction_and_macro_average():
    key, a, ar, b = _hand_key()
    proposed = {"1": a, "2": ar, "3": ar, "4": b, "5": "Other", "6": b}
    s = score_semeval(key, proposed)
    official = s["evaluations"]["9+1_way_directed_official"]
    ce, mt = official["per_relation"]["Cause-Effect"], official["per_relation"]["Message-Topic"]
    # Cause-Effect: correct 1 and 3; id 2 has the wrong direction -> not correct, but in P's denominator
    assert (ce["correct"], ce["proposed"], ce["wrong_direction"], ce["answer"]) == (2, 2, 1, 3)
    assert ce["precision"] == pytest.approx(100 * 2 / 3) and ce["recall"] == pytest.approx(100 * 2 / 3)
    # Message-Topic: correct 4; id 6 (gold Other) proposed Message-Topic: P = 1/2, R = 1/2
    assert (mt["correct"], mt["proposed"], mt["answer"]) == (1, 2, 2)
    assert mt["f1"] == pytest.approx(50.0)
    macro_f1 = (100 * 2 / 3 + 50.0) / 2
    assert s["official_macro_f1"] == pytest.approx(macro_f1)
    # macro F1 is the mean of F1s, not the F1 of the macro P and R
    assert s["macro_precision"] == pytest.approx((100 * 2 / 3 + 50) / 2)
    # micro over non-Other: correct 3, proposed 2+1+2 = 5, gold 5
    assert s["micro_precision"] == pytest.approx(60.0) and s["micro_recall"] == pytest.approx(60.0)
    assert s["accuracy"] == pytest.approx(100 * 3 / 6)  # ids 1, 3, 4
    # 19-way: directed labels; Cause-Effect(e2,e1) proposed for 2 and 3, correct for 3
    c19 = s["evaluations"]["19_way"]["per_relation"][ar]
    assert (c19["correct"], c19["proposed"], c19["answer"]) == (1, 2, 1)


def test_macro_f1_differs_from_f1_of_macro_p_and_r():
    key, a, ar, b = _hand_key()
    proposed = {"1": a, "2": a, "3": ar, "4": "Other", "5": "Other", "6": "Other"}  # B never predicted
    s = score_semeval(key, proposed)
    assert s["official_macro_f1"] == pytest.approx(50.0)  # (100 + 0) / 2
    p, r = s["macro_precision"], s["macro_recall"]
    assert (p, r) == (pytest.approx(50.0), pytest.approx(50.0))
    proposed["4"] = b
    s = score_semeval(key, proposed)
    p, r = s["macro_precision"], s["macro_recall"]  # B: P 100, R 50 -> F1 66.67
    assert s["official_macro_f1"] == pytest.approx((100 + 200 / 3) / 2)
    assert 2 * p * r / (p + r) != pytest.approx(s["official_macro_f1"])


def test_relations_absent_from_the_key_and_skipped_ids_count_as_other():
    key, a, ar, b = _hand_key()
    proposed = {"1": a, "2": "Product-Producer(e1,e2)", "3": ar, "4": b, "6": "Instrument-Agency(e2,e1)"}  # 5 skipped
    s = score_semeval(key, proposed)
    official = s["evaluations"]["9+1_way_directed_official"]
    assert set(official["per_relation"]) == {"Cause-Effect", "Message-Topic", "Other"}
    assert official["macro"]["relations"] == 2
    assert official["micro"]["proposed"] == 3  # Product-Producer and Instrument-Agency guesses are ignored
    assert s["coverage"] == pytest.approx(100 * 5 / 6)
    assert official["accuracy"] == pytest.approx(100 * 3 / 5)
    assert official["accuracy_skipped_as_wrong"] == pytest.approx(100 * 3 / 6)
    # skipped 5 is gold B, not Other: "as Other" adds nothing
    assert official["accuracy_skipped_as_other"] == pytest.approx(100 * 3 / 6)


def test_tacred_micro_semantics():
    gold = ["per:title", "no_relation", "org:founded", "no_relation", "per:title"]
    pred = ["per:title", "org:founded", "no_relation", "no_relation", "per:age"]
    m = relation_metrics(gold, pred, "no_relation")
    # guesses: 1, 2, 5 -> correct 1; gold relations: 1, 3, 5
    assert (m["correct"], m["guessed"], m["gold"]) == (1, 3, 3)
    assert m["micro_precision"] == pytest.approx(100 / 3) and m["micro_recall"] == pytest.approx(100 / 3)
    assert m["accuracy"] == pytest.approx(40.0)
    none = relation_metrics(gold, ["no_relation"] * 5, "no_relation")
    assert none["micro_precision"] == 100.0 and none["micro_recall"] == 0.0 and none["micro_f1"] == 0.0


def _write(path: Path, rows: list[tuple[str, str]], newline: str = "\n") -> Path:
    path.write_text("".join(f"{i}\t{label}{newline}" for i, label in rows), newline="")
    return path


def test_score_semeval_command_prints_and_writes_the_same_json(tmp_path, capsys):
    key, a, ar, b = _hand_key()
    k = _write(tmp_path / "key.txt", list(key.items()), "\r\n")
    p = _write(tmp_path / "pred.txt", [("1", a), ("2", ar), ("3", ar), ("4", b), ("5", "Other"), ("6", b)])
    out = tmp_path / "m" / "metrics.json"
    assert main(["score", "semeval", "--key", str(k), "--predictions", str(p), "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["official_macro_f1"] == pytest.approx((100 * 2 / 3 + 50.0) / 2)


@pytest.mark.parametrize("content, message", [
    ("1\tCause-Effect(e1,e2)\n2\tCause-Effect\n", r"pred\.txt:2: 'Cause-Effect' is not a SemEval-2010 Task 8 label \(undirected"),
    ("1\tCause-Effect(e1,e2)\n1\tOther\n", r"pred\.txt:2: id 1 already given on line 1"),
    ("1 Other\n", r"pred\.txt:1: expected 'id<TAB>label'"),
    ("1\tOther\n9\tOther\n", r"pred\.txt:2: id 9 is not in the key"),
    ("1\tOther\n", r"pred\.txt: no prediction for 1 id\(s\) of the key, first 2 \(.*key\.txt:2\)"),
])
def test_score_semeval_bad_files_give_one_line_and_exit_2(tmp_path, capsys, content, message):
    k = _write(tmp_path / "key.txt", [("1", "Other"), ("2", "Message-Topic(e2,e1)")])
    p = tmp_path / "pred.txt"
    p.write_text(content)
    assert main(["score", "semeval", "--key", str(k), "--predictions", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_allow_missing_scores_skipped_ids(tmp_path):
    k = _write(tmp_path / "key.txt", [("1", "Other"), ("2", "Message-Topic(e2,e1)")])
    p = _write(tmp_path / "pred.txt", [("2", "Message-Topic(e2,e1)")])
    s = score_semeval_files(k, p, allow_missing=True)
    assert s["coverage"] == 50.0 and s["official_macro_f1"] == 100.0
    with pytest.raises(CorpusError):
        score_semeval_files(k, p)


def test_answer_file_reader_accepts_crlf_and_no_final_newline(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"8001\tMessage-Topic(e1,e2)\r\n8002\tOther")
    answers, lines = read_answer_file(p)
    assert answers == {"8001": "Message-Topic(e1,e2)", "8002": "Other"} and lines == {"8001": 1, "8002": 2}
