"""Text classification: readers, windows of long texts, metrics, and a MiniLM classifier trained
on real SST-2 sentences through the CLI (it reloads to identical logits and loads in plain
transformers); bad input gives one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spanbert.tasks.classify.data import label_set, read_classification
from spanbert.tasks.classify.features import aggregate_logits, build_windows
from spanbert.tasks.classify.settings import ClassifySettings
from spanbert.tasks.classify.scoring import classification_metrics, majority_baseline
from spanbert.cli import main
from spanbert.core.errors import ConfigError, CorpusError

from .conftest import DATA, save_tiny_encoder

SAMPLE = DATA / "classify" / "sst2_dev_sample.tsv"


def test_tsv_is_read_without_quote_processing(tmp_path):
    f = tmp_path / "q.tsv"
    f.write_text('sentence\tlabel\nhe said "no way" . \t0\n"quoted start\t1\n')
    data = read_classification(f)
    assert data.texts == ['he said "no way" . ', '"quoted start'] and data.labels == ["0", "1"]


def test_sample_reads_as_sst2(tmp_path):
    data = read_classification(SAMPLE)
    assert len(data) == 60 and data.texts[0] == "it 's a charming and often affecting journey . " and data.labels[0] == "1"
    assert set(data.labels) == {"0", "1"}


def test_csv_and_jsonl_and_custom_columns(tmp_path):
    (tmp_path / "a.csv").write_text('label,review\n1,"good, really"\n0,bad\n')
    data = read_classification(tmp_path / "a.csv", text_field="review")
    assert data.texts == ["good, really", "bad"] and data.labels == ["1", "0"]
    (tmp_path / "b.jsonl").write_text('{"text": "x y", "y": "pos"}\n{"text": "z", "y": "neg"}\n')
    data = read_classification(tmp_path / "b.jsonl", text_field="text", label_field="y")
    assert data.labels == ["pos", "neg"]


def test_bad_files_name_the_file_and_line(tmp_path):
    f = tmp_path / "e.tsv"
    f.write_text("sentence\tlabel\nfine\t1\n \t0\n")
    with pytest.raises(CorpusError, match=r"e\.tsv:3: empty 'sentence'"):
        read_classification(f)
    with pytest.raises(CorpusError, match=r"e\.tsv: no column 'text'"):
        read_classification(f, text_field="text")
    g = tmp_path / "g.jsonl"
    g.write_text('{"sentence": "a", "label": 1}\n{"sentence": "b", "label": null}\n')
    with pytest.raises(CorpusError, match=r"g\.jsonl:2: empty 'label'"):
        read_classification(g)


def test_label_set_sorts_integers_numerically():
    assert label_set(["10", "9", "2"]) == ["2", "9", "10"] and label_set(["pos", "neg"]) == ["neg", "pos"]


def test_long_text_windows_cover_every_token_in_order(minilm_dir):
    from spanbert.core.checkpoints import load_tokenizer

    tok = load_tokenizer(str(minilm_dir))
    text = (DATA / "sotu_1790_washington.txt").read_text()
    settings = ClassifySettings(max_seq_length=64, window_overlap=16)
    windows = build_windows(tok, [text, "short one"], settings)
    full = tok(text, add_special_tokens=False)["input_ids"]
    mine = [w for w, d in zip(windows.input_ids, windows.doc) if d == 0]
    assert len(mine) > 10 and all(len(w) <= 64 for w in windows.input_ids)
    assert all(w[0] == tok.cls_token_id and w[-1] == tok.sep_token_id for w in windows.input_ids)
    body = mine[0][1:-1]
    for w in mine[1:]:
        assert w[1:17] == body[-16:]  # the overlap repeats the previous window's last 16 tokens
        body += w[17:-1]
    assert body == full and list(windows.doc).count(1) == 1


def test_aggregate_logits_by_hand():
    logits = np.array([[1.0, 0.0], [3.0, -2.0], [0.0, 5.0]])
    doc = np.array([0, 0, 1])
    assert np.allclose(aggregate_logits(logits, doc, 2, "mean"), [[2.0, -1.0], [0.0, 5.0]])
    assert np.allclose(aggregate_logits(logits, doc, 2, "max"), [[3.0, 0.0], [0.0, 5.0]])
    assert np.allclose(aggregate_logits(logits, doc, 2, "first"), [[1.0, 0.0], [0.0, 5.0]])


def test_metrics_by_hand():
    # gold  a a a b b c ; pred a a b b c c
    m = classification_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(100 * 4 / 6, abs=1e-3)
    # a: P 1, R 2/3, F 0.8; b: P 1/2, R 1/2, F 0.5; c: P 1/2, R 1, F 2/3
    assert m["per_class"]["a"]["f1"] == pytest.approx(80.0) and m["per_class"]["c"]["f1"] == pytest.approx(66.6667, abs=1e-3)
    assert m["macro_f1"] == pytest.approx(100 * (0.8 + 0.5 + 2 / 3) / 3, abs=1e-3)
    # a class absent from gold and predictions does not count; predicted-only classes count with F1 0
    assert classification_metrics([0, 0], [0, 1], ["a", "b", "c"])["macro_f1"] == pytest.approx(100 * (2 / 3 + 0) / 2, abs=1e-3)
    base = majority_baseline([1, 1, 0], [0, 1, 1, 1], ["neg", "pos"])
    assert base["label"] == "pos" and base["accuracy"] == 75.0


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="window_overlap"):
        ClassifySettings(max_seq_length=64, window_overlap=40)
    with pytest.raises(ConfigError, match="aggregation"):
        ClassifySettings(aggregation="vote")


@pytest.fixture(scope="module")
def sst2_model(tmp_path_factory, minilm_dir):
    """MiniLM fine-tuned for 30 steps on the 60 committed SST-2 sentences (seconds)."""
    out = tmp_path_factory.mktemp("clf") / "model"
    rc = main(["finetune", "classify", "--model", str(minilm_dir), "--train", str(SAMPLE), "--dev", str(SAMPLE),
               "--output", str(out), "--max-steps", "30", "--batch-size", "10", "--lr", "2e-4", "--max-seq-length", "64",
               "--window-overlap", "8", "--no-progress"])
    assert rc == 0
    return out


def test_classifier_learns_its_training_sentences(sst2_model):
    summary = json.loads((sst2_model / "finetune_summary.json").read_text())
    assert summary["labels"] == ["0", "1"] and summary["steps"] == 30
    dev = summary["dev_metrics"]
    assert dev["accuracy"] >= 90.0 > dev["majority_baseline"]["accuracy"]
    lines = (sst2_model / "dev" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 60 and json.loads(lines[0])["gold"] == "1"


def test_dev_accuracy_chooses_the_kept_weights(tiny_tokenizer, tmp_path):
    """A tiny random BERT on the 60 sentences (73 windows of 64 tokens, 20 a step: 3 steps an
    epoch): dev accuracy is scored at every epoch end and after the last step, one
    dev_history.jsonl line each, and the saved model is the best one (its dev evaluation gives
    the best score again); --keep-last with --eval-every keeps the last step's weights."""
    base = save_tiny_encoder(tmp_path / "base", tiny_tokenizer, pooler=True, max_position_embeddings=128)
    common = ["finetune", "classify", "--model", str(base), "--train", str(SAMPLE), "--dev", str(SAMPLE), "--max-steps", "29",
              "--batch-size", "20", "--lr", "1e-2", "--dropout", "0", "--max-seq-length", "64", "--window-overlap", "8",
              "--mixed-precision", "no", "--no-progress"]
    assert main([*common, "--output", str(tmp_path / "best")]) == 0
    history = [json.loads(line) for line in (tmp_path / "best" / "dev_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [*range(3, 28, 3), 29]  # 9 epoch ends and the last step
    assert [h["epoch"] for h in history[-2:]] == [9.0, 9.6667]
    assert all(h["metric"] == "accuracy" and set(h["metrics"]) == {"accuracy", "macro_f1"} for h in history)
    summary = json.loads((tmp_path / "best" / "finetune_summary.json").read_text())
    best = max(history, key=lambda h: h["score"])  # the first of the best
    assert summary["selected_on_dev"] == {"metric": "accuracy", "step": best["step"], "score": best["score"], "evaluations": 10,
                                          "stopped_early": False}
    assert summary["dev_metrics"]["accuracy"] == best["score"] > history[0]["score"]  # it learned on the way

    assert main([*common, "--output", str(tmp_path / "last"), "--keep-last", "--eval-every", "10"]) == 0
    history = [json.loads(line) for line in (tmp_path / "last" / "dev_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [10, 20, 29]
    summary = json.loads((tmp_path / "last" / "finetune_summary.json").read_text())
    assert summary["selected_on_dev"]["step"] == 29 and summary["dev_metrics"]["accuracy"] == history[-1]["score"]


def test_saved_model_is_plain_transformers_and_reloads_identically(sst2_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from spanbert.tasks.classify import TextClassifier

    config = json.loads((sst2_model / "config.json").read_text())
    assert config["model_type"] == "bert" and config["id2label"] == {"0": "0", "1": "1"}
    plain = AutoModelForSequenceClassification.from_pretrained(sst2_model).eval()
    tok = AutoTokenizer.from_pretrained(sst2_model)
    texts = ["a gorgeous , witty , seductive movie . ", "the story is bogus and its characters are paper thin . "]
    with torch.no_grad():
        theirs = plain(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    ours = TextClassifier(sst2_model, precision="no").classify(texts)
    assert np.allclose([[p.probabilities["0"], p.probabilities["1"]] for p in ours], theirs, atol=1e-5)
    again = TextClassifier(sst2_model, precision="no").classify(texts)
    assert [p.probabilities for p in again] == [p.probabilities for p in ours]


def test_predict_and_evaluate_through_the_cli(sst2_model, tmp_path, capsys):
    long_text = tmp_path / "texts.txt"
    long_text.write_text("a gorgeous , witty , seductive movie . \n" + "a gorgeous , witty , seductive movie . " * 40 + "\n")
    assert main(["predict", "classify", "--model", str(sst2_model), "--input", str(long_text), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["1", "1"]
    out = tmp_path / "ev"
    assert main(["evaluate", "classify", "--model", str(sst2_model), "--data", str(SAMPLE), "--output", str(out),
                 "--no-progress", "--precision", "no"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["examples"] == 60 and metrics["majority_baseline"]["label"] in ("0", "1")


def test_bad_input_is_one_line_and_exit_2(sst2_model, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood\t1\nmeh\tneutral\n")
    rc = main(["evaluate", "classify", "--model", str(sst2_model), "--data", str(bad), "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "bad.tsv:3: label 'neutral' is not in the model's label set" in err
    assert main(["predict", "classify", "--model", str(tmp_path / "nope"), "--text", "x"]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["predict", "classify", "--model", str(sst2_model), "--text", " "]) == 2
    one = tmp_path / "one.tsv"
    one.write_text("sentence\tlabel\na\t1\nb\t1\n")
    assert main(["finetune", "classify", "--model", str(sst2_model), "--train", str(one), "--output", str(tmp_path / "x")]) == 2
    assert "single label" in capsys.readouterr().err
