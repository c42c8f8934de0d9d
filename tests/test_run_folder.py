"""A `spanbert pretrain` run folder belongs to one run: a fresh run never mixes with an earlier
one (refused, or replaced with --overwrite), --resume continues only the run that is stored
there, a damaged newest checkpoint falls back to an intact older one, and a run that fails at
start-up leaves nothing behind."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from spanbert.cli import main

from .conftest import DATA


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SPANBERT_DEBUG", raising=False)


def common(tokenizer: Path) -> list[str]:
    """The options of the reproduced faults (A in the bug reports); fp32, as before --precision auto."""
    return ["--corpus", str(DATA / "tiny_corpus.txt"), "--tokenizer", str(tokenizer), "--preset", "tiny",
            "--max-length", "64", "--batch-size", "4", "--precision", "no", "--no-progress"]


def pretrain(tokenizer: Path, out: Path, *extra: str) -> int:
    """``spanbert pretrain A --output out extra...`` in this process; its exit status."""
    return main(["pretrain", *common(tokenizer), "--output", str(out), *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


def steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_fresh_run_into_a_run_folder_is_refused_and_overwrite_replaces_it(tiny_tokenizer_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "10", "--save-every", "5") == 0
    (run / "notes.txt").write_text("mine")  # a file of the user's, not of the run
    before = snapshot(run)
    capsys.readouterr()

    # without --resume: refused, nothing touched (it used to delete the new checkpoints and rewrite metrics.csv)
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "4", "--save-every", "2") == 2
    line = one_error_line(capsys)
    assert str(run) in line and "--resume" in line and "--overwrite" in line
    # a run that fails validation later (one batch is more than the corpus) is refused first: metrics.csv stays
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "4", "--batch-size", "1000") == 2
    one_error_line(capsys)
    # --overwrite that fails validation removes nothing either
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "4", "--batch-size", "1000", "--overwrite") == 2
    assert "fewer than one global batch" in one_error_line(capsys)
    assert snapshot(run) == before

    # --overwrite: the old run's files go, the user's stay, and the new run is whole
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "4", "--save-every", "2", "--overwrite") == 0
    assert checkpoints(run) == ["step-00000002", "step-00000004"]
    assert steps(run) == [1, 2, 3, 4]
    assert json.loads((run / "training_args.json").read_text())["max_steps"] == 4
    assert (run / "notes.txt").read_text() == "mine"
    # ... and --resume continues the new run, not the old one
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "6", "--save-every", "2", "--resume") == 0
    assert steps(run) == [1, 2, 3, 4, 5, 6] and checkpoints(run) == ["step-00000004", "step-00000006"]

    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "6", "--resume", "--overwrite") == 2
    assert "--overwrite" in one_error_line(capsys)


@pytest.mark.parametrize("option, given, stored", [
    ("--preset", "mini", "tiny"),  # used to end in a state-dict RuntimeError (exit 1)
    ("--batch-size", "8", "4"),
    ("--seed", "3", "42"),
    ("--geometric-p", "0.5", "0.2"),
    ("--max-span-words", "4", "10"),
    ("--precision", "bf16", "'no'"),
    ("--mixed-precision", "bf16", "'no'"),  # the old name of --precision: refused under the new name
    ("--lr", "0.001", "0.0001"),
    ("--max-length", "48", "64"),
    ("--mask-ratio", "0.3", "0.15"),
    ("--masking", "token", "span"),
    ("--sbo-weight", "0.5", "1.0"),
    ("--grad-accum", "2", "1"),
    ("--corpus", str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")),
])
def test_resume_refuses_another_value_of_an_option_that_changes_training(tiny_tokenizer_dir, tmp_path, capsys,
                                                                         option, given, stored):
    run = tmp_path / "run"
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "5", "--save-every", "5") == 0
    before = snapshot(run)
    capsys.readouterr()
    argv = [a for a in common(tiny_tokenizer_dir)]
    if option == "--corpus":
        argv[argv.index("--corpus") + 1] = given
    else:
        argv += [option, given]
    if option in ("--precision", "--mixed-precision"):
        argv.remove("--precision")
        argv.remove("no")
    assert main(["pretrain", *argv, "--output", str(run), "--max-steps", "8", "--resume"]) == 2
    line = one_error_line(capsys)
    assert option.replace("--mixed-", "--") in line and given in line and stored in line
    assert snapshot(run) == before


def test_resume_takes_the_options_left_out_from_the_stored_run(tiny_tokenizer_dir, tmp_path, capsys):
    """`--resume` with only the output folder (and the steps to extend to): the corpus,
    tokenizer, model size, batch size, ... of the stored run are used."""
    run = tmp_path / "run"
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "5", "--save-every", "5", "--lr", "2e-3", "--seed", "4") == 0
    stored = json.loads((run / "training_args.json").read_text())
    assert stored["preset"] == "tiny" and stored["max_length"] == 64 and stored["masking"]["scheme"] == "span"
    assert len(stored["corpus"]) == 1 and Path(stored["corpus"][0]).name == "tiny_corpus.txt"
    assert main(["pretrain", "--output", str(run), "--max-steps", "7", "--no-progress", "--resume"]) == 0
    assert steps(run) == list(range(1, 8))
    again = json.loads((run / "training_args.json").read_text())
    assert {k: again[k] for k in ("lr", "seed", "batch_size", "save_every", "preset", "tokenizer", "corpus")} == \
        {k: stored[k] for k in ("lr", "seed", "batch_size", "save_every", "preset", "tokenizer", "corpus")}
    assert again["max_steps"] == 7
    # neither --corpus nor --resume: the corpus is required
    assert main(["pretrain", "--output", str(tmp_path / "other"), "--no-progress"]) == 2
    assert "--corpus" in one_error_line(capsys)


def test_a_damaged_newest_checkpoint_falls_back_to_an_intact_one(tiny_tokenizer_dir, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "10", "--save-every", "5") == 0
    weights = run / "checkpoints" / "step-00000010" / "model.safetensors"
    weights_size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: weights_size // 2])  # truncated
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="spanbert.pretrain.train"):
        assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "12", "--save-every", "5", "--resume") == 0
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "step-00000010" in warning and "step-00000005" in warning and "damaged" in warning
    assert steps(run) == list(range(1, 13))  # steps 6-10 were trained again from step 5
    # the damaged folder is set aside (not resumed from, not counted among the checkpoints kept)
    assert checkpoints(run) == ["step-00000010", "step-00000010.damaged", "step-00000012"]
    assert (run / "checkpoints" / "step-00000010.damaged" / "model.safetensors").stat().st_size < weights_size

    for name in ("step-00000010", "step-00000012"):  # none intact: one line, exit 2
        (run / "checkpoints" / name / "optimizer.safetensors").write_bytes(b"\x00" * 7)
    assert pretrain(tiny_tokenizer_dir, run, "--max-steps", "14", "--save-every", "5", "--resume") == 2
    line = one_error_line(capsys)
    assert "no intact checkpoint" in line and "step-00000012" in line


@pytest.mark.parametrize("case", ["batch_too_big", "head_warmup_too_long", "streaming_batch_too_big",
                                  "trained_tokenizer"])
def test_a_run_that_fails_at_start_up_leaves_nothing_behind(tiny_tokenizer_dir, tmp_path, capsys, case):
    extra = {"batch_too_big": ["--max-steps", "2", "--batch-size", "1000"],
             "head_warmup_too_long": ["--max-steps", "2", "--head-warmup-steps", "5"],
             "streaming_batch_too_big": ["--max-steps", "2", "--batch-size", "1000", "--streaming"],
             "trained_tokenizer": ["--max-steps", "2", "--batch-size", "1000"]}[case]
    new, existing = tmp_path / "new" / "run", tmp_path / "existing"  # new: its parent is created too
    existing.mkdir()
    for out in (new, existing):
        if case == "trained_tokenizer":  # no --tokenizer: one is trained into the run folder first
            argv = ["pretrain", "--corpus", str(DATA / "tiny_corpus.txt"), "--vocab-size", "200", "--preset", "tiny",
                    "--max-length", "64", "--no-progress", "--output", str(out), *extra]
            assert main(argv) == 2
        else:
            assert pretrain(tiny_tokenizer_dir, out, *extra) == 2
        one_error_line(capsys)
    assert not (tmp_path / "new").exists()  # created by the run: removed
    assert existing.is_dir() and not any(existing.iterdir())  # the user's: left, empty


def test_the_python_api_keeps_a_run_folder_to_one_run_too(tiny_tokenizer, tmp_path):
    """`spanbert.pretrain.train.pretrain` (no command line): the same refusals, and overwrite."""
    import torch

    from spanbert.pretrain.collator import SpanMaskingCollator
    from spanbert.pretrain.corpus import load_corpus, pack_documents
    from spanbert.core.errors import ConfigError
    from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
    from spanbert.pretrain.arguments import PretrainArguments
    from spanbert.pretrain.train import pretrain as train

    packed = pack_documents(load_corpus([str(DATA / "tiny_corpus.txt")]), tiny_tokenizer, max_length=48)
    run = tmp_path / "run"

    def session(**kw):
        torch.manual_seed(0)
        model = SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1,
                                                      num_attention_heads=4, intermediate_size=64,
                                                      max_position_embeddings=64, sbo_position_size=16))
        flags = {k: kw.pop(k) for k in ("resume", "overwrite") if k in kw}
        args = PretrainArguments(output_dir=str(run), progress=False, **{"batch_size": 4, "max_steps": 4, "save_every": 2,
                                                                         **kw})
        return train(model, tiny_tokenizer, packed, SpanMaskingCollator(tiny_tokenizer, seed=1), args, **flags)

    session()
    with pytest.raises(ConfigError, match="holds another run"):
        session(max_steps=2)
    with pytest.raises(ConfigError, match=r"--lr is 0.01 here but 0.0001"):
        session(resume=True, lr=1e-2)
    assert session(resume=True, max_steps=6).state.step == 6
    assert session(overwrite=True, max_steps=2).state.step == 2
    assert checkpoints(run) == ["step-00000002"] and steps(run) == [1, 2]


def test_resume_compares_the_global_batch(tmp_path):
    """--batch-size is the global batch (all processes and micro-batches): 8 processes x 32 may
    continue as 4 x 64 (docs/multi_gpu.md), since both are --batch-size 256. A folder of an older
    version recorded the per-process micro-batch (no micro_batch_size key): its global batch is
    that x processes x grad_accum."""
    from spanbert.pretrain.train import resume_batch_error, stored_global_batch

    new = {"batch_size": 256, "processes": 8, "grad_accum": 1, "micro_batch_size": 32}
    old = {"batch_size": 32, "processes": 8, "grad_accum": 2}
    assert stored_global_batch(new) == 256 and stored_global_batch(old) == 512
    assert stored_global_batch({"batch_size": 4}) == 4 and stored_global_batch({}) is None
    assert resume_batch_error(tmp_path, new, 256) is None and resume_batch_error(tmp_path, old, 512) is None
    assert "--batch-size is 32 here but 256" in str(resume_batch_error(tmp_path, new, 32))
    assert "--batch-size is 32 here but 512" in str(resume_batch_error(tmp_path, old, 32))
