"""Fine-tuning keeps the promises run_qa.py / run_ner.py users rely on, for every task at once (the
shared loop and options): a run killed with SIGKILL and resumed ends with exactly the weights and
metrics of an uninterrupted run; dev selection keeps the best evaluation's weights across a resume;
early stopping stops when it should; gradient accumulation gives the steps of a whole batch; a
non-empty output folder is refused unless --overwrite (which clears the old run, not other files)
or --resume; the final folder appears whole; training_args.json and the model card record the
run; the old option names still work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from spanbert.cli import main
from spanbert.core.errors import ConfigError
from spanbert.tasks.finetune import DevEvaluation, finetune
from spanbert.tasks.arguments import FinetuneArguments

from .conftest import DATA, TINY_BERT, run_cli, save_tiny_encoder

REPO = Path(__file__).resolve().parents[1]
SST2 = DATA / "classify" / "sst2_dev_sample.tsv"
WNUT = DATA / "ner" / "wnut17_train_sample.conll"
TINY = {**TINY_BERT, "max_position_embeddings": 128}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, tiny_tokenizer):
    """A tiny random BERT (its default dropout 0.1 on) with the tiny real WordPiece vocabulary."""
    return save_tiny_encoder(tmp_path_factory.mktemp("parity") / "base", tiny_tokenizer, pooler=True, **TINY)


def classify_args(base: Path, out: Path, *extra: str) -> list[str]:
    """A tiny classifier on the 60 SST-2 sentences: 73 windows, 20 a step, dev scored every 3 steps."""
    return ["finetune", "classify", "--model", str(base), "--train", str(SST2), "--dev", str(SST2), "--output", str(out),
            "--max-steps", "30", "--batch-size", "20", "--lr", "1e-2", "--max-seq-length", "64", "--window-overlap", "8",
            "--precision", "no", "--no-progress", *extra]


def ner_args(base: Path, out: Path, *extra: str) -> list[str]:
    """A tiny span NER model on 40 WNUT-17 sentences, in the old option names (--mixed-precision,
    --max-train-sentences): they must keep working."""
    return ["finetune", "ner", "--model", str(base), "--train", str(WNUT), "--dev", str(WNUT), "--output", str(out),
            "--max-steps", "24", "--batch-size", "10", "--lr", "3e-3", "--max-seq-length", "64", "--eval-every", "8",
            "--save-every", "4", "--max-train-sentences", "40", "--mixed-precision", "no", "--no-progress", *extra]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def dev_scores(folder: Path) -> list[tuple[int, float]]:
    return [(h["step"], h["score"]) for h in map(json.loads, (folder / "dev_history.jsonl").read_text().splitlines())]


def logged_losses(folder: Path) -> list[tuple[str, str]]:
    import csv

    with (folder / "finetune_metrics.csv").open() as f:
        return [(r["step"], r["loss"]) for r in csv.DictReader(f)]


def kill_after_checkpoint(argv: list[str], out: Path, step: int, timeout: float = 240) -> None:
    """Run ``spanbert ARGV`` in a subprocess and SIGKILL it once checkpoint ``step`` exists."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same threads (and sums) as this process
    proc = subprocess.Popen([sys.executable, "-m", "spanbert", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    target = out / "checkpoints" / f"step-{step:08d}"
    deadline = time.monotonic() + timeout
    try:
        while not target.is_dir():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before checkpoint {step}: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint {step} after {timeout} s")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classify", "ner"])
def test_a_killed_run_resumes_to_the_uninterrupted_run(task, tiny_base, tmp_path, capsys):
    """SIGKILL during training (after a checkpoint, before the end), then --resume: the final
    weights are bit-identical to an uninterrupted run's, and so are the dev history, the logged
    losses, the kept step and the dev metrics. Dropout is on (the default 0.1) and NER samples
    negative spans per draw, so this needs the RNGs and the sampler's state restored too."""
    make, kill_at = (classify_args, 9) if task == "classify" else (ner_args, 8)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(make(tiny_base, whole)) == 0
    kill_after_checkpoint(make(tiny_base, killed), killed, kill_at)
    assert not (killed / "finetune_summary.json").exists() and not (killed / "model.safetensors").exists()
    assert main(make(tiny_base, killed)) == 2  # a fresh run into the killed run's folder is refused
    assert "continue its run with --resume" in capsys.readouterr().err
    assert main([*make(tiny_base, killed), "--resume"]) == 0

    a, b = weights(whole), weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert dev_scores(whole) == dev_scores(killed) and len(dev_scores(whole)) >= 3
    assert logged_losses(whole) == logged_losses(killed)
    first, again = (json.loads((d / "finetune_summary.json").read_text()) for d in (whole, killed))
    assert again["resumed_from_step"] >= kill_at and "resumed_from_step" not in first
    for key in ("selected_on_dev", "dev_metrics", "final_loss", "steps"):
        assert first[key] == again[key], key
    assert not (killed / "checkpoints").exists()  # they served the resume; the finished folder drops them


class Crash(Exception):
    """Stands for a kill in the middle of a dev evaluation."""


def _toy_run(out: Path, crash_at: int | None = None, dropout: float = 0.1, **overrides):
    """A tiny classifier: 48 items, batches of 16 (3 steps an epoch, dev at every epoch end). The
    collate draws noise from numpy's global generator and from its own (checkpointed) one, and
    dropout draws from torch's: a resume must restore all three. ``crash_at``: the dev
    evaluation (1-based) that raises :class:`Crash` instead of scoring."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=32, num_labels=2, hidden_dropout_prob=dropout,
                                                     attention_probs_dropout_prob=dropout))
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(2, 20, size=(64, 6)))
    labels = (ids[:, 1] >= 11).long()

    class Collate:
        def __init__(self):
            self.rng = np.random.default_rng(5)

        def __call__(self, idx):
            x = ids[idx].clone()
            x[:, 0] = torch.from_numpy(np.random.randint(2, 20, len(idx)))
            x[:, 2] = torch.from_numpy(self.rng.integers(2, 20, len(idx)))
            return {"input_ids": x, "labels": labels[idx]}

        def state_dict(self):
            return {"rng": self.rng.bit_generator.state}

        def load_state_dict(self, state):
            self.rng.bit_generator.state = state["rng"]

    calls = []

    def accuracy(m):
        calls.append(1)
        if crash_at is not None and len(calls) == crash_at:
            raise Crash
        with torch.no_grad():
            return {"accuracy": float((m(input_ids=ids[48:]).logits.argmax(-1) == labels[48:]).float().mean())}

    settings = dict(epochs=4, batch_size=16, lr=1e-2, mixed_precision="no", progress=False, hashed_dropout=True)
    args = FinetuneArguments(str(out), **{**settings, **overrides})
    np.random.seed(11)
    result = finetune(model, [6] * 48, Collate(), args, dev=DevEvaluation(accuracy, "accuracy"))
    return model, result


def test_resume_after_a_crash_in_process_matches_and_keeps_the_best_checkpoint(tmp_path):
    """The loop itself (no CLI): a run that dies in its third dev evaluation resumes from the
    checkpoint of the second to the uninterrupted run's weights and selection; with
    --keep-checkpoints 1 the folder kept the newest checkpoint and the best one it points to.
    --grad-accum 2 is on, to resume between micro-batched steps."""
    whole, whole_result = _toy_run(tmp_path / "whole", grad_accum=2)
    with pytest.raises(Crash):
        _toy_run(tmp_path / "crashed", crash_at=3, grad_accum=2)
    kept = sorted(p.name for p in (tmp_path / "crashed" / "checkpoints").iterdir())
    best_then = json.loads((tmp_path / "crashed" / "checkpoints" / "step-00000006" / "trainer_state.json").read_text())
    assert kept == sorted({"step-00000006", f"step-{best_then['finetune']['best_step']:08d}"})
    resumed, result = _toy_run(tmp_path / "crashed", grad_accum=2, resume=True)
    assert result.resumed_from == 6
    assert [(h["step"], h["score"]) for h in result.dev_history] == [(h["step"], h["score"]) for h in whole_result.dev_history]
    assert (result.best_step, result.best_score, result.last_loss) == (whole_result.best_step, whole_result.best_score,
                                                                       whole_result.last_loss)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_resume_refuses_changed_settings(tmp_path):
    with pytest.raises(Crash):
        _toy_run(tmp_path / "run", crash_at=2)
    with pytest.raises(ConfigError, match=r"--resume: --lr is 0.02 here but 0.01 in the run in .*training_args.json"):
        _toy_run(tmp_path / "run", resume=True, lr=2e-2)
    with pytest.raises(ConfigError, match="--resume and --overwrite: choose one"):
        _toy_run(tmp_path / "run", resume=True, overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"--resume: .*other holds a model \(config.json\) but no checkpoint"):
        _toy_run(other, resume=True)
    _, result = _toy_run(tmp_path / "new", resume=True)  # nothing to resume yet: a first session starts the run
    assert result.resumed_from is None and result.steps == 12


def test_a_new_best_evaluation_is_checkpointed_even_between_save_steps(tmp_path):
    """--save-every 5 with dev every 3 steps: every new best score is checkpointed as well, so a
    resumed run can still end with the best weights."""
    _toy_run(tmp_path / "run", save_every=5, keep_checkpoints=3, epochs=2)
    # steps 5 (--save-every) and 6 (the end), and 3: its evaluation, the first, was a new best
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "step-00000003", "step-00000005", "step-00000006"]


@pytest.mark.parametrize("scores, patience, stop, best", [
    ([0.5, 0.7, 0.6, 0.6, 0.9, 0.9], 2, 12, 6),  # two evaluations below the best: stops at the 4th
    ([0.5, 0.4, 0.6, 0.5, 0.4, 0.9], 2, 15, 9),  # the better third one starts the count again
    ([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], 3, 12, 3),  # a tie is no improvement
])
def test_early_stopping_stops_after_n_evaluations_without_improvement(tmp_path, scores, patience, stop, best):
    import spanbert.tasks.finetune as ft

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=32, num_labels=2))
    ids = torch.tensor(np.random.default_rng(0).integers(2, 20, size=(48, 6)))
    seen = []

    def scripted(m):
        seen.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"accuracy": scores[len(seen) - 1]}

    args = FinetuneArguments(str(tmp_path / "run"), epochs=6, batch_size=16, lr=1e-2, mixed_precision="no", progress=False,
                             early_stopping=patience, save_every=0)
    result = ft.finetune(model, [6] * 48, lambda idx: {"input_ids": ids[idx], "labels": (ids[idx, 1] > 10).long()}, args,
                         dev=DevEvaluation(scripted, "accuracy"))
    assert result.steps == stop and result.stopped_early and len(result.dev_history) == stop // 3
    assert result.best_step == best and not result.stopped_by_budget
    assert all(torch.equal(v, seen[best // 3 - 1][k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError, match="--early-stopping: needs --dev"):
        ft.finetune(model, [6] * 48, lambda idx: {}, FinetuneArguments(str(tmp_path / "x"), early_stopping=2))


def test_gradient_accumulation_equals_the_whole_batch(tiny_base, tmp_path):
    """Through the CLI, dropout off: --batch-size 20 --grad-accum 2 (two micro-batches of 10,
    each padded on its own) ends within float rounding of --batch-size 20 in one piece."""
    common = ["--max-steps", "9", "--dropout", "0", "--eval-every", "100"]
    assert main(classify_args(tiny_base, tmp_path / "one", *common)) == 0
    assert main(classify_args(tiny_base, tmp_path / "two", *common, "--grad-accum", "2")) == 0
    one, two, before = weights(tmp_path / "one"), weights(tmp_path / "two"), weights(tiny_base)
    assert max(float((one["bert." + k] - v).abs().max()) for k, v in before.items() if "bert." + k in one) > 1e-3  # it trained
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5
    record = json.loads((tmp_path / "two" / "training_args.json").read_text())
    assert record["resolved"]["micro_batch_size"] == 10 and record["options"]["grad_accum"] == 2
    rc, _, err = run_cli(classify_args(tiny_base, tmp_path / "three", "--grad-accum", "3"))
    assert rc == 2 and "batch_size: 20 is not a multiple of grad_accum 3" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def finished(tiny_base, tmp_path_factory):
    """A finished tiny classifier run, in the new option names."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(classify_args(tiny_base, out, "--warmup-steps", "2", "--weight-decay", "0.05", "--log-every", "5",
                              "--seed", "3")) == 0
    return out


def test_training_args_record_every_option_the_data_and_the_versions(finished):
    import transformers

    record = json.loads((finished / "training_args.json").read_text())
    options = record["options"]
    assert (options["lr"], options["batch_size"], options["warmup_steps"], options["weight_decay"], options["seed"]) == \
        (1e-2, 20, 2, 0.05, 3)
    assert options["max_seq_length"] == 64 and options["window_overlap"] == 8 and options["precision"] == "no"
    assert record["command"] == "finetune classify"
    assert record["data"]["train"] == str(SST2.resolve()) and Path(record["data"]["model"]).is_absolute()
    assert record["resolved"]["precision"] == "no" and record["resolved"]["warmup_steps"] == 2  # steps win over the ratio
    assert record["versions"]["transformers"] == transformers.__version__
    assert record["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0] and "spanbert" in record["versions"]
    with (finished / "finetune_metrics.csv").open() as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["5", "10", "15", "20", "25", "30"]


def test_model_card_is_in_the_hub_format(finished):
    """The card parses with huggingface_hub: library, data, pipeline and the dev metrics as a
    model-index equal to the summary's; the text has the hyper-parameters."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(finished / "README.md")
    summary = json.loads((finished / "finetune_summary.json").read_text())
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert card.data.datasets == [SST2.name] and "spanbert" in card.data.tags
    assert card.data.base_model is None  # a local folder is named in the text, not as a hub id
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == summary["dev_metrics"]["accuracy"] and results["macro_f1"] == summary["dev_metrics"]["macro_f1"]
    assert all(r.dataset_split == "dev" for r in card.data.eval_results)
    assert "| peak learning rate | 0.01 |" in card.text and "| warm-up steps (linear) | 2 |" in card.text
    assert summary["hyperparameters"]["weight_decay"] == 0.05


def test_non_empty_output_is_refused_and_overwrite_clears_only_the_old_run(tiny_base, finished, tmp_path):
    import shutil

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    rc, _, err = run_cli(classify_args(tiny_base, notes))
    assert rc == 2 and err.count("\n") == 1 and "not empty (mine.txt)" in err and "--overwrite" in err
    assert sorted(p.name for p in notes.iterdir()) == ["mine.txt"]

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "dev" / "stale.json").write_text("{}")  # what a previous run left beside its results
    (run / "mine.txt").write_text("keep me")
    rc, _, err = run_cli([*classify_args(tiny_base, run), "--resume"])
    assert rc == 2 and "is finished" in err
    rc, _, err = run_cli([*classify_args(tiny_base, run), "--resume", "--overwrite"])
    assert rc == 2 and "choose one" in err
    rc, _, _ = run_cli([*classify_args(tiny_base, run, "--max-steps", "4"), "--overwrite"])
    assert rc == 0
    assert not (run / "dev" / "stale.json").exists() and (run / "dev" / "metrics.json").is_file()
    assert (run / "mine.txt").read_text() == "keep me"
    assert json.loads((run / "finetune_summary.json").read_text())["steps"] == 4
    assert [p.name for p in run.parent.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_the_final_folder_appears_whole(tmp_path, monkeypatch):
    """A crash inside the staged block leaves the old folder as it was; a crash between the two
    renames of the swap leaves a complete new folder that recover_output puts in place."""
    import spanbert.core.run_folder as ff

    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("old")
    (out / "training_args.json").write_text("record")
    with pytest.raises(RuntimeError):
        with ff.staged_output(out) as final:
            (final / "config.json").write_text("new")
            raise RuntimeError("killed while saving")
    assert (out / "config.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    real_replace = os.replace

    def crash_on_second_rename(src, dst):
        if Path(src).name == ".model.ready":
            raise KeyboardInterrupt  # the process dies with `model` moved aside
        real_replace(src, dst)

    monkeypatch.setattr(ff.os, "replace", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        with ff.staged_output(out) as final:
            (final / "config.json").write_text("new")
            (final / "model.safetensors").write_text("weights")
    monkeypatch.setattr(ff.os, "replace", real_replace)
    assert not out.exists() and (tmp_path / ".model.ready" / "config.json").read_text() == "new"
    assert "finished replacing" in ff.recover_output(out)
    assert (out / "config.json").read_text() == "new" and (out / "model.safetensors").is_file()
    assert (out / "training_args.json").read_text() == "record"  # carried over from the old folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"] and ff.recover_output(out) is None


def test_the_transformers_script_names_mean_ours(tiny_base, finished, tmp_path):
    """--learning-rate / --num-train-epochs / --gradient-accumulation-steps (run_qa.py's names) give
    the run that --lr / --epochs / --grad-accum give."""
    out = tmp_path / "theirs"
    args = classify_args(tiny_base, out, "--warmup-steps", "2", "--weight-decay", "0.05", "--log-every", "5", "--seed", "3")
    i = args.index("--lr")
    args[i] = "--learning-rate"
    assert main([*args, "--gradient-accumulation-steps", "1"]) == 0
    ours, theirs = (json.loads((f / "training_args.json").read_text())["options"] for f in (finished, out))
    assert (theirs["lr"], theirs["grad_accum"]) == (ours["lr"], ours["grad_accum"]) == (1e-2, 1)
    assert logged_losses(out) == logged_losses(finished)


def test_old_option_names_are_hidden_aliases():
    """Every finetune/evaluate/predict command takes --precision (default auto) with
    --mixed-precision hidden beside it, and the subset options under their new names with the
    task's old ones hidden."""
    import typer

    from spanbert.cli import app

    root = typer.main.get_command(app)
    expected_old = {("finetune", "qa"): {"--max-train-questions", "--max-dev-questions"},
                    ("finetune", "ner"): {"--max-train-sentences"}, ("finetune", "coref"): {"--max-train-documents"},
                    ("evaluate", "qa"): {"--max-questions"}}
    for group in ("finetune", "evaluate", "predict"):
        for task in ("qa", "classify", "ner", "relations", "summarize", "coref"):
            params = {o: p for p in root.commands[group].commands[task].params for o in p.opts}
            assert params["--precision"].default == "auto" and not params["--precision"].hidden, (group, task)
            assert params["--mixed-precision"].hidden, (group, task)
            for old in expected_old.get((group, task), ()):
                assert params[old].hidden, (group, task, old)
            if group == "finetune":
                assert {"--max-train-examples", "--max-dev-examples", "--grad-accum", "--weight-decay", "--warmup-steps",
                        "--early-stopping", "--save-every", "--log-every", "--resume", "--overwrite"} <= set(params)
                assert params["--seed"].default == 42
                for name in ("--learning-rate", "--num-train-epochs", "--gradient-accumulation-steps"):
                    assert params[name].hidden, (task, name)  # the transformers scripts' names
    rc, _, err = run_cli(["evaluate", "classify", "--model", "m", "--data", "d", "--output", "o", "--precision", "no",
                          "--mixed-precision", "bf16"])
    assert rc == 2 and "--mixed-precision and --precision: give one" in err
