"""`spanbert pretrain` options of issue 16: a validation corpus whose held-out metrics land in
metrics.csv and the loss plot, the start-up lines (resolved precision, new heads), a time budget
of this invocation only, the masking geometry on the command line, one document per line, and
the shared option vocabulary (--precision with its old name, --seed 42, --batch-size as the
global batch split by --grad-accum, --warmup-ratio, help text with literal brackets)."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spanbert.cli import main

from .conftest import DATA


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SPANBERT_DEBUG", raising=False)


def base_args(tokenizer: Path, out: Path, *extra: str) -> list[str]:
    """A tiny fp32 run on the Washington address (48-token segments, batch 4, 4 steps)."""
    return ["pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"), "--tokenizer", str(tokenizer),
            "--preset", "tiny", "--max-length", "48", "--batch-size", "4", "--max-steps", "4", "--save-every", "0",
            "--precision", "no", "--no-progress", "--output", str(out), *extra]


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def training_args(run: Path) -> dict:
    return json.loads((run / "training_args.json").read_text())


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


@pytest.fixture
def spy_pretrain(monkeypatch):
    """What run_pretrain_job hands to spanbert.pretrain.train.pretrain (collator, arguments, held-out set), per call."""
    import spanbert.pretrain.pipeline as pipeline

    calls: list[dict] = []
    real = pipeline.pretrain

    def spy(model, tokenizer, dataset, collator, args, **kwargs):
        calls.append({"collator": collator, "args": args, "dataset": dataset, "tokenizer": tokenizer, **kwargs})
        return real(model, tokenizer, dataset, collator, args, **kwargs)

    monkeypatch.setattr(pipeline, "pretrain", spy)
    return calls


# -- a validation corpus ------------------------------------------------------------------------------


def test_validation_corpus_metrics_are_columns_of_metrics_csv_and_curves_of_the_plot(tiny_tokenizer_dir, tmp_path,
                                                                                     spy_pretrain):
    from spanbert.pretrain.heldout import evaluate_heldout
    from spanbert.pretrain.modeling import load_for_pretraining
    from spanbert.pretrain.train import HELDOUT_METRIC_FIELDS, _heldout_points

    run = tmp_path / "run"
    validation = DATA / "tiny_corpus.txt"
    assert main(base_args(tiny_tokenizer_dir, run, "--validation-corpus", str(validation), "--eval-every", "2")) == 0
    table = rows(run)
    assert [r["step"] for r in table] == ["1", "2", "3", "4"]
    evaluated = {int(r["step"]): r for r in table if r["heldout_mlm_loss"]}
    assert sorted(evaluated) == [2, 4]  # every --eval-every steps; the other rows leave the columns empty
    assert all(r[k] == "" for r in table if int(r["step"]) in (1, 3) for k in HELDOUT_METRIC_FIELDS)

    # the columns are heldout_metrics.jsonl's numbers (one source, not a second evaluation) ...
    records = {r["step"]: r for r in map(json.loads, (run / "heldout_metrics.jsonl").read_text().splitlines())}
    assert sorted(records) == [0, 2, 4]
    for step, row in evaluated.items():
        for key in ("mlm_loss", "sbo_loss", "mlm_top1", "sbo_top1"):
            assert float(row["heldout_" + key]) == pytest.approx(records[step][key], rel=1e-12)
        assert float(row["heldout_loss"]) == pytest.approx(records[step]["mlm_loss"] + records[step]["sbo_loss"])

    # ... and they are the final model's metrics on the validation text: scored again here from the saved model
    call = spy_pretrain[0]
    heldout = call["heldout"]
    assert call["run_settings"]["validation_corpus"] == [str(validation.resolve())]
    assert len(heldout) > 0 and call["run_settings"]["heldout_fraction"] == 0
    model = load_for_pretraining(str(run)).eval()
    again = evaluate_heldout(model, heldout, call["collator"], batch_size=4, precision="no",
                             unigram=call["heldout_unigram"])
    assert float(evaluated[4]["heldout_mlm_loss"]) == pytest.approx(again.mlm_loss, rel=1e-5)
    assert float(evaluated[4]["heldout_mlm_top1"]) == pytest.approx(again.mlm_top1, abs=1e-9)
    assert float(evaluated[4]["heldout_sbo_loss"]) == pytest.approx(again.sbo_loss, rel=1e-5)

    # the plot: a PNG, with held-out curves at the evaluated steps (0 from the jsonl: metrics.csv starts at step 1)
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = _heldout_points(table, run / "heldout_metrics.jsonl", 1.0)
    assert [s for s, _ in points["mlm_loss"]] == [0, 2, 4]
    assert points["loss"][0][1] == pytest.approx(records[0]["mlm_loss"] + records[0]["sbo_loss"])
    assert training_args(run)["validation_corpus"] == [str(validation.resolve())]


def test_validation_corpus_and_heldout_fraction_are_one_choice(tiny_tokenizer_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = base_args(tiny_tokenizer_dir, out, "--validation-corpus", str(DATA / "tiny_corpus.txt"),
                     "--heldout-fraction", "0.2")
    assert main(args) == 2
    line = error_line(capsys)
    assert "--validation-corpus" in line and "--heldout-fraction" in line
    assert not out.exists()


# -- start-up lines and training_args.json --------------------------------------------------------------


def _bert_checkpoint(folder: Path, tokenizer, kind: str) -> Path:
    """A tiny plain transformers BERT checkpoint: encoder only ("encoder") or with an MLM head ("mlm")."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    (BertModel(config) if kind == "encoder" else BertForMaskedLM(config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind, heads", [("encoder", ["MLM", "SBO"]), ("mlm", ["SBO"]), ("ours", [])])
def test_the_run_says_which_heads_are_new_and_what_precision_auto_became(tiny_tokenizer, tiny_tokenizer_dir, tmp_path,
                                                                           caplog, kind, heads):
    from spanbert.core.precision import resolve_precision

    if kind == "ours":  # a pre-training run of ours has both heads
        start = tmp_path / "ours"
        assert main(base_args(tiny_tokenizer_dir, start, "--max-steps", "1")) == 0
    else:
        start = _bert_checkpoint(tmp_path / kind, tiny_tokenizer, kind)
    out = tmp_path / "run"
    caplog.clear()
    with caplog.at_level(logging.INFO):
        args = [a for a in base_args(tiny_tokenizer_dir, out, "--max-steps", "1") if a not in ("--preset", "tiny")]
        args[args.index("--precision") + 1] = "auto"
        assert main([*args, "--init-from", str(start)]) == 0
    lines = caplog.messages
    resolved = resolve_precision("auto")
    name = {"bf16": "bf16 autocast", "no": "fp32"}[resolved]
    assert any(m.startswith(f"precision: {name} (--precision auto: ") for m in lines), lines
    expected = (f"new heads: {', '.join(heads)} (not in --init-from)" if heads
                else "new heads: none (--init-from has them all)")
    assert expected in lines, lines
    recorded = training_args(out)
    assert recorded["precision_resolved"] == resolved and recorded["mixed_precision"] == "auto"
    assert recorded["new_heads"] == heads


def test_training_args_json_is_complete(tiny_tokenizer_dir, tmp_path):
    import transformers

    out = tmp_path / "run"
    assert main(base_args(tiny_tokenizer_dir, out, "--doc-per", "line", "--geometric-p", "0.3", "--max-span-words", "6",
                          "--warmup-ratio", "0.5")) == 0
    recorded = training_args(out)
    assert recorded["corpus"] == [str((DATA / "sotu_1790_washington.txt").resolve())]
    assert recorded["tokenizer"] == str(tiny_tokenizer_dir.resolve()) and recorded["init_from"] is None
    assert recorded["preset"] == "tiny" and recorded["doc_per"] == "line" and recorded["validation_corpus"] == []
    assert recorded["masking"]["geometric_p"] == 0.3 and recorded["masking"]["max_span_words"] == 6
    assert recorded["masking"]["scheme"] == "span" and recorded["masking"]["mask_ratio"] == 0.15
    assert recorded["batch_size"] == 4 and recorded["micro_batch_size"] == 4 and recorded["processes"] == 1
    assert recorded["warmup_ratio"] == 0.5 and recorded["warmup_steps"] is None
    assert recorded["warmup_steps_resolved"] == 2  # int(0.5 x 4 steps)
    assert recorded["seed"] == 42 and recorded["precision_resolved"] == "no" and recorded["new_heads"] == ["MLM", "SBO"]
    assert recorded["versions"]["transformers"] == transformers.__version__
    assert recorded["versions"]["torch"] == torch.__version__


# -- the time budget ----------------------------------------------------------------------------------


def test_time_budget_counts_only_this_invocation(tiny_tokenizer_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(base_args(tiny_tokenizer_dir, run, "--max-steps", "2", "--save-every", "2")) == 0
    # the earlier session(s) trained for 11.6 days: a budget counting them would stop at once
    state_file = run / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["state"]["elapsed_s"] = 1e6
    state_file.write_text(json.dumps(state))
    capsys.readouterr()
    assert main(["pretrain", "--output", str(run), "--resume", "--max-steps", "5", "--time-budget", "1",
                 "--no-progress"]) == 0
    assert "time budget reached" not in capsys.readouterr().out
    table = rows(run)
    assert [r["step"] for r in table] == ["1", "2", "3", "4", "5"]
    assert float(table[-1]["elapsed_s"]) > 1e6  # elapsed_s still sums the sessions
    # while a budget this session does use up still stops it (after the step that used it up)
    assert main(["pretrain", "--output", str(run), "--resume", "--max-steps", "50", "--time-budget", "1e-6",
                 "--no-progress"]) == 0
    assert "time budget reached" in capsys.readouterr().out
    assert [r["step"] for r in rows(run)][-1] == "6"


# -- the masking geometry -------------------------------------------------------------------------------


def _mean_truncated_geometric(p: float, longest: int) -> float:
    """E[l] for P(l) proportional to p (1-p)^(l-1), l = 1..longest (the paper: 3.8 words for 0.2 and 10)."""
    lengths = np.arange(1, longest + 1)
    weights = p * (1 - p) ** (lengths - 1)
    return float((lengths * weights).sum() / weights.sum())


def _drawn_span_lengths(collator, dataset, monkeypatch, rows_wanted: int = 3000) -> np.ndarray:
    """Span lengths (words) the collator draws while masking ``rows_wanted`` rows of real segments."""
    import spanbert.pretrain.collator as collator_module

    drawn: list[np.ndarray] = []
    real = collator_module.mask_batch

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        drawn.append(result.drawn_span_words[:, 1])
        return result

    monkeypatch.setattr(collator_module, "mask_batch", spy)
    segments = [dataset[i] for i in range(len(dataset))]
    for start in range(0, rows_wanted, 100):
        collator([{**segments[(start + i) % len(segments)], "example_id": start + i} for i in range(100)])
    return np.concatenate(drawn)


def test_geometry_options_change_the_span_lengths_as_the_formula_says(tiny_tokenizer_dir, tmp_path, spy_pretrain,
                                                                      monkeypatch):
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "paper", "--max-steps", "1")) == 0
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "short", "--max-steps", "1", "--geometric-p", "0.5",
                          "--max-span-words", "4")) == 0
    paper, short = spy_pretrain
    assert (paper["collator"].config.geometric_p, paper["collator"].config.max_span_words) == (0.2, 10)
    lengths = _drawn_span_lengths(paper["collator"], paper["dataset"], monkeypatch)
    assert _mean_truncated_geometric(0.2, 10) == pytest.approx(3.797, abs=1e-3)
    assert lengths.mean() == pytest.approx(3.797, abs=0.15) and lengths.max() == 10
    lengths = _drawn_span_lengths(short["collator"], short["dataset"], monkeypatch)
    assert lengths.mean() == pytest.approx(_mean_truncated_geometric(0.5, 4), abs=0.06)  # 1.73 words
    assert set(lengths.tolist()) == {1, 2, 3, 4}
    assert training_args(tmp_path / "short")["masking"]["geometric_p"] == 0.5


def test_geometry_options_are_checked(tiny_tokenizer_dir, tmp_path, capsys):
    for extra, needle in ((["--geometric-p", "0"], "--geometric-p"), (["--geometric-p", "1.5"], "--geometric-p"),
                          (["--max-span-words", "0"], "--max-span-words")):
        assert main(base_args(tiny_tokenizer_dir, tmp_path / "never", *extra)) == 2
        assert needle in error_line(capsys)
    assert not (tmp_path / "never").exists()


# -- one document per line ------------------------------------------------------------------------------


def test_doc_per_line_makes_every_non_blank_line_a_document(tiny_tokenizer, tiny_tokenizer_dir, tmp_path, caplog):
    import datasets

    from spanbert.pretrain.corpus import iter_documents, pack_documents

    source = DATA / "tiny_corpus.txt"  # hard-wrapped prose: 52 lines in 5 blank-line blocks
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert list(iter_documents([source], doc_per="line")) == lines
    assert len(list(iter_documents([source], doc_per="blank_line"))) < len(lines)
    with caplog.at_level(logging.INFO):
        args = base_args(tiny_tokenizer_dir, tmp_path / "run", "--max-steps", "1", "--doc-per", "line",
                         "--heldout-fraction", "0.25", "--max-length", "32", "--batch-size", "2")
        args[args.index("--corpus") + 1] = str(source)
        assert main(args) == 0
    # the run split by document: as many documents as the lines give (a line too short for a segment gives none)
    held = next(m for m in caplog.messages if m.startswith("held out "))
    by_line = pack_documents(datasets.Dataset.from_dict({"text": lines}), tiny_tokenizer, max_length=32,
                             with_doc_ids=True)
    assert int(held.rsplit(" of ", 1)[1]) == len(set(by_line["doc_id"])) > 30, held
    assert training_args(tmp_path / "run")["doc_per"] == "line"


# -- the shared option vocabulary -------------------------------------------------------------------------


def test_precision_and_its_old_name(tiny_tokenizer_dir, tmp_path, capsys):
    old = tmp_path / "old"
    args = [a for a in base_args(tiny_tokenizer_dir, old, "--max-steps", "1") if a not in ("--precision", "no")]
    assert main([*args, "--mixed-precision", "no"]) == 0
    assert training_args(old)["mixed_precision"] == "no"
    assert main([*args, "--mixed-precision", "no", "--precision", "bf16", "--overwrite"]) == 2
    assert "--mixed-precision" in error_line(capsys)
    default = tmp_path / "default"
    assert main([a for a in base_args(tiny_tokenizer_dir, default, "--max-steps", "1")
                 if a not in ("--precision", "no")]) == 0
    assert training_args(default)["mixed_precision"] == "auto" and training_args(default)["seed"] == 42


def test_batch_size_is_the_global_batch_and_grad_accum_splits_it(tiny_tokenizer_dir, tmp_path, monkeypatch):
    from spanbert.pretrain.collator import SpanMaskingCollator

    sizes: list[int] = []
    real = SpanMaskingCollator.__call__

    def counting(self, features):
        sizes.append(len(features))
        return real(self, features)

    monkeypatch.setattr(SpanMaskingCollator, "__call__", counting)
    common = ["--dropout", "0", "--batch-size", "8", "--max-steps", "3", "--lr", "1e-3"]
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "one", *common)) == 0
    assert sizes == [8] * 3
    sizes.clear()
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "split", *common, "--grad-accum", "2")) == 0
    assert sizes == [4] * 6  # micro-batches of 4, two per optimizer step
    assert training_args(tmp_path / "split")["micro_batch_size"] == 4
    for a, b in zip(rows(tmp_path / "one"), rows(tmp_path / "split"), strict=True):
        for key in ("loss", "mlm_loss", "sbo_loss", "grad_norm", "tokens"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-5), (a["step"], key)


def test_the_transformers_script_names_are_accepted(tiny_tokenizer_dir, tmp_path, capsys):
    """--learning-rate, --num-train-epochs and --gradient-accumulation-steps (run_mlm.py's names)
    mean --lr, --epochs and --grad-accum: the same run, the same record; both names with two values
    is refused."""
    ours = base_args(tiny_tokenizer_dir, tmp_path / "ours", "--lr", "2e-3", "--grad-accum", "2", "--dropout", "0")
    theirs = base_args(tiny_tokenizer_dir, tmp_path / "theirs", "--learning-rate", "2e-3",
                       "--gradient-accumulation-steps", "2", "--dropout", "0")
    assert main(ours) == 0 and main(theirs) == 0
    a, b = training_args(tmp_path / "ours"), training_args(tmp_path / "theirs")
    assert (b["lr"], b["grad_accum"], b["micro_batch_size"]) == (2e-3, 2, 2) == (a["lr"], a["grad_accum"], a["micro_batch_size"])
    assert [r["loss"] for r in rows(tmp_path / "theirs")] == [r["loss"] for r in rows(tmp_path / "ours")]
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "both", "--lr", "1e-3", "--learning-rate", "2e-3")) == 2
    assert "--learning-rate" in error_line(capsys)
    epochs = base_args(tiny_tokenizer_dir, tmp_path / "epochs", "--num-train-epochs", "0.5")
    epochs.remove("--max-steps"), epochs.remove("4")
    assert main(epochs) == 0 and training_args(tmp_path / "epochs")["epochs"] == 0.5


def test_a_batch_that_does_not_split_is_refused_before_reading(tiny_tokenizer_dir, tmp_path, capsys):
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "never", "--batch-size", "6", "--grad-accum", "4")) == 2
    line = error_line(capsys)
    assert "--batch-size" in line and "6" in line and "--grad-accum 4" in line
    assert not (tmp_path / "never").exists()


def test_warmup_ratio_and_warmup_steps(tiny_tokenizer_dir, tmp_path):
    lr = 1e-3
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "ratio", "--lr", str(lr), "--warmup-ratio", "0.5")) == 0
    # transformers' linear schedule with 2 of 4 steps warming up, read after each step
    assert [float(r["lr"]) for r in rows(tmp_path / "ratio")] == pytest.approx([lr / 2, lr, lr / 2, 0])
    assert main(base_args(tiny_tokenizer_dir, tmp_path / "steps", "--lr", str(lr), "--warmup-ratio", "0.5",
                          "--warmup-steps", "1")) == 0  # steps win
    assert [float(r["lr"]) for r in rows(tmp_path / "steps")] == pytest.approx([lr, 2 * lr / 3, lr / 3, 0])


def test_help_keeps_brackets_and_option_names_whole():
    """The help as a user piping it at 80 columns sees it (a process of its own, as the terminal matters)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH",)}
    env["COLUMNS"] = "80"
    done = subprocess.run([sys.executable, "-m", "spanbert", "pretrain", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    flat = " ".join(done.stdout.split())
    assert "pip install 'spanbert[chinese]'" in flat  # rich markup used to swallow "[chinese]"
    assert "[CLS] and [SEP]" in flat
    for option in ("--validation-corpus", "--geometric-p", "--max-span-words", "--warmup-ratio", "--precision",
                   "--grad-accum", "--time-budget"):
        assert option in done.stdout
    assert "--mixed-precision" not in done.stdout  # the old name works, unlisted
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_every_command_shows_its_bracketed_words():
    """No help text of any command loses a bracketed word ("[chinese]", "[MASK]", "[default: ...]")."""
    import contextlib
    import io
    import re

    import typer

    from spanbert.cli import app

    def commands(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from commands(sub, [*path, name])
        else:
            yield path, cmd

    checked = 0
    for path, cmd in commands(typer.main.get_command(app), []):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([*path, "--help"]) == 0
        shown = " ".join(out.getvalue().split())
        for text in [cmd.help or ""] + [p.help or "" for p in cmd.params if not getattr(p, "hidden", False)]:
            for word in re.findall(r"\[[^\]\s]+\]", text):
                assert word in shown, (path, word)
                checked += 1
    assert checked >= 5


def test_command_lists_show_whole_first_sentences(capsys):
    """A group's command list gives each command's whole first sentence (click would cut it with "...")."""
    for group in ([], ["finetune"], ["ablate"]):
        assert main([*group, "--help"]) == 0
        listing = capsys.readouterr().out.split("Commands:", 1)[1]
        assert "..." not in listing.replace("(sentiment, topic, ...)", "")
    assert main(["--help"]) == 0
    assert "Pre-train SpanBERT (span masking + span boundary objective) on your corpus." in \
        " ".join(capsys.readouterr().out.split())
