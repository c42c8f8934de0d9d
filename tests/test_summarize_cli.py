"""End to end through the CLI: a tiny summarizer learns the oracle sentences of real SciTLDR-A
abstracts, evaluates (model, lead-1, oracle), predicts on raw text, and its files score the same
through ``spanbert score rouge``."""

from __future__ import annotations

import csv
import json

import pytest

from spanbert.cli import main
from spanbert.tasks.summarize.data import read_summaries
from spanbert.tasks.summarize.oracle import greedy_oracle

from .conftest import DATA, save_tiny_encoder

TRAIN = DATA / "summarize" / "scitldr_a_train_sample.jsonl"
DEV = DATA / "summarize" / "scitldr_a_dev_sample.jsonl"
TEXT = (DATA / "sotu_1790_washington.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tiny_tokenizer):
    """A tiny random BERT (hidden 32, 2 layers) with the tiny real WordPiece vocabulary."""
    return save_tiny_encoder(tmp_path_factory.mktemp("extsum") / "base", tiny_tokenizer, max_position_embeddings=128)


@pytest.fixture(scope="module")
def trained(base_dir, tmp_path_factory):
    """60 steps on the first 8 sample abstracts, oracle labels of one sentence each (~2 s).

    ``--keep-last``: the tests below check what 60 steps learned of the training abstracts (dev
    selection is tested on its own); dev is scored every 20 steps only, to keep the run short.
    """
    out = tmp_path_factory.mktemp("extsum") / "model"
    rc = main(["finetune", "summarize", "--model", str(base_dir), "--train", str(TRAIN), "--dev", str(DEV),
               "--output", str(out), "--max-train-examples", "8", "--max-steps", "60", "--batch-size", "4",
               "--lr", "3e-3", "--warmup-ratio", "0", "--dropout", "0", "--max-seq-length", "64",
               "--cross-attention-heads", "2", "--oracle-sentences", "1", "--mixed-precision", "no", "--no-progress",
               "--keep-last", "--eval-every", "20"])
    assert rc == 0
    return out


def test_tiny_model_learns_the_oracle_sentences(trained, tmp_path):
    losses = [float(r["loss"]) for r in csv.DictReader((trained / "finetune_metrics.csv").open())]
    assert losses[0] > 0.3 and losses[-1] < 0.1  # ln 2 ~ 0.69 at the start
    summary = json.loads((trained / "finetune_summary.json").read_text())
    assert summary["steps"] == 60 and summary["train_documents"] == 8 and summary["labels"] == "oracle"
    assert summary["positive_sentences_per_document"] == 1.0 and summary["max_segment_length"] == 64
    assert 0 <= summary["oracle_agreement_with_file_labels"] <= 1
    assert summary["dev_documents"] == 10 and set(summary["dev_metrics"]) >= {"rouge1", "rouge2", "rougeL"}
    assert json.loads((trained / "summarize_settings.json").read_text())["budget"]["max_sentences"] == 1
    assert "pipeline_tag: summarization" in (trained / "README.md").read_text()

    out = tmp_path / "eval"
    assert main(["evaluate", "summarize", "--model", str(trained), "--data", str(TRAIN), "--output", str(out),
                 "--max-examples", "8", "--precision", "no", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    docs = read_summaries(TRAIN)[:8]
    assert [r["id"] for r in rows] == [d.id for d in docs]
    assert [r["sentence_indices"] for r in rows] == [greedy_oracle(d.sentences, d.references, 1) for d in docs]
    assert all(len(r["scores"]) == len(d.sentences) and r["summary"] == d.sentences[r["sentence_indices"][0]].strip()
               for r, d in zip(rows, docs))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"] == {k: v for k, v in metrics["oracle"].items() if k != "max_sentences"}  # same picks
    assert metrics["metrics"]["rouge1"] > metrics["lead"]["rouge1"]


def test_dev_rouge1_chooses_the_kept_weights(base_dir, tmp_path):
    """8 training abstracts, 4 a step (2 steps an epoch), 9 steps: the dev ROUGE-1 F1 is scored at
    every epoch end and after the last step, one dev_history.jsonl line each, and the saved
    model is the best one (the final dev evaluation of the saved weights gives the best score)."""
    out = tmp_path / "model"
    assert main(["finetune", "summarize", "--model", str(base_dir), "--train", str(TRAIN), "--dev", str(DEV),
                 "--output", str(out), "--max-train-examples", "8", "--max-steps", "9", "--batch-size", "4",
                 "--lr", "3e-3", "--warmup-ratio", "0", "--dropout", "0", "--max-seq-length", "64",
                 "--cross-attention-heads", "2", "--oracle-sentences", "1", "--mixed-precision", "no", "--no-progress"]) == 0
    history = [json.loads(line) for line in (out / "dev_history.jsonl").read_text().splitlines()]
    assert [(h["step"], h["epoch"]) for h in history] == [(2, 1.0), (4, 2.0), (6, 3.0), (8, 4.0), (9, 4.5)]
    assert all(h["metric"] == "rouge1" and set(h["metrics"]) >= {"rouge1", "rouge2", "rougeL"} for h in history)
    summary = json.loads((out / "finetune_summary.json").read_text())
    best = max(history, key=lambda h: h["score"])  # the first of the best
    assert summary["selected_on_dev"] == {"metric": "rouge1", "step": best["step"], "score": best["score"], "evaluations": 5,
                                          "stopped_early": False}
    assert summary["dev_metrics"]["rouge1"] == pytest.approx(best["score"])  # measured: step 8 best, 9 lower


def test_evaluate_files_score_the_same_and_reload_is_identical(trained, tmp_path, capsys):
    runs = []
    for name in ("a", "b"):  # two fresh loads of the saved model
        out = tmp_path / name
        assert main(["evaluate", "summarize", "--model", str(trained), "--data", str(DEV), "--output", str(out),
                     "--precision", "no", "--no-progress"]) == 0
        runs.append((out / "predictions.jsonl").read_text())
    assert runs[0] == runs[1]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["documents"] == 10 and metrics["budget"]["max_sentences"] == 1 and metrics["multi_reference"] == "max"
    assert metrics["oracle"]["rouge1"] >= metrics["metrics"]["rouge1"]
    capsys.readouterr()
    assert main(["score", "rouge", "--references", str(DEV), "--predictions", str(tmp_path / "a" / "predictions.jsonl")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert {k: scored[k] for k in metrics["metrics"]} == metrics["metrics"]
    # A larger budget: two sentences per summary.
    assert main(["evaluate", "summarize", "--model", str(trained), "--data", str(DEV), "--output", str(tmp_path / "c"),
                 "--max-sentences", "2", "--precision", "no", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "c" / "predictions.jsonl").read_text().splitlines()]
    assert all(len(r["sentence_indices"]) == 2 and r["sentence_indices"] == sorted(r["sentence_indices"]) for r in rows)


def test_predict_on_raw_text_gives_sentences_with_offsets(trained, tmp_path, capsys):
    from spanbert.tasks.summarize import ExtractiveSummarizer

    doc = tmp_path / "speech.txt"
    doc.write_text(TEXT, encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", "summarize", "--model", str(trained), "--input", str(doc), "--max-sentences", "3",
                 "--json", "--precision", "no"]) == 0
    result = json.loads(capsys.readouterr().out)
    chosen = result["sentences"]
    assert len(chosen) == 3 and [c["index"] for c in chosen] == sorted(c["index"] for c in chosen)
    for c in chosen:
        assert TEXT[c["start"] : c["end"]] == c["text"]
    assert result["summary"] == " ".join(c["text"] for c in chosen)
    ranked = sorted(range(len(result["scores"])), key=lambda i: -result["scores"][i])[:3]
    assert sorted(ranked) == [c["index"] for c in chosen]

    api = ExtractiveSummarizer(trained, precision="no").summarize([TEXT], max_sentences=3)[0]
    assert api.to_dict() == result

    assert main(["predict", "summarize", "--model", str(trained), "--text", "Short text. Only two sentences here.",
                 "--precision", "no"]) == 0
    assert capsys.readouterr().out.strip() in ("Short text.", "Only two sentences here.")


@pytest.mark.parametrize("args, message", [
    (["--text", "  "], "the text is empty"),
    ([], "--text / --input: give exactly one"),
    (["--input", "/nonexistent/file.txt"], "/nonexistent/file.txt: no such file"),
])
def test_predict_bad_input(trained, capsys, args, message):
    assert main(["predict", "summarize", "--model", str(trained), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or (err.startswith("error: ") and message in err and "\n" not in err)


def test_a_base_encoder_is_not_a_summarizer(base_dir, capsys):
    assert main(["predict", "summarize", "--model", str(base_dir), "--text", "A text."]) == 2
    assert "not a fine-tuned summarization model" in capsys.readouterr().err
