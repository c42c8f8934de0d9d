"""Faults found by a probe of bad inputs (issue 15), each refused at one place for every command:
lengths beyond the encoder's positions, a folder of another task given to prediction, text that
is not valid Unicode (HTTP and argv), negative counts, user-caused failures that used to exit 1
(a full disk, a pickled-only model folder, a negative --min-frequency), and weights files that
other accounts could not read."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest
import torch

from .conftest import DATA, TINY_BERT, run_cli as _run
from .serve_models import build_all

TINY = TINY_BERT


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module", autouse=True)
def _cli_environment():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SPANBERT_DEBUG", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A saved folder of every task (random tiny weights, the layout each task's job writes)."""
    return build_all(tmp_path_factory.mktemp("tasks"))


@pytest.fixture(scope="module")
def short_encoder(tmp_path_factory, tiny_tokenizer):
    """A pre-training folder whose encoder has only 64 positions."""
    from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining

    path = tmp_path_factory.mktemp("short") / "encoder"
    torch.manual_seed(0)
    SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tiny_tokenizer), max_position_embeddings=64,
                                          **TINY)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


# -- 4: lengths the encoder has no positions for ----------------------------------------------


@pytest.mark.parametrize("task, data, option, extra", [
    ("classify", DATA / "classify" / "sst2_dev_sample.tsv", "--max-seq-length", []),
    ("qa", DATA / "squad" / "xquad_en_sample.json", "--max-seq-length", ["--window-overlap", "32"]),
    ("ner", DATA / "ner" / "wnut17_train_sample.conll", "--max-seq-length", []),
    ("relations", DATA / "relations" / "semeval_train_sample.txt", "--max-seq-length", []),
    ("summarize", DATA / "summarize" / "scitldr_a_train_sample.jsonl", "--max-seq-length", []),
])
def test_finetuning_refuses_lengths_beyond_the_positions(short_encoder, tmp_path, task, data, option, extra):
    """Was: fine-tuning at 128 tokens on a 64-position encoder succeeded, and the saved model then
    failed on every longer input (exit 1 in predict, 500 in the server)."""
    if not data.is_file():
        pytest.skip(f"{data} is not in this checkout")
    out = tmp_path / "out"
    rc, _, err = _run(["finetune", task, "--model", str(short_encoder), "--train", str(data), "--output", str(out),
                       option, "128", "--max-steps", "1", "--no-progress", *extra])
    assert rc == 2 and f"{option} 128: the encoder has only 64 positions" in _one_error_line(err)
    assert not (out / "model.safetensors").exists()


def test_pretraining_from_scratch_refuses_a_huge_position_table(tmp_path):
    """Was: --max-length 100000 built a 100,000-row position table."""
    rc, _, err = _run(["pretrain", "--corpus", str(DATA / "tiny_corpus.txt"), "--tokenizer", str(DATA / "tiny_wordpiece"),
                       "--preset", "tiny", "--max-length", "100000", "--max-steps", "1", "--no-progress",
                       "--output", str(tmp_path / "run")])
    assert rc == 2 and "--max-length 100000" in _one_error_line(err)


# -- 5: a folder of another task ---------------------------------------------------------------


def _predictors():
    from spanbert.tasks.classify.inference import TextClassifier
    from spanbert.tasks.coref.inference import CorefResolver
    from spanbert.tasks.ner.inference import EntityRecognizer
    from spanbert.tasks.qa.inference import QuestionAnswerer
    from spanbert.tasks.relations.inference import RelationClassifier
    from spanbert.tasks.summarize.inference import ExtractiveSummarizer

    return {"qa": QuestionAnswerer, "classify": TextClassifier, "relations": RelationClassifier,
            "entities": EntityRecognizer, "coref": CorefResolver, "summarize": ExtractiveSummarizer}


def test_every_predictor_refuses_another_tasks_folder(folders):
    """Was: QuestionAnswerer (and `predict qa`) on a classifier or pre-training folder answered
    from a freshly made random head, exit 0, no warning."""
    from spanbert.core.errors import CheckpointError

    predictors = _predictors()
    for task, predictor in predictors.items():
        predictor(folders[task], device="cpu")  # its own folder loads
        for other, folder in folders.items():
            if other == task:
                continue
            with pytest.raises(CheckpointError) as info:
                predictor(folder, device="cpu")
            assert str(folder) in str(info.value) and "\n" not in str(info.value), (task, other)


@pytest.mark.parametrize("args", [
    ["predict", "qa", "--question", "Who?", "--context", "Washington spoke."],
    ["predict", "classify", "--text", "good"],
    ["evaluate", "qa", "--data", str(DATA / "squad" / "xquad_en_sample.json"), "--output", "{tmp}/e"],
    ["evaluate", "classify", "--data", str(DATA / "classify" / "sst2_dev_sample.tsv"), "--output", "{tmp}/e"],
])
def test_prediction_commands_refuse_a_pretraining_folder(folders, tmp_path, args):
    rc, _, err = _run([*args[:2], "--model", str(folders["fill"]), *(a.format(tmp=tmp_path) for a in args[2:])])
    assert rc == 2 and "not a fine-tuned" in _one_error_line(err)


# -- 6: text that is not Unicode -----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(folders):
    from fastapi.testclient import TestClient

    from spanbert.serve.app import create_app

    with TestClient(create_app(list(folders.values()), device="cpu")) as c:
        yield c


@pytest.mark.parametrize("path, body", [
    ("/v1/qa", '{"items": [{"question": "Who?\\ud800", "context": "Ann wrote it."}]}'),
    ("/v1/fill", '{"items": [{"text": "The [MASK] \\udfff of."}]}'),
    ("/v1/classify", '{"items": [{"text": "ok \\ud800"}]}'),
    ("/v1/relations", '{"items": [{"text": "The <e1>a\\ud800</e1> of <e2>b</e2>."}]}'),
    ("/v1/entities", '{"items": [{"text": "\\ud800"}]}'),
    ("/v1/coref", '{"items": [{"text": "Ann said she \\udc00 came."}]}'),
    ("/v1/summarize", '{"items": [{"text": "One. Two \\ud800."}]}'),
    ("/v1/qa", '{"items": [{"question": "Who?", "context": "Ann."}], "model": "\\ud800"}'),
    ("/v1/qa", '{"items": [{"question": "Who?", "context": "Ann."}], "\\ud800": 1}'),
])
def test_lone_surrogates_are_422_on_every_task(client, path, body):
    """Was: 500 on every task (the tokenizers cannot take a lone surrogate; an error echoing one
    cannot be encoded as UTF-8)."""
    r = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and ("surrogate" in detail or "unicode" in detail), detail


@pytest.mark.parametrize("args", [
    ["fill", "--model", "{fill}", "The \udcff [MASK] of."],
    ["predict", "classify", "--model", "{classify}", "--text", "ok \udcff"],
])
def test_undecodable_arguments_are_one_line(folders, args):
    """Was: exit 1 with a TypeError from the tokenizer (argv bytes that are not UTF-8 reach Python
    as lone surrogates)."""
    rc, _, err = _run([a.format(**folders) for a in args])
    assert rc == 2 and "not valid UTF-8" in _one_error_line(err)


def test_undecodable_argv_through_a_real_process(folders):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "spanbert", "fill", "--model", str(folders["fill"]).encode(),
                          b"The \xff [MASK] of."], capture_output=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    assert b"not valid UTF-8" in run.stderr and b"Traceback" not in run.stderr


# -- 7: negative counts ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, option", [
    (["evaluate", "classify", "--model", "{classify}", "--data", str(DATA / "classify" / "sst2_dev_sample.tsv"),
      "--max-examples", "-1"], "--max-examples"),
    (["evaluate", "qa", "--model", "{qa}", "--data", str(DATA / "squad" / "xquad_en_sample.json"),
      "--max-questions", "-1"], "--max-questions"),
    (["finetune", "ner", "--model", "{fill}", "--train", str(DATA / "ner" / "wnut17_train_sample.conll"),
      "--output", "{tmp}/ner", "--negative-ratio", "-1"], "--negative-ratio"),
    (["finetune", "classify", "--model", "{fill}", "--train", str(DATA / "classify" / "sst2_dev_sample.tsv"),
      "--output", "{tmp}/c", "--max-train-examples", "-5"], "--max-train-examples"),
    (["tokenizer", "train", "--corpus", str(DATA / "tiny_corpus.txt"), "--min-frequency", "-1", "--output", "{tmp}/tk"],
     "--min-frequency"),
])
def test_negative_counts_are_refused(folders, tmp_path, args, option):
    """Was: --max-examples -1 scored 39 of 40 examples (a Python slice) and reported it;
    --negative-ratio -1 was accepted; --min-frequency -1 exited 1 with an OverflowError."""
    rc, _, err = _run([a.format(**folders, tmp=tmp_path) for a in args])
    assert rc == 2 and option in _one_error_line(err)
    assert not list(tmp_path.iterdir())


# -- 8: user-caused failures are exit 2 --------------------------------------------------------


def test_a_pickled_only_model_folder_is_refused_in_one_line(folders, tmp_path):
    """Was: torch's long UnpicklingError. Now no pickle is opened at all: the folder is refused
    before loading, even when the pickle would be a harmless dict of tensors."""
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    folder.mkdir()
    for f in folders["fill"].iterdir():
        if f.is_file() and f.name != "model.safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    torch.save(load_file(folders["fill"] / "model.safetensors"), folder / "pytorch_model.bin")
    rc, _, err = _run(["fill", "--model", str(folder), "The [MASK] of."])
    assert rc == 2 and "pytorch_model.bin, a pickle" in _one_error_line(err)


def test_disk_full_and_other_os_conditions_are_user_errors():
    """A full disk, a quota or a read-only file system is the user's to fix: exit 2. Libraries
    wrap the OS error (safetensors' message below is the one a full tmpfs gave)."""
    from safetensors import SafetensorError

    from spanbert.cli.app import _user_os_error

    assert _user_os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "x"))
    assert _user_os_error(SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"))
    try:
        try:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        except OSError as e:
            raise RuntimeError("save failed") from e
    except RuntimeError as wrapped:
        assert _user_os_error(wrapped)
    assert not _user_os_error(RuntimeError("shape mismatch"))
    assert not _user_os_error(OSError(errno.EIO, os.strerror(errno.EIO)))


def test_a_full_disk_through_the_cli(folders, tmp_path):
    """On a real tmpfs with room for half the weights (where this machine allows mounting one):
    exit 2, one line (was exit 1)."""
    small = tmp_path / "small"
    small.mkdir()
    room = (folders["fill"] / "model.safetensors").stat().st_size // 2048
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs privileges this machine does not give")
    try:
        rc, _, err = _run(["finetune", "classify", "--model", str(folders["fill"]), "--train",
                           str(DATA / "classify" / "sst2_dev_sample.tsv"), "--output", str(small / "c"),
                           "--max-steps", "1", "--no-progress"])
        assert rc == 2 and "No space left on device" in _one_error_line(err)
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# -- 10: file modes ----------------------------------------------------------------------------


def test_saved_weights_follow_the_umask(folders, tmp_path):
    """Was: model.safetensors (and checkpoint tensors) 0600, the rest of the folder 0644."""
    from spanbert.core.checkpoints import save_task_model
    from spanbert.core.checkpoints import load_tokenizer

    from transformers import BertForQuestionAnswering

    old = os.umask(0o022)
    try:
        model = BertForQuestionAnswering.from_pretrained(folders["qa"])
        save_task_model(tmp_path / "qa", model, load_tokenizer(folders["qa"], require_fast=False))
    finally:
        os.umask(old)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "qa").iterdir()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes



def test_a_pretraining_runs_final_weights_follow_the_umask(tmp_path):
    """The final model of `spanbert pretrain` (save_final_model) too: it was 0600."""
    from .serve_models import build_fill

    old = os.umask(0o022)
    try:
        out = build_fill(tmp_path / "run")
    finally:
        os.umask(old)
    assert stat.S_IMODE((out / "model.safetensors").stat().st_mode) == 0o644
