"""ROUGE through rouge-score: equal to calling the package directly, a hand-computed ROUGE-1, the
multi-reference rules, and ``spanbert score rouge`` on files (with its one-line errors)."""

from __future__ import annotations

import json

import pytest
from rouge_score import rouge_scorer

from spanbert.cli import main
from spanbert.core.errors import CorpusError
from spanbert.tasks.summarize.data import read_summaries
from spanbert.tasks.summarize.scoring import ROUGE_TYPES, rouge_corpus, score_document, score_rouge_files

from .conftest import DATA

DEV = DATA / "summarize" / "scitldr_a_dev_sample.jsonl"


def test_hand_computed_rouge1():
    # prediction "the cat sat" vs reference "the cat is black": overlap {the, cat} = 2;
    # P = 2/3, R = 2/4, F1 = 2PR/(P+R) = 4/7.
    (p, r, f), = [score_document("the cat sat", ["the cat is black"])["rouge1"]]
    assert (p, r, f) == pytest.approx((2 / 3, 1 / 2, 4 / 7))
    # Stemming on: "cats"/"cat", "sitting"/"sit" match.
    assert score_document("cats sitting", ["cat sit"])["rouge1"][2] == pytest.approx(1.0)
    m = rouge_corpus(["the cat sat", "cats sitting"], [["the cat is black"], ["cat sit"]])
    assert m["rouge1"] == pytest.approx(100 * (4 / 7 + 1) / 2) and m["documents"] == 2


def _direct(predictions, references, rule):
    """Corpus ROUGE computed straight from rouge-score, per the stated multi-reference rules."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = {t: [0.0, 0.0, 0.0] for t in ROUGE_TYPES}
    for pred, refs in zip(predictions, references):
        if rule == "max-per-metric":
            doc = scorer.score_multi(refs, pred)
        else:
            per = [scorer.score(r, pred) for r in refs]
            if rule == "max":  # SciTLDR: the whole score of the reference with the best ROUGE-1 F1
                doc = max(per, key=lambda s: s["rouge1"].fmeasure)
            else:
                doc = {t: [sum(s[t][k] for s in per) / len(per) for k in range(3)] for t in ROUGE_TYPES}
        for t in ROUGE_TYPES:
            for k in range(3):
                totals[t][k] += doc[t][k]
    n = len(predictions)
    return {t: [100 * v / n for v in totals[t]] for t in ROUGE_TYPES}


@pytest.mark.parametrize("rule", ["max", "mean", "max-per-metric"])
def test_equals_rouge_score_on_real_multi_reference_data(rule):
    docs = read_summaries(DEV)
    preds = [ex.sentences[len(ex.sentences) // 2] for ex in docs]  # some real sentence of each abstract
    refs = [ex.references for ex in docs]
    ours = rouge_corpus(preds, refs, rule)  # type: ignore[arg-type]
    direct = _direct(preds, refs, rule)
    for t in ROUGE_TYPES:
        assert [ours[f"{t}_precision"], ours[f"{t}_recall"], ours[t]] == pytest.approx(direct[t], abs=1e-12)


def test_max_rule_differs_from_per_metric_max_where_references_disagree():
    # ref 0 "a b c d e f g": R1 F1 0.6, R2 F1 0.5; ref 1 "a c b": R1 F1 1.0, R2 F1 0 (no bigram shared).
    refs = [["a b c d e f g", "a c b"]]
    max_rule = rouge_corpus(["a b c"], refs, "max")  # ref 1 wins ROUGE-1 and gives all scores
    per_metric = rouge_corpus(["a b c"], refs, "max-per-metric")
    mean = rouge_corpus(["a b c"], refs, "mean")
    assert max_rule["rouge1"] == per_metric["rouge1"] == pytest.approx(100.0)
    assert max_rule["rouge2"] == 0.0 and per_metric["rouge2"] == pytest.approx(50.0)
    assert mean["rouge1"] == pytest.approx(80.0) and mean["rouge2"] == pytest.approx(25.0)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_rouge_cli_jsonl_and_plain_text(tmp_path, capsys):
    docs = read_summaries(DEV)
    rows = [{"id": ex.id, "summary": ex.sentences[0]} for ex in docs]
    preds = _write(tmp_path / "pred.jsonl", rows[::-1])  # matched by id, any order
    out = tmp_path / "m" / "metrics.json"
    assert main(["score", "rouge", "--references", str(DEV), "--predictions", str(preds), "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    expected = rouge_corpus([ex.sentences[0] for ex in docs], [ex.references for ex in docs])
    assert {k: printed[k] for k in expected} == expected and printed["multi_reference"] == "max"

    plain = tmp_path / "pred.txt"
    plain.write_text("".join(ex.sentences[0].replace("\n", " ") + "\n" for ex in docs))
    assert main(["score", "rouge", "--references", str(DEV), "--predictions", str(plain)]) == 0
    assert json.loads(capsys.readouterr().out)["rouge1"] == pytest.approx(expected["rouge1"], abs=1e-12)

    refs = _write(tmp_path / "refs.jsonl", [{"id": ex.id, "references": ex.references} for ex in docs])
    assert score_rouge_files(refs, preds) == score_rouge_files(DEV, preds)


@pytest.mark.parametrize("case, message", [
    ("unknown", ":3: id 'nope' is not in"),
    ("twice", ":2: id '{id0}' predicted twice (first at line 1)"),
    ("missing", ": no prediction for id '{id9}' ("),
    ("no-summary", ":1: missing field 'summary'"),
    ("short-plain", ":10: 9 prediction lines for 10 documents"),
])
def test_score_rouge_errors_are_one_line_with_file_and_line(tmp_path, capsys, case, message):
    docs = read_summaries(DEV)
    rows = [{"id": ex.id, "summary": "x"} for ex in docs]
    path = tmp_path / "pred.jsonl"
    if case == "unknown":
        rows[2]["id"] = "nope"
    elif case == "twice":
        rows[1]["id"] = rows[0]["id"]
    elif case == "missing":
        rows = rows[:9]
    elif case == "no-summary":
        del rows[0]["summary"]
    if case == "short-plain":
        path = tmp_path / "pred.txt"
        path.write_text("x\n" * 9)
    else:
        _write(path, rows)
    message = message.format(id0=docs[0].id, id9=docs[9].id)
    with pytest.raises(CorpusError) as err:
        score_rouge_files(DEV, path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)
    assert main(["score", "rouge", "--references", str(DEV), "--predictions", str(path)]) == 2
    err_line = capsys.readouterr().err.strip()
    assert err_line.startswith("error: ") and message in err_line and "\n" not in err_line
