"""End to end through the CLI: a tiny model learns 50 real WNUT-17 sentences, predicts through
``spanbert predict ner``, evaluates, reloads to identical predictions, and scores the same as
``spanbert score ner``; bad input gives one line naming file:line and exit status 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from spanbert.cli import main

from .conftest import DATA, TINY_BERT, save_tiny_encoder

TRAIN = DATA / "ner" / "wnut17_train_sample.conll"
TEST = DATA / "ner" / "wnut17_test_sample.conll"
TINY = {**TINY_BERT, "hidden_size": 64, "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, tiny_tokenizer):
    """A tiny random BERT encoder with the tiny real WordPiece vocabulary, saved as a plain model."""
    return save_tiny_encoder(tmp_path_factory.mktemp("ner") / "tiny-bert", tiny_tokenizer, **TINY)


@pytest.fixture(scope="module")
def ner_model(tiny_bert):
    """100 steps on the 50 committed training sentences (a few seconds); dev = the same sentences,
    so the dev scores are training-set scores."""
    out = tiny_bert.parent / "model"
    rc = main(["finetune", "ner", "--model", str(tiny_bert), "--train", str(TRAIN), "--dev", str(TRAIN),
               "--output", str(out), "--max-steps", "100", "--batch-size", "10", "--lr", "3e-3", "--max-seq-length", "64",
               "--mixed-precision", "no", "--no-progress"])
    assert rc == 0
    return out


def test_training_learns_the_training_sentences(ner_model):
    summary = json.loads((ner_model / "finetune_summary.json").read_text())
    # windows of 64 subwords split a few long sentences (how many depends on the tiny vocabulary)
    assert summary["steps"] == 100 and summary["train_windows"] > summary["train_sentences"] == 50
    assert summary["train_entities"] == 34
    assert summary["labels"] == ["corporation", "creative-work", "group", "location", "person", "product"]
    with (ner_model / "finetune_metrics.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    # ln(7) = 1.95 for an untrained 7-way head; measured ~0.24 at step 20 and 0.002-0.012 at step
    # 100 (the tiny vocabulary is trained afresh each session, so the numbers move a little)
    assert losses[-1] < losses[0] / 3 and summary["final_loss"] < 0.05
    # training-set entity F1 with the fitted threshold: measured 0.89-0.99 over 5 vocabularies
    assert summary["dev_metrics"]["f1"] > 0.7
    config = json.loads((ner_model / "config.json").read_text())
    assert config["model_type"] == "spanbert_span_ner" and config["id2label"]["0"] == "O"
    settings = json.loads((ner_model / "ner_settings.json").read_text())
    assert settings["windows"] == {"max_seq_length": 64} and settings["decoding"]["threshold"] == summary["threshold"]
    assert "spanbert predict ner" in (ner_model / "README.md").read_text()


def test_evaluate_reloads_to_identical_predictions_and_scores_like_score_ner(ner_model, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "ner", "--model", str(ner_model), "--data", str(TRAIN), "--output", str(out)]) == 0
    # the in-memory model wrote dev/ right after training; the reloaded one must agree token by token
    assert (out / "predictions.conll").read_text() == (ner_model / "dev" / "predictions.conll").read_text()
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics == json.loads((ner_model / "dev" / "metrics.json").read_text())["metrics"]
    capsys.readouterr()
    assert main(["score", "ner", "--gold", str(TRAIN), "--predictions", str(out / "predictions.conll")]) == 0
    assert json.loads(capsys.readouterr().out) == metrics
    rows = (out / "predictions.conll").read_text().splitlines()
    assert rows[0].split("\t")[:2] == ["@paulwalk", "O"] and all(len(r.split("\t")) == 3 for r in rows if r)


def test_evaluate_untagged_file_writes_token_and_prediction(ner_model, tmp_path):
    words = tmp_path / "words.conll"
    words.write_text("".join(line.split("\t")[0] + "\n" if line.strip() else "\n" for line in TEST.read_text().splitlines()))
    assert main(["evaluate", "ner", "--model", str(ner_model), "--data", str(words), "--output", str(tmp_path / "e")]) == 0
    rows = [r for r in (tmp_path / "e" / "predictions.conll").read_text().splitlines() if r]
    assert len(rows) == 408 and all(len(r.split("\t")) == 2 for r in rows)
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["metrics"] == {}


def test_predict_text_json_with_character_offsets(ner_model, capsys):
    texts = ["Empire State Building = ESB . Pretty bad storm here last evening .",
             "@paulwalk It 's the view from where I 'm living for two weeks ."]
    assert main(["predict", "ner", "--model", str(ner_model), "--text", texts[0], "--text", texts[1], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in result] == texts
    for r in result:
        for e in r["entities"]:
            assert r["text"][e["start_char"] : e["end_char"]] == e["text"] and 0 <= e["start_word"] <= e["end_word"]
            assert e["label"] in {"corporation", "creative-work", "group", "location", "person", "product"}
            assert 0 < e["score"] <= 1
    # without --json: the text, then one line per entity (or "(no entities)")
    assert main(["predict", "ner", "--model", str(ner_model), "--text", texts[0]]) == 0
    assert capsys.readouterr().out.startswith(texts[0] + "\n")


def test_predict_conll_input_matches_evaluate(ner_model, tmp_path, capsys):
    out = tmp_path / "pred.conll"
    assert main(["predict", "ner", "--model", str(ner_model), "--input", str(TRAIN), "--output", str(out)]) == 0
    predicted = [r.split("\t")[1] for r in out.read_text().splitlines() if r]
    evaluated = [r.split("\t")[2] for r in (ner_model / "dev" / "predictions.conll").read_text().splitlines() if r]
    assert predicted == evaluated


def test_python_api_matches_the_cli(ner_model):
    from spanbert.tasks.ner import EntityRecognizer
    from spanbert.tasks.ner.data import read_conll

    sentences = [list(s.tokens) for s in read_conll(TRAIN).sentences]
    first = EntityRecognizer(ner_model, precision="no").predict_words(sentences)  # fp32, as dev/ was written
    again = EntityRecognizer(ner_model, precision="no").predict_words(sentences)  # a second load: identical
    assert first == again
    assert EntityRecognizer(ner_model).labels == ["corporation", "creative-work", "group", "location", "person", "product"]
    rows = [r.split("\t") for r in (ner_model / "dev" / "predictions.conll").read_text().splitlines()]
    n_entities = sum(1 for r in rows if len(r) == 3 and r[2].startswith("B-"))
    assert sum(len(x) for x in first) == n_entities


@pytest.mark.parametrize("content, line, message", [
    ("a\tO\nb\tB-person\textra\n", 2, "3 columns, but line 1 has 2"),
    ("a\tO\n\nb\tX-person\n", 3, "tag 'X-person' has an unknown prefix (expected O, or B-, I-, E-, S- followed by a type)"),
    ("a\tO\n \tB-person\n", 2, "empty token"),
])
def test_bad_training_file_exits_2_with_file_and_line(tiny_bert, tmp_path, capsys, content, line, message):
    bad = tmp_path / "bad.conll"
    bad.write_text(content)
    rc = main(["finetune", "ner", "--model", str(tiny_bert), "--train", str(bad), "--output", str(tmp_path / "m"),
               "--max-steps", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"error: {bad}:{line}: {message}\n"


@pytest.mark.parametrize("args, message", [
    (["--text", "x", "--input", "f.txt"], "--text / --input: give exactly one"),
    ([], "--text / --input: give exactly one"),
    (["--text", "  "], "--text #1: empty text"),
    (["--input", "missing.txt"], "missing.txt: no such file"),
    (["--text", "x", "--output", "o.conll"], "--output: needs a CoNLL --input"),
])
def test_bad_predict_input(ner_model, capsys, args, message):
    assert main(["predict", "ner", "--model", str(ner_model), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_model_and_no_entities(tiny_bert, tmp_path, capsys):
    assert main(["predict", "ner", "--model", str(tmp_path), "--text", "x"]) == 2
    assert "no config.json" in capsys.readouterr().err
    empty = tmp_path / "o.conll"
    empty.write_text("a\tO\nb\tO\n")
    assert main(["finetune", "ner", "--model", str(tiny_bert), "--train", str(empty), "--output", str(tmp_path / "m")]) == 2
    assert "no entities to learn from" in capsys.readouterr().err


def test_help_lists_the_span_options():
    """The help as a user piping it sees it (a process of its own: rich lays help out by the
    terminal it finds, and inside the test session it found 80 columns and cut option names)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    run = subprocess.run([sys.executable, "-m", "spanbert", "finetune", "ner", "--help"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    for option in ("--max-span-width", "--cross-attention", "--negative-ratio", "--time-budget", "--dev"):
        assert option in run.stdout


def test_quality_script_uses_only_existing_options():
    """benchmarks/ner_quality.sh is not run in tests; at least every option it passes must exist."""
    import re

    import typer

    from spanbert.cli import app

    from .conftest import TESTS

    script = (TESTS.parent / "benchmarks" / "ner_quality.sh").read_text()
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", script)) - {"--cross-attention", "--no-cross-attention"}
    # The option names straight from the click commands (help text wraps with the terminal width).
    root = typer.main.get_command(app)
    known = set()
    for command in ("finetune", "evaluate", "score"):
        ner = root.commands[command].commands["ner"]
        known |= {name for param in ner.params for name in (*param.opts, *param.secondary_opts)}
    known |= {"--train", "--data", "--output"}  # python -m spanbert.tasks.ner.baseline
    assert used <= known, used - known
    assert "--cross-attention" in known and "--no-cross-attention" in known
