"""GAP: the reader (and its one-line errors), the name-matching rule, the scorer against
scikit-learn's precision/recall/F1 and hand counts, the real files' published statistics, and
`evaluate gap` / `score gap` through the CLI agreeing with each other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spanbert.cli import main
from spanbert.tasks.coref.gap import (GapExample, gap_decisions, mention_matches, read_gap, read_gap_response, score_gap,
                                write_gap_response)
from spanbert.core.errors import CorpusError

HEADER = "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL"


def _fields(id_, text, pronoun, a, a_coref, b, b_coref):
    return [id_, text, pronoun, str(text.rindex(pronoun)), a, str(text.index(a)), a_coref, b, str(text.index(b)),
            b_coref, "http://example.org"]


FIELDS = [
    _fields("t-1", 'Ann Lee met "Mary Stone" in Paris. She was a painter.', "She", "Ann Lee", "TRUE", "Mary Stone", "FALSE"),
    _fields("t-2", "Tom Hart called Bill Ray because his car broke down.", "his", "Tom Hart", "TRUE", "Bill Ray", "FALSE"),
    _fields("t-3", "Jo Park thanked Kim Sun, and Kim's mother hugged her.", "her", "Jo Park", "FALSE", "Kim Sun", "TRUE"),
]
ROWS = ["\t".join(f) for f in FIELDS]


def _changed(index: int, value: str) -> str:
    fields = list(FIELDS[1])
    fields[index] = value
    return "\t".join(fields)


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "gap.tsv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def test_reader_keeps_quotes_and_offsets(key):
    examples = read_gap(key)
    assert [e.id for e in examples] == ["t-1", "t-2", "t-3"]
    first = examples[0]
    assert '"Mary Stone"' in first.text  # quoting disabled: the quotes are text
    for e in examples:
        for which, name in (("pronoun", e.pronoun), ("a", e.a), ("b", e.b)):
            s, t = e.span(which)
            assert e.text[s:t] == name
    assert [(e.a_coref, e.b_coref, e.gender) for e in examples] == [
        (True, False, "feminine"), (True, False, "masculine"), (False, True, "feminine")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_changed(5, "1"), "A-offset 1 does not point at 'Tom Hart' in the text"),
        (_changed(3, "999"), "Pronoun-offset 999 does not point at 'his' in the text"),
        (_changed(5, "zero"), "A-offset must be an integer, got 'zero'"),
        (_changed(6, "yes"), "A-coref must be TRUE or FALSE, got 'yes'"),
        ("t-9\tonly three\tfields", "expected 10 or more TAB-separated fields, got 3"),
        (ROWS[0], "ID 't-1' repeats an earlier row"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.tsv"
    path.write_text("\n".join([HEADER, ROWS[0], line]) + "\n")
    with pytest.raises(CorpusError) as err:
        read_gap(path)
    assert str(err.value) == f"{path}:3: {message}"


def test_bad_pronoun_header_and_empty_file(tmp_path):
    text = "Ann saw Bo and it was late."
    path = tmp_path / "it.tsv"
    path.write_text(HEADER + "\n" + "\t".join(["x", text, "it", str(text.index("it")), "Ann", "0", "TRUE", "Bo", "8",
                                               "FALSE", "u"]) + "\n")
    with pytest.raises(CorpusError, match=r":2: pronoun 'it' is not one of she, her"):
        read_gap(path)
    path.write_text("id\ttext\n")
    with pytest.raises(CorpusError, match=r":1: expected the GAP header"):
        read_gap(path)
    path.write_text(HEADER + "\n")
    with pytest.raises(CorpusError, match="no GAP examples"):
        read_gap(path)


def test_name_matching_rule():
    text = "Cheryl Cassidy, Pauline's friend, met actress Pauline Moore."
    cheryl = (0, 14)
    pauline = (16, 23)
    moore = (text.index("Pauline Moore"), text.index("Pauline Moore") + 13)
    assert mention_matches(cheryl, cheryl, text)
    assert mention_matches((7, 14), cheryl, text)  # "Cassidy" inside the name
    assert mention_matches((0, 32), cheryl, text)  # "Cheryl Cassidy, Pauline's friend": starts at the name
    assert not mention_matches((16, 32), pauline, text)  # "Pauline's friend" is not Pauline
    actress = (text.index("actress"), moore[1])
    assert mention_matches(actress, moore, text)  # head-final phrase ending at the name
    assert not mention_matches((40, 45), cheryl, text)  # disjoint


def test_decisions_follow_the_pronouns_cluster(key):
    ex = read_gap(key)[2]  # "Jo Park thanked Kim Sun, and Kim's mother hugged her."
    pron = ex.span("pronoun")
    jo, kim = ex.span("a"), ex.span("b")
    kims = ex.text.index("Kim's")
    kims_mother = (kims, ex.text.index("mother") + len("mother"))
    # the pronoun with "Kim's mother": neither name (the possessive phrase is not Kim)
    assert gap_decisions(ex, [[kims_mother, pron]]) == (False, False)
    # "Kim Sun", the "Kim" of "Kim's" (outside the B span, so it adds nothing) and the pronoun
    assert gap_decisions(ex, [[kim, (kims, kims + 3), pron], [jo]]) == (False, True)
    assert gap_decisions(ex, [[jo, pron], [kim]]) == (True, False)
    assert gap_decisions(ex, [[jo, kim]]) == (False, False)  # the pronoun in no cluster
    assert gap_decisions(ex, []) == (False, False)
    # one cluster with both names: GAP's names are different people, so only the one mentioned
    # nearest the pronoun is kept (Kim Sun ends 26 characters before "her", Jo Park 42)
    assert gap_decisions(ex, [[jo, kim, pron]]) == (False, True)
    assert gap_decisions(ex, [[jo, kim, pron]], at_most_one=False) == (True, True)
    assert gap_decisions(ex, [[kim, jo, pron]]) == (False, True)  # the order inside the cluster does not matter


def test_scores_match_scikit_learn_and_the_missing_answer_rule():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    examples, response = [], {}
    for i in range(300):
        gold = tuple(bool(x) for x in rng.integers(0, 2, 2))
        pron = ["she", "he", "her", "his", "him", "hers"][i % 6]
        examples.append(GapExample(f"x{i}", "", pron, 0, "", 0, gold[0], "", 0, gold[1]))
        response[f"x{i}"] = tuple(bool(x) for x in rng.integers(0, 2, 2))
    scores = score_gap(examples, response).to_json()
    for group, keep in (("overall", lambda e: True), ("feminine", lambda e: e.gender == "feminine"),
                        ("masculine", lambda e: e.gender == "masculine")):
        y = [g for e in examples if keep(e) for g in (e.a_coref, e.b_coref)]
        p = [s for e in examples if keep(e) for s in response[e.id]]
        assert scores[group]["f1"] == pytest.approx(100 * metrics.f1_score(y, p))
        assert scores[group]["precision"] == pytest.approx(100 * metrics.precision_score(y, p))
        assert scores[group]["recall"] == pytest.approx(100 * metrics.recall_score(y, p))
        assert scores[group]["accuracy"] == pytest.approx(100 * metrics.accuracy_score(y, p))
    assert scores["bias_f_over_m"] == pytest.approx(scores["feminine"]["f1"] / scores["masculine"]["f1"])
    # an example with no answer: two false negatives, even where the key says FALSE (the scorer's rule)
    x0 = examples[0]
    alone = score_gap([x0], response).to_json()["overall"]  # what x0's two decisions counted
    del response["x0"]
    missing = score_gap(examples, response).to_json()
    assert missing["missing"] == 1
    for cell in ("tp", "fp", "tn"):
        assert missing["overall"][cell] == scores["overall"][cell] - alone[cell]
    assert missing["overall"]["fn"] == scores["overall"]["fn"] - alone["fn"] + 2


def test_real_gap_files_have_the_published_counts(shared_data):
    """SOURCES.md: development 2000, test 2000, validation 454; the corpus is gender-balanced."""
    counts = {}
    for split, n in (("development", 2000), ("test", 2000), ("validation", 454)):
        examples = read_gap(shared_data / "gap" / f"gap-{split}.tsv")
        counts[split] = len(examples)
        assert sum(e.gender == "feminine" for e in examples) == n // 2
    assert counts == {"development": 2000, "test": 2000, "validation": 454}


def test_cli_evaluate_and_score_agree(key, tmp_path, capsys):
    """A response file round-trips through the GAP system format, and `score gap` prints the
    numbers the Python scorer gives."""
    decisions = {"t-1": (True, False), "t-2": (False, False), "t-3": (True, True)}
    write_gap_response(tmp_path / "r.tsv", decisions)
    assert read_gap_response(tmp_path / "r.tsv") == decisions
    assert main(["score", "gap", "--key", str(key), "--response", str(tmp_path / "r.tsv"), "-o", str(tmp_path / "s.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    # hand count: A decisions (T,F,T) vs gold (T,T,F); B (F,F,T) vs gold (F,F,T) -> tp 2, fp 1, fn 1, tn 2
    assert (printed["overall"]["tp"], printed["overall"]["fp"], printed["overall"]["fn"], printed["overall"]["tn"]) == (2, 1, 1, 2)
    assert printed["example_accuracy"] == pytest.approx(100 / 3)
    assert json.loads((tmp_path / "s.json").read_text()) == printed
    (tmp_path / "extra.tsv").write_text("t-1\tTRUE\tFALSE\nnope\tTRUE\tFALSE\n")
    assert main(["score", "gap", "--key", str(key), "--response", str(tmp_path / "extra.tsv")]) == 2
    assert "ID 'nope' is not in the key file" in capsys.readouterr().err
    (tmp_path / "bad.tsv").write_text("t-1\tTRUE\n")
    assert main(["score", "gap", "--key", str(key), "--response", str(tmp_path / "bad.tsv")]) == 2
    assert "bad.tsv:1: expected ID, A-coref and B-coref" in capsys.readouterr().err
