"""End to end through the CLI: a tiny model learns two small real LitBank documents (the first
sentences of Pride and Prejudice and of Alice in Wonderland), evaluates with the scorer's
metrics, reloads to identical clusters and predicts raw text as JSON and HTML; bad input
gives one line naming the file (and line) and exit status 2."""

from __future__ import annotations

import csv
import json

import pytest

from spanbert.cli import main
from spanbert.tasks.coref.conll import read_conll

from .conftest import DATA, TINY_BERT, save_tiny_encoder

SAMPLES = [DATA / "coref" / "1342_pride_and_prejudice_brat_head.conll",
           DATA / "coref" / "11_alices_adventures_in_wonderland_brat_head.conll"]
TINY = {**TINY_BERT, "max_position_embeddings": 128}
HEAD = ["--max-segment-length", "64", "--max-span-width", "10", "--ffnn-size", "64", "--feature-size", "8",
        "--max-antecedents", "10"]


@pytest.fixture(scope="module")
def train_files(tmp_path_factory):
    """The first 40 token lines (two sentences each) of the two committed samples, as two documents."""
    out = tmp_path_factory.mktemp("coref_data")
    files = []
    for path in SAMPLES:
        lines = path.read_text().split("\n")[:41] + ["", "#end document", ""]
        files.append(out / path.name)
        files[-1].write_text("\n".join(lines))
    return files


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, tiny_tokenizer):
    return save_tiny_encoder(tmp_path_factory.mktemp("coref") / "tiny-bert", tiny_tokenizer, **TINY)


@pytest.fixture(scope="module")
def coref_model(tiny_bert, train_files):
    """200 steps (one document each) on the two documents, ~2 s; dev = the same documents.

    ``--keep-last``: the tests below check what 200 steps learned (the singleton test needs the
    fully trained mention probabilities; an earlier step reaches the same linking F1 and would
    be the one kept). Dev is scored every 50 steps only, to keep the run short.
    """
    out = tiny_bert.parent / "model"
    rc = main(["finetune", "coref", "--model", str(tiny_bert), "--train", str(train_files[0]), "--train", str(train_files[1]),
               "--dev", str(train_files[0].parent), "--output", str(out), *HEAD, "--mention-loss-weight", "1",
               "--max-steps", "200", "--lr", "3e-3", "--dropout", "0", "--mixed-precision", "no", "--no-progress",
               "--keep-last", "--eval-every", "50"])
    assert rc == 0
    return out


def test_training_learns_the_training_documents(coref_model):
    summary = json.loads((coref_model / "finetune_summary.json").read_text())
    assert summary["steps"] == 200 and summary["train_documents"] == 2 and summary["train_mentions"] == 11
    with (coref_model / "finetune_metrics.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    # measured: ~50-100 at the start, < 0.01 at step 200
    assert losses[-1] < losses[0] / 10 and summary["final_loss"] < 1.0
    # training-document CoNLL F1: measured 71.7 (every link found; 5 of the 11 gold mentions are
    # singletons, which a coreference model never outputs, so B3/CEAF-e recall stay below 100)
    assert summary["dev_conll_f1"] > 60
    config = json.loads((coref_model / "config.json").read_text())
    assert config["model_type"] == "spanbert_coref" and config["max_span_width"] == 10
    assert json.loads((coref_model / "coref_settings.json").read_text()) == {"max_segment_length": 64,
                                                                             "singleton_threshold": None}


def test_dev_conll_f1_chooses_the_kept_weights(tiny_bert, train_files, tmp_path):
    """With dev data, the CoNLL F1 is scored at every epoch end (2 documents: every 2 steps) and
    after the last step, one dev_history.jsonl line each; the model saved is the best one (the
    final dev evaluation of the saved weights gives the best score again)."""
    out = tmp_path / "model"
    assert main(["finetune", "coref", "--model", str(tiny_bert), "--train", str(train_files[0]), "--train", str(train_files[1]),
                 "--dev", str(train_files[0].parent), "--output", str(out), *HEAD, "--mention-loss-weight", "1",
                 "--max-steps", "41", "--lr", "3e-3", "--dropout", "0", "--mixed-precision", "no", "--no-progress"]) == 0
    history = [json.loads(line) for line in (out / "dev_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [*range(2, 41, 2), 41]  # 20 epoch ends and the final step
    assert [h["epoch"] for h in history[-2:]] == [20.0, 20.5]
    assert all(h["metric"] == "conll_f1" and h["score"] == h["metrics"]["conll_f1"] for h in history)
    assert set(history[0]["metrics"]) == {"conll_f1", "muc_f1", "bcub_f1", "ceafe_f1"}
    summary = json.loads((out / "finetune_summary.json").read_text())
    selected = summary["selected_on_dev"]
    best = max(history, key=lambda h: h["score"])  # the first of the best
    assert selected == {"metric": "conll_f1", "step": best["step"], "score": best["score"], "evaluations": 21, "stopped_early": False}
    assert selected["score"] > history[0]["score"]  # it learned something on the way
    assert summary["dev_conll_f1"] == pytest.approx(selected["score"])


def test_singletons_flag_adds_the_unlinked_mentions(coref_model, train_files, tmp_path, capsys):
    """The mention loss trains the mention probabilities, so on its training documents the model
    finds the singleton mentions too: with --singletons, measured 10 of the 11 key mentions found
    (without: the 6 linked ones) and CoNLL F1 95.8 (without: 71.7)."""
    out = tmp_path / "eval"
    assert main(["evaluate", "coref", "--model", str(coref_model), "--data", str(train_files[0].parent),
                 "--output", str(out), "--singletons"]) == 0
    saved = json.loads((out / "metrics.json").read_text())
    metrics = saved["metrics"]
    assert saved["singleton_threshold"] == 0.0
    summary = json.loads((coref_model / "finetune_summary.json").read_text())
    found, key = metrics["mentions"]["recall_num_den"]
    assert key == 11 and found >= 9
    assert metrics["conll_f1"] > summary["dev_conll_f1"] + 10


def test_evaluate_writes_a_response_the_scorer_reads_alike(coref_model, train_files, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "coref", "--model", str(coref_model), "--data", str(train_files[0].parent), "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    summary = json.loads((coref_model / "finetune_summary.json").read_text())
    assert metrics["conll_f1"] == pytest.approx(summary["dev_conll_f1"])  # the reloaded model: same clusters
    assert (out / "response.conll").read_text() == (coref_model / "dev" / "response.conll").read_text()
    response = read_conll(out / "response.conll")
    gold = {d.name: d for f in train_files for d in read_conll(f)}
    assert {d.name: d.words for d in response} == {name: d.words for name, d in gold.items()}
    capsys.readouterr()
    assert main(["score", "coref", "--key", str(train_files[0]), "--response", str(out / "response.conll")]) == 2  # not in key
    capsys.readouterr()


def test_predict_raw_text_as_json_and_html_and_reload_is_identical(coref_model, train_files, tmp_path, capsys):
    text = " ".join(read_conll(train_files[1])[0].words)  # Alice: "... by her sister ... she had peeped ..."
    html = tmp_path / "clusters.html"
    assert main(["predict", "coref", "--model", str(coref_model), "--text", text, "--json", "--html", str(html)]) == 0
    first = json.loads(capsys.readouterr().out)
    clusters = first[0]["clusters"]
    assert first[0]["text"] == text and len(clusters) >= 1
    for cluster in clusters:
        for m in cluster:
            assert text[m["start_char"] : m["end_char"]] == m["text"]
    assert any({m["text"] for m in c} >= {"Alice", "she"} or {m["text"] for m in c} >= {"her", "she"} for c in clusters)
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count('class="mention"') >= sum(len(c) for c in clusters)
    from spanbert.tasks.coref.inference import CorefResolver

    again = CorefResolver(coref_model, precision="no").resolve([text])[0]
    assert [[m.to_dict() for m in c] for c in again] == clusters


def test_bad_input_is_one_line_and_exit_2(coref_model, tiny_bert, train_files, tmp_path, capsys):
    bad = tmp_path / "bad.conll"
    bad.write_text("#begin document (x); part 0\nx\t0\t0\tAlice\t(1\nx\t0\t1\tsmiled\t2)\n\n#end document\n")
    assert main(["finetune", "coref", "--model", str(tiny_bert), "--train", str(bad), "--output", str(tmp_path / "m"),
                 "--max-steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}:3:") and "never opened" in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty.conll"
    empty.write_text("#begin document (e); part 0\n\n#end document\n")
    assert main(["evaluate", "coref", "--model", str(coref_model), "--data", str(empty), "--output", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {empty}:1:") and "no tokens" in err and len(err.splitlines()) == 1
    assert main(["predict", "coref", "--model", str(coref_model), "--text", " \n "]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n")
    assert main(["predict", "coref", "--model", str(coref_model), "--input", str(blank)]) == 2
    assert capsys.readouterr().err.strip() == "error: --text / --input: nothing to predict"
    (tmp_path / "nothing").mkdir()
    assert main(["finetune", "coref", "--model", str(tiny_bert), "--train", str(tmp_path / "nothing"), "--output", str(tmp_path / "m"),
                 "--no-progress"]) == 2
    assert "no CoNLL files" in capsys.readouterr().err


def test_evaluate_gap_writes_predictions_that_score_gap_reads_alike(coref_model, tmp_path, capsys):
    from .test_coref_gap import HEADER, ROWS

    key = tmp_path / "gap.tsv"
    key.write_text("\n".join([HEADER, *ROWS]) + "\n")
    out = tmp_path / "gap"
    assert main(["evaluate", "gap", "--model", str(coref_model), "--data", str(key), "--output", str(out), "--no-progress"]) == 0
    assert "GAP (3 examples): F1" in capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())["metrics"]
    lines = (out / "predictions.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["t-1", "t-2", "t-3"]
    assert main(["score", "gap", "--key", str(key), "--response", str(out / "predictions.tsv")]) == 0
    assert json.loads(capsys.readouterr().out) == saved
    assert saved["overall"]["tp"] + saved["overall"]["fp"] + saved["overall"]["tn"] + saved["overall"]["fn"] == 6
