"""End to end through the CLI: fine-tune a QA model on real questions, evaluate, predict on a long
file, score; the saved model loads in plain transformers; bad input gives one line and exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from spanbert.cli import main

from .conftest import DATA

SAMPLE_V1 = DATA / "squad" / "xquad_en_sample.json"
SAMPLE_V2 = DATA / "squad" / "cs224n_dev_v2_sample.json"
SMALL = ["--max-seq-length", "128", "--max-question-tokens", "32", "--window-overlap", "32", "--no-progress"]


@pytest.fixture(scope="module")
def qa_model(tmp_path_factory, minilm_dir):
    """MiniLM fine-tuned for 24 steps on the 34 committed XQuAD questions (seconds)."""
    out = tmp_path_factory.mktemp("qa") / "model"
    rc = main(["finetune", "qa", "--model", str(minilm_dir), "--train", str(SAMPLE_V1), "--dev", str(SAMPLE_V1),
               "--output", str(out), "--max-steps", "24", "--batch-size", "8", "--lr", "1e-4", *SMALL])
    assert rc == 0
    return out


def test_finetune_writes_a_plain_transformers_qa_model(qa_model):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from spanbert.tasks.qa.inference import load_qa_model

    config = json.loads((qa_model / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForQuestionAnswering"]
    settings = json.loads((qa_model / "qa_settings.json").read_text())
    assert settings["windows"] == {"max_seq_length": 128, "max_question_tokens": 32, "window_overlap": 32}
    plain = AutoModelForQuestionAnswering.from_pretrained(qa_model).eval()
    ours, _ = load_qa_model(qa_model)
    tok = AutoTokenizer.from_pretrained(qa_model)
    batch = tok("Who?", "Ann wrote it.", return_tensors="pt")
    with torch.no_grad():
        a, b = plain(**batch), ours.eval()(**batch)
    assert torch.equal(a.start_logits, b.start_logits) and torch.equal(a.end_logits, b.end_logits)


def test_training_learned_the_training_questions(qa_model, minilm_dir):
    """After 24 steps the model answers its own training questions better than the untrained head."""
    summary = json.loads((qa_model / "finetune_summary.json").read_text())
    assert summary["steps"] == 24 and summary["final_loss"] < 4.5  # ln(128) ~ 4.85 per position at random
    assert summary["dev_metrics"]["f1"] > 20.0
    metrics = json.loads((qa_model / "dev" / "metrics.json").read_text())
    assert metrics["metrics"] == summary["dev_metrics"]


def test_evaluate_and_score_give_the_same_numbers(qa_model, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "qa", "--model", str(qa_model), "--data", str(SAMPLE_V1), "--output", str(out), "--no-progress"]) == 0
    preds = json.loads((out / "predictions.json").read_text())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert len(preds) == 34 and set(nbest) == set(preds)
    assert all(nbest[q][0]["text"] == preds[q] for q in preds)
    capsys.readouterr()
    assert main(["score", "squad", "--data", str(SAMPLE_V1), "--predictions", str(out / "predictions.json"),
                 "--output", str(tmp_path / "m.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    evaluated = json.loads((out / "metrics.json").read_text())["metrics"]
    assert printed == evaluated == json.loads((tmp_path / "m.json").read_text())


def test_squad2_finetune_fits_and_saves_a_null_threshold(minilm_dir, tmp_path):
    out = tmp_path / "qa2"
    assert main(["finetune", "qa", "--model", str(minilm_dir), "--train", str(SAMPLE_V2), "--dev", str(SAMPLE_V2),
                 "--output", str(out), "--max-steps", "4", "--batch-size", "8", *SMALL]) == 0
    settings = json.loads((out / "qa_settings.json").read_text())
    summary = json.loads((out / "finetune_summary.json").read_text())
    assert settings["squad_version"] == "2.0" and settings["decoding"]["allow_null"]
    assert settings["decoding"]["null_threshold"] == summary["null_threshold"]
    m = summary["dev_metrics"]
    assert {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(m)
    odds = json.loads((out / "dev" / "null_odds.json").read_text())
    preds = json.loads((out / "dev" / "predictions.json").read_text())
    t = settings["decoding"]["null_threshold"]
    assert all(preds[q] == "" for q in preds if odds[q] > t)
    # the fitted threshold gives the best F1 of all thresholds, each scored the official way
    from spanbert.tasks.qa.scoring import gold_answers_from_squad, squad_v2_metrics

    gold = gold_answers_from_squad(json.loads(SAMPLE_V2.read_text()))
    nbest = json.loads((out / "dev" / "nbest_predictions.json").read_text())
    spans = {q: next((c["text"] for c in nbest[q] if c["text"]), "") for q in nbest}
    candidates = sorted(set(odds.values())) + [min(odds.values()) - 1.0]
    best = max(squad_v2_metrics(gold, spans, odds, na_prob_thresh=c)["f1"] for c in candidates)
    assert m["f1"] == pytest.approx(best)
    assert squad_v2_metrics(gold, spans, odds, na_prob_thresh=t)["f1"] == pytest.approx(best)
    # the written files score the same through `spanbert score squad` with that threshold
    metrics = json.loads((out / "dev" / "metrics.json").read_text())["metrics"]
    assert main(["score", "squad", "--data", str(SAMPLE_V2), "--predictions", str(out / "dev" / "predictions.json"),
                 "--na-probs", str(out / "dev" / "null_odds.json"), "--na-prob-thresh", str(t),
                 "--output", str(tmp_path / "scored.json")]) == 0
    assert json.loads((tmp_path / "scored.json").read_text()) == metrics


def test_predict_on_a_long_file(qa_model, tmp_path, capsys):
    """A 10,000-word document: the answer's character offsets point into the file's text."""
    base = (DATA / "sotu_1790_washington.txt").read_text()
    doc = tmp_path / "long.txt"
    doc.write_text("\n\n".join([base] * 8))
    assert len(doc.read_text().split()) > 10_000
    capsys.readouterr()
    assert main(["predict", "qa", "--model", str(qa_model), "--context-file", str(doc), "--json", "--top-k", "3",
                 "-q", "What should be encouraged?", "-q", "Who is addressed?"]) == 0
    rows = json.loads(capsys.readouterr().out)
    text = doc.read_text()
    assert len(rows) == 2
    for row in rows:
        assert row["text"] and text[row["start"] : row["end"]] == row["text"]
        assert len(row["alternatives"]) == 3


def test_python_api_answers_a_batch(qa_model):
    from spanbert.tasks.qa.inference import QuestionAnswerer

    qa = QuestionAnswerer(qa_model, precision="no")
    contexts = ["The Normans were descended from Norse raiders.", "Paris is the capital and largest city of France."]
    out = qa.answer(["Who were the Normans descended from?", "What is the capital of France?"], contexts)
    for p, c in zip(out, contexts):
        assert p.text and c[p.start : p.end] == p.text and p.null_score == p.null_score


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "qa", "-q", "Who?"], "--context / --context-file: give exactly one"),
        (["predict", "qa", "-q", "Who?", "--context", "   "], "the context is empty"),
        (["predict", "qa", "-q", "  ", "--context", "Ann wrote it."], "--question: empty question"),
        (["predict", "qa", "-q", "Who?", "--context-file", "/nonexistent.txt"], "/nonexistent.txt: no such file"),
    ],
)
def test_bad_predict_input(qa_model, capsys, args, message):
    rc = main([*args, "--model", str(qa_model)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_files_for_evaluate_and_score(qa_model, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [}')
    assert main(["evaluate", "qa", "--model", str(qa_model), "--data", str(bad), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1:" in err and "not valid JSON" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"not-a-question": "x"}))
    assert main(["score", "squad", "--data", str(SAMPLE_V1), "--predictions", str(preds)]) == 2
    err = capsys.readouterr().err
    assert "not-a-question" in err and str(preds) in err and len(err.strip().splitlines()) == 1
    assert main(["finetune", "qa", "--model", str(tmp_path), "--train", str(SAMPLE_V1), "--output", str(tmp_path / "x")]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_fine_tune_like_one(minilm_dir, tmp_path):
    """torchrun with 2 CPU processes x 4 windows gives the loss and gradient of 1 process x 8.

    Compared at the first step: after it, Adam's first update (about lr * sign(g)) turns the
    last-bit differences of an all-reduced gradient near zero into visible weight differences."""
    import csv
    import os
    import subprocess
    import sys

    common = ["finetune", "qa", "--model", str(minilm_dir), "--train", str(SAMPLE_V1), "--max-steps", "1",
              "--batch-size", "8", "--dropout", "0", "--mixed-precision", "no", *SMALL]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    one = subprocess.run([sys.executable, "-m", "spanbert", *common, "--output", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "spanbert", *common, "--output", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("model:") == 1  # one summary and one saved model, from rank 0
    rows = [list(csv.DictReader(open(tmp_path / run / "finetune_metrics.csv"))) for run in ("one", "two")]
    assert len(rows[0]) == len(rows[1]) == 1
    for key in ("loss", "grad_norm"):
        assert float(rows[1][0][key]) == pytest.approx(float(rows[0][0][key]), rel=1e-5), key
