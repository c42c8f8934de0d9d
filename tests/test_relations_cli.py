"""End to end through the CLI: a tiny model overfits real SemEval sentences, evaluates with the official
scorer's numbers, predicts; TACRED-style data with typed markers; bad input gives one line and exit 2."""

from __future__ import annotations

import csv
import json
import math

import pytest

from spanbert.cli import main

from .conftest import DATA, save_tiny_encoder

REL = DATA / "relations"
TRAIN = REL / "semeval_train_sample.txt"
TEST = REL / "semeval_test_sample.txt"
TACRED = REL / "tacred_style_sample.json"
FAST = ["--batch-size", "8", "--lr", "3e-3", "--dropout", "0", "--mixed-precision", "no", "--no-progress"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, tiny_tokenizer):
    return save_tiny_encoder(tmp_path_factory.mktemp("bert"), tiny_tokenizer, hidden_size=64, max_position_embeddings=128)


@pytest.fixture(scope="module")
def re_model(tmp_path_factory, bert_dir):
    """The tiny model trained 80 steps on the 24 real SemEval training sentences (about a second)."""
    out = tmp_path_factory.mktemp("re") / "model"
    assert main(["finetune", "relations", "--model", str(bert_dir), "--train", str(TRAIN), "--dev", str(TRAIN),
                 "--output", str(out), "--max-steps", "80", *FAST]) == 0
    return out


def test_tiny_model_overfits_real_sentences(re_model):
    summary = json.loads((re_model / "finetune_summary.json").read_text())
    assert summary["steps"] == 80 and summary["labels"] == 12 and summary["no_relation_label"] == "Other"
    assert summary["marker_tokens"] == ["[S]", "[/S]", "[O]", "[/O]"]
    with (re_model / "finetune_metrics.csv").open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    # logged every 20 steps; a fresh head starts near ln(12) = 2.48
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.05 * math.log(12)
    assert summary["dev_scoring"] == "semeval" and summary["dev_metrics"]["accuracy"] >= 90.0
    card = (re_model / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "spanbert predict relations" in card


def test_predict_through_the_cli(re_model, tmp_path, capsys):
    capsys.readouterr()
    # sentence 3 of the training sample: the author (e1) uses the disassembler (e2)
    text = "The <e1>author</e1> of a keygen uses a <e2>disassembler</e2> to look at the raw assembly code."
    assert main(["predict", "relations", "--model", str(re_model), "--text", text, "--json", "--top-k", "3",
                 "--precision", "no"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] == "Instrument-Agency(e2,e1)" and len(row["top"]) == 3 and row["top"][0]["label"] == row["label"]
    assert row["text"].startswith("The <e1>author</e1> of a keygen")
    path = tmp_path / "in.txt"
    path.write_text(text + "\n" + "The <e1>student</e1> <e2>association</e2> is the voice of the undergraduate student population.\n")
    assert main(["predict", "relations", "--model", str(re_model), "--input", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("1\tInstrument-Agency(e2,e1)\t") and lines[1].startswith("2\t")


def test_python_api_matches_the_saved_model(re_model):
    from spanbert.tasks.relations import RelationClassifier

    clf = RelationClassifier(re_model, precision="no")
    inputs = ["The <e1>author</e1> of a keygen uses a <e2>disassembler</e2> to look at the raw assembly code.",
              {"token": "The author of a keygen uses a disassembler .".split(), "subj_start": 1, "subj_end": 1,
               "obj_start": 7, "obj_end": 7}]
    preds = clf.predict(inputs)
    label, score, probabilities = preds[0]
    assert label == "Instrument-Agency(e2,e1)" and score == max(probabilities.values())
    assert set(probabilities) == set(clf.labels) and sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert preds[1].label == label  # the same pair given as a TACRED-style record
    assert RelationClassifier(re_model, precision="no").predict(inputs) == preds  # reloaded: identical probabilities


def test_evaluate_writes_official_files_and_score_agrees(re_model, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "relations", "--model", str(re_model), "--data", str(TRAIN), "--output", str(out),
                 "--no-progress", "--precision", "no"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scoring"] == "semeval" and metrics["examples"] == 24
    key = (out / "answer_key.txt").read_text().splitlines()
    assert key[0] == "1\tComponent-Whole(e2,e1)" and len(key) == 24
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [line.split("\t")[1] for line in (out / "predictions.txt").read_text().splitlines()]
    capsys.readouterr()
    assert main(["score", "semeval", "--key", str(out / "answer_key.txt"), "--predictions", str(out / "predictions.txt")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in printed.items() if k not in ("key", "predictions")} == metrics["metrics"]


def _write_block_file(tmp_path, sentence: str, label: str = "Other"):
    path = tmp_path / "data.txt"
    path.write_bytes(TRAIN.read_bytes() + f'99\t"{sentence}"\r\n{label}\r\nComment:\r\n\r\n'.encode())
    return path  # the bad block starts on line 97


@pytest.mark.parametrize("sentence, label, message", [
    ("The <e1>author</e1> wrote the <e2>book.", "Other", r"data\.txt:97: <e2> is never closed \(missing </e2>\)"),
    ("The <e1>author <e2>wrote</e2></e1> it.", "Other", r"data\.txt:97: <e2> opens inside <e1>"),
    ("The <e1>author</e1> wrote the book.", "Other", r"data\.txt:97: marker <e2>\.\.</e2> missing"),
])
def test_bad_training_data_gives_one_line_and_exit_2(bert_dir, tmp_path, capsys, sentence, label, message):
    path = _write_block_file(tmp_path, sentence, label)
    rc = main(["finetune", "relations", "--model", str(bert_dir), "--train", str(path), "--output", str(tmp_path / "m"),
               "--max-steps", "1", *FAST])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert __import__("re").search(message, err), err


def test_unknown_label_at_evaluation_names_file_and_line(re_model, tmp_path, capsys):
    # the test sample has labels the 24 training sentences lack, e.g. Component-Whole(e1,e2) on line 6
    rc = main(["evaluate", "relations", "--model", str(re_model), "--data", str(TEST), "--output", str(tmp_path / "e"),
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "semeval_test_sample.txt:" in err and "is not in the model's label set" in err


def test_bad_predict_input(re_model, capsys):
    assert main(["predict", "relations", "--model", str(re_model), "--text", "no <e1>markers</e1> closed <e2>here"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --text 1: <e2> is never closed (missing </e2>)"
    assert main(["predict", "relations", "--model", str(re_model)]) == 2


@pytest.mark.parametrize("extra", [["--pooling", "cls"], ["--marker-style", "replace"]])
def test_cls_pooling_and_replace_markers_run(bert_dir, tmp_path, capsys, extra):
    out = tmp_path / "m"
    assert main(["finetune", "relations", "--model", str(bert_dir), "--train", str(TRAIN), "--output", str(out),
                 "--max-steps", "4", *FAST, *extra]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["pooling"], config["marker_style"]) == (("cls", "wrap") if extra[0] == "--pooling" else ("markers", "replace"))
    capsys.readouterr()
    assert main(["predict", "relations", "--model", str(out), "--text", "The <e1>author</e1> wrote the <e2>book</e2>.", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in config["label2id"]


def test_tacred_style_typed_markers_end_to_end(bert_dir, tmp_path, capsys):
    out = tmp_path / "tac"
    assert main(["finetune", "relations", "--model", str(bert_dir), "--train", str(TACRED), "--dev", str(TACRED),
                 "--output", str(out), "--max-steps", "40", *FAST, "--batch-size", "5"]) == 0  # 10 records: 2 whole batches
    summary = json.loads((out / "finetune_summary.json").read_text())
    assert summary["no_relation_label"] == "no_relation" and "[S:PERSON]" in summary["marker_tokens"]
    assert summary["dev_scoring"] == "micro" and summary["dev_metrics"]["micro_f1"] == 100.0
    dev = out / "dev"
    assert (dev / "predictions.jsonl").is_file() and not (dev / "predictions.txt").exists()
    tokenizer_config = (out / "tokenizer.json").read_text()
    assert "[/O:LOCATION]" in tokenizer_config  # the typed markers travel with the tokenizer
    capsys.readouterr()
    assert main(["predict", "relations", "--model", str(out), "--json",
                 "--text", "<e1:PERSON>People</e1> have been moving back into <e2:LOCATION>downtown</e2> ."]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "per:moved_to"


def test_dev_label_outside_the_training_labels_fails_before_training(bert_dir, tmp_path, capsys):
    out = tmp_path / "m"
    rc = main(["finetune", "relations", "--model", str(bert_dir), "--train", str(TRAIN), "--dev", str(TEST),
               "--output", str(out), "--max-steps", "2", *FAST])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "semeval_test_sample.txt:" in err and "not in the model's label set" in err
    assert not out.exists()  # nothing trained or written
