"""A `spanbert pretrain` run folder is a standard Hugging Face ``bert`` checkpoint.

Plain transformers, in a process that never imports spanbert, loads it with AutoConfig,
AutoModelForMaskedLM, BertForMaskedLM and the fill-mask pipeline without a load warning, and
computes what our MLM head computes; AutoModel takes its encoder. Our own loaders read it (SBO
head included) and still read the older ``model_type: spanbert`` folders.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file

from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.pretrain.fill import SpanFiller
from spanbert.pretrain.modeling import (
    SBO_HEAD_FILE,
    SPANBERT_CONFIG_FILE,
    SpanBertConfig,
    SpanBertForPreTraining,
    load_for_pretraining,
    load_pretraining_model,
)
from spanbert.core.checkpoints import load_task_model
from spanbert.core.checkpoints import load_tokenizer

from .conftest import DATA, run_cli

TEXT = "The Congress of the United [MASK] has made provision for the public debt of the nation."
TWO_RUNS = "Fellow citizens of the [MASK] and House of [MASK] [MASK], I feel much satisfaction."


@pytest.fixture(scope="module", autouse=True)
def _cli_environment(offline_cli_environment):
    """The CLI as a user runs it (conftest.offline_cli_environment)."""
    yield


def pretrain_args(tokenizer: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"), "--corpus", str(DATA / "tiny_corpus.txt"),
            "--tokenizer", str(tokenizer), "--max-length", "48", "--batch-size", "8", "--no-progress",
            "--output", str(out), *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A real `spanbert pretrain` run (tiny preset, 30 steps, SBO weight 0.5, checkpoint at the end)."""
    out = tmp_path_factory.mktemp("hf_native") / "run"
    rc, _, err = run_cli(pretrain_args(tiny_tokenizer_dir, out, "--preset", "tiny", "--max-steps", "30", "--lr", "5e-3",
                                       "--warmup-steps", "3", "--save-every", "30", "--sbo-weight", "0.5"))
    assert rc == 0, err
    return out


def ours(path: Path) -> SpanBertForPreTraining:
    model, _ = load_pretraining_model(path)
    return model.eval()


def mlm_logits(model: SpanBertForPreTraining, batch) -> torch.Tensor:
    """Our MLM head at every position of row 0: (T, V)."""
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return model.mlm_logits(hidden, torch.arange(hidden.size(1)))


def test_the_run_folder_has_the_files_of_a_bert_masked_lm_checkpoint(run, tmp_path):
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForMaskedLM"]
    assert not any(k.startswith("sbo_") for k in config)
    # what BertForMaskedLM.save_pretrained writes for this config: same tensors (no pooler, tied decoder left out)
    reference = tmp_path / "reference"
    transformers.BertForMaskedLM(transformers.AutoConfig.from_pretrained(run)).save_pretrained(reference)
    with safe_open(str(run / "model.safetensors"), "pt") as a, safe_open(str(reference / "model.safetensors"), "pt") as b:
        assert a.metadata() == b.metadata()
        assert sorted(a.keys()) == sorted(b.keys())
        for k in a.keys():
            assert a.get_slice(k).get_shape() == b.get_slice(k).get_shape() and a.get_slice(k).get_dtype() == b.get_slice(k).get_dtype(), k
        assert not any(k.startswith(("bert.pooler.", "sbo.")) for k in a.keys())
    # the SBO head and the settings SpanBertConfig adds, beside it
    sbo = load_file(run / SBO_HEAD_FILE)
    assert sorted(sbo) == sorted(f"sbo.{k}" for k in SpanBertForPreTraining(SpanBertConfig(**{
        k: config[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    })).sbo.state_dict())
    assert json.loads((run / SPANBERT_CONFIG_FILE).read_text()) == {
        "format_version": 1, "sbo_loss_weight": 0.5, "sbo_max_span_tokens": 15, "sbo_position_size": 200}
    card = (run / "README.md").read_text()
    assert "AutoModelForMaskedLM" in card and 'pipeline("fill-mask"' in card
    assert "spanbert fill" in card and SBO_HEAD_FILE in card


CHILD = r"""
import io, json, logging, sys, warnings

run, out, text = sys.argv[1:4]
import torch, transformers
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_warning()
hf_logging.disable_progress_bar()
log = io.StringIO()
hf_logging.get_logger().addHandler(logging.StreamHandler(log))  # transformers' library logger
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    config = transformers.AutoConfig.from_pretrained(run)
    tok = transformers.AutoTokenizer.from_pretrained(run)
    auto_mlm = transformers.AutoModelForMaskedLM.from_pretrained(run).eval()
    bert_mlm = transformers.BertForMaskedLM.from_pretrained(run).eval()
    fill = transformers.pipeline("fill-mask", model=run, top_k=10)
    fills = fill(text)
clean = {"log": log.getvalue(), "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
print("=== AutoModel ===", file=sys.stderr, flush=True)
encoder, info = transformers.AutoModel.from_pretrained(run, add_pooling_layer=False, output_loading_info=True)
_, pooler_info = transformers.AutoModel.from_pretrained(run, output_loading_info=True)
batch = tok([text], return_tensors="pt")
with torch.no_grad():
    tensors = {"auto_mlm": auto_mlm(**batch).logits[0], "bert_mlm": bert_mlm(**batch).logits[0],
               "hidden": encoder.eval()(**batch).last_hidden_state[0]}
torch.save(tensors, out + "/tensors.pt")
report = {
    "config": [type(config).__name__, config.model_type], "classes": [type(auto_mlm).__name__, type(encoder).__name__],
    "clean": clean, "fills": [[f["token"], f["score"]] for f in fills],
    "encoder": {k: sorted(info[k]) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")},
    "encoder_with_pooler": {k: sorted(pooler_info[k]) for k in ("missing_keys", "unexpected_keys")},
    "spanbert_modules": sorted(m for m in sys.modules if m.split(".")[0] == "spanbert"),
}
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.mark.slow
def test_plain_transformers_loads_the_run_without_spanbert_and_computes_our_mlm_head(run, tmp_path):
    done = subprocess.run([sys.executable, "-c", CHILD, str(run), str(tmp_path), TEXT], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["spanbert_modules"] == []  # transformers alone
    assert report["config"] == ["BertConfig", "bert"] and report["classes"] == ["BertForMaskedLM", "BertModel"]
    # AutoConfig, AutoModelForMaskedLM, BertForMaskedLM, pipeline: no load report, no warning at all
    assert report["clean"] == {"log": "", "warnings": []}
    before_encoder = done.stderr.split("=== AutoModel ===")[0]
    for word in ("UNEXPECTED", "MISSING", "newly initialized", "Warning", "warn"):
        assert word not in before_encoder, before_encoder[-2000:]
    # AutoModel: the encoder, whole; only the MLM head is left over (as with bert-base-uncased)
    assert report["encoder"]["missing_keys"] == [] and report["encoder"]["mismatched_keys"] == []
    assert report["encoder"]["unexpected_keys"] and all(k.startswith("cls.predictions.") for k in report["encoder"]["unexpected_keys"])
    assert all(k.startswith("pooler.") for k in report["encoder_with_pooler"]["missing_keys"])  # SpanBERT has none

    # the same numbers as our MLM head on the same input
    tokenizer = load_tokenizer(run)
    batch = tokenizer([TEXT], return_tensors="pt")
    model = ours(run)
    expected = mlm_logits(model, batch)  # (T, V)
    got = torch.load(tmp_path / "tensors.pt")
    torch.testing.assert_close(got["auto_mlm"], expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(got["bert_mlm"], expected, rtol=0, atol=1e-5)
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state[0]
    torch.testing.assert_close(got["hidden"], hidden, rtol=0, atol=1e-5)
    # the pipeline's top fills are our MLM head's ranking at the mask, with its probabilities
    position = batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    probs = expected[position].softmax(-1)
    top = probs.topk(10)
    assert [t for t, _ in report["fills"]] == top.indices.tolist()
    assert [s for _, s in report["fills"]] == pytest.approx(top.values.tolist(), abs=1e-5)
    # ... and spanbert fill's MLM reading (which never predicts special tokens) ranks them alike
    (result,) = SpanFiller(model, tokenizer).fill(TEXT, top_k=10)
    ranked = [tokenizer.convert_tokens_to_ids(token) for token, _ in result.spans[0].predictions["mlm"].top_k[0]]
    plain = [t for t, _ in report["fills"] if t not in tokenizer.all_special_ids]
    assert plain and plain == ranked[: len(plain)]


def test_the_sbo_head_round_trips_through_the_run_folder(run):
    """The final folder holds the model of the last step: the run's final checkpoint (the
    in-memory training model, in our resume format) gives the same MLM and SBO logits."""
    (checkpoint,) = sorted((run / "checkpoints").iterdir())[-1:]
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "spanbert"  # resume format unchanged
    saved, trained = ours(run), ours(checkpoint)
    assert saved.config.sbo_loss_weight == trained.config.sbo_loss_weight == 0.5
    tokenizer = load_tokenizer(run)
    batch = tokenizer([TWO_RUNS], return_tensors="pt")
    pairs = torch.tensor([[0, 4, 6, 0], [0, 7, 10, 0], [0, 7, 10, 1], [0, 1, 5, 2]])  # (batch, left, right, offset)
    with torch.no_grad():
        a, b = (m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                for m in (saved, trained))
        torch.testing.assert_close(saved.sbo_logits(a, pairs), trained.sbo_logits(b, pairs), rtol=0, atol=0)
    torch.testing.assert_close(mlm_logits(saved, batch), mlm_logits(trained, batch), rtol=0, atol=0)
    for name, tensor in trained.state_dict().items():
        if not name.startswith("bert.pooler."):
            assert torch.equal(saved.state_dict()[name], tensor), name


def test_save_final_model_then_our_loader_gives_the_in_memory_model(tiny_tokenizer, tmp_path):
    from spanbert.pretrain.train import save_final_model

    torch.manual_seed(0)
    model = SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=64, sbo_position_size=12,
                                                  sbo_max_span_tokens=6, sbo_loss_weight=2.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # off the init (zero biases would hide a lost head)
    save_final_model(tmp_path, model, tiny_tokenizer)
    loaded = ours(tmp_path)
    assert (loaded.config.sbo_position_size, loaded.config.sbo_max_span_tokens, loaded.config.sbo_loss_weight) == (12, 6, 2.0)
    ids = torch.randint(5, len(tiny_tokenizer), (2, 12))
    pairs = torch.tensor([[0, 1, 5, 0], [0, 1, 5, 3], [1, 3, 10, 5]])
    with torch.no_grad():
        a, b = (m(input_ids=ids).last_hidden_state for m in (model, loaded))
        torch.testing.assert_close(b, a, rtol=0, atol=0)
        torch.testing.assert_close(loaded.sbo_logits(b, pairs), model.sbo_logits(a, pairs), rtol=0, atol=0)
        torch.testing.assert_close(loaded.mlm_logits(b, torch.arange(24)), model.mlm_logits(a, torch.arange(24)), rtol=0, atol=0)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight


@pytest.fixture(scope="module")
def old_layout(run, tmp_path_factory) -> Path:
    """The run saved as the older versions saved a final model: SpanBertForPreTraining.save_pretrained
    (``model_type: spanbert``; encoder with pooler, MLM and SBO heads in one model.safetensors)."""
    out = tmp_path_factory.mktemp("old") / "run"
    ours(run).save_pretrained(out)
    load_tokenizer(run).save_pretrained(out)
    assert json.loads((out / "config.json").read_text())["model_type"] == "spanbert"
    assert "sbo.bias" in load_file(out / "model.safetensors") and not (out / SBO_HEAD_FILE).exists()
    return out


def test_old_and_new_layouts_fill_alike(run, old_layout):
    results = []
    for folder in (run, old_layout):
        rc, out, err = run_cli(["fill", "--model", str(folder), "--json", "--top-k", "3", TWO_RUNS])
        assert rc == 0, err
        results.append(json.loads(out))
    assert results[0] == results[1]
    assert set(results[0][0]["spans"][0]["predictions"]) == {"mlm", "sbo", "joint", "iterative"}


def first_step_losses(run_dir: Path) -> dict[str, float]:
    import csv

    with open(run_dir / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    return {k: float(row[k]) for k in ("loss", "mlm_loss", "sbo_loss")}


def test_init_from_either_layout_starts_from_the_same_heads(run, old_layout, tmp_path, tiny_tokenizer_dir):
    """--init-from: the first step's losses (before any update) are those of the run's weights,
    SBO head included, whichever layout holds them; without the SBO side files only the MLM
    loss stays (a plain BERT checkpoint: the SBO head starts fresh)."""
    plain = tmp_path / "plain_bert"
    shutil.copytree(run, plain, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "*.png", SBO_HEAD_FILE,
                                                               SPANBERT_CONFIG_FILE))
    losses = {}
    for name, folder in (("new", run), ("old", old_layout), ("plain", plain)):
        rc, _, err = run_cli(pretrain_args(tiny_tokenizer_dir, tmp_path / name, "--init-from", str(folder), "--max-steps", "1",
                                           "--dropout", "0"))
        assert rc == 0, err
        losses[name] = first_step_losses(tmp_path / name)
    assert losses["new"] == losses["old"]
    assert losses["plain"]["mlm_loss"] == losses["new"]["mlm_loss"]
    assert losses["new"]["sbo_loss"] < losses["plain"]["sbo_loss"] - 0.3  # the trained SBO head, not a fresh one
    assert json.loads((tmp_path / "old" / "config.json").read_text())["model_type"] == "bert"  # re-saved in the new layout


@pytest.mark.parametrize("layout", ["new", "old"])
def test_task_loaders_take_the_encoder_of_either_layout_quietly(run, old_layout, layout, capfd):
    """A head with a pooler (sequence classification) on a run folder: the run's encoder, a fresh
    pooler and classifier, and no load report or warning on the way."""
    folder = run if layout == "new" else old_layout
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    transformers.logging.get_logger().addHandler(handler)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    try:
        capfd.readouterr()
        model, tokenizer = load_task_model(folder, transformers.AutoModelForSequenceClassification,
                                           transformers.BertForSequenceClassification, "classification", num_labels=3)
        err = capfd.readouterr().err
    finally:
        transformers.logging.get_logger().removeHandler(handler)
        transformers.logging.set_verbosity(level)
    assert records == [] and not any(w in err for w in ("UNEXPECTED", "MISSING", "newly initialized")), err
    assert type(model) is transformers.BertForSequenceClassification and model.config.num_labels == 3
    pretrained = ours(run).bert.state_dict()
    for name, tensor in model.bert.state_dict().items():
        if not name.startswith("pooler."):
            assert torch.equal(tensor, pretrained[name]), name
    assert len(tokenizer) == len(load_tokenizer(run))


def test_without_the_side_files_a_run_folder_is_a_plain_bert_mlm_checkpoint(run, tmp_path, capsys):
    plain = tmp_path / "plain"
    shutil.copytree(run, plain, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "*.png"))
    (plain / SBO_HEAD_FILE).unlink()
    (plain / SPANBERT_CONFIG_FILE).unlink()
    model, trained = load_for_pretraining(str(plain)), ours(run)
    assert model.config.sbo_loss_weight == 1.0  # SpanBertConfig's default: the settings went with the file
    assert torch.equal(model.cls.predictions.transform.dense.weight, trained.cls.predictions.transform.dense.weight)
    assert not torch.equal(model.sbo.dense1.weight, trained.sbo.dense1.weight)  # created fresh
    rc, _, err = run_cli(["fill", "--model", str(plain), TEXT])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(lines) == 1 and "MLM/SBO head" in lines[0] and SBO_HEAD_FILE in lines[0], err


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / SPANBERT_CONFIG_FILE).write_text('{"sbo_position_size": 200,\n oops}'),
     rf"^--init-from .*{SPANBERT_CONFIG_FILE}:2: not valid JSON"),
    (lambda d: (d / SPANBERT_CONFIG_FILE).write_text('{"sbo_position_size": 64}'),
     rf"{SBO_HEAD_FILE}: sbo\.\S+ is \[[\d, ]+\] in the file but \[[\d, ]+\] by {SPANBERT_CONFIG_FILE}"),
    (lambda d: (d / SPANBERT_CONFIG_FILE).write_text('{"sbo_width": 64}'), r"unknown field 'sbo_width'"),
    (lambda d: (d / SPANBERT_CONFIG_FILE).write_text('{"format_version": 9}'), r"format_version 9"),
    (lambda d: (d / SBO_HEAD_FILE).write_bytes(b"\x00" * 16), rf"{SBO_HEAD_FILE}: not a readable safetensors file"),
])
def test_damaged_side_files_are_one_line_errors(run, tmp_path, damage, message):
    folder = tmp_path / "damaged"
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "*.png"))
    damage(folder)
    with pytest.raises(CheckpointError, match=message) as excinfo:
        load_for_pretraining(str(folder))
    assert "\n" not in str(excinfo.value)
    with pytest.raises(CheckpointError, match=r"^--model "):
        SpanFiller.from_pretrained(folder)


def test_serve_and_onnx_read_the_new_layout(run):
    from spanbert.onnx.export import detect_task as onnx_task
    from spanbert.serve.tasks import detect_task

    assert detect_task(run) == "fill"
    with pytest.raises(ConfigError, match="cannot export a BertForMaskedLM model"):
        onnx_task(run)


def test_overwrite_removes_the_final_model_with_its_side_files(run, tmp_path):
    from spanbert.core.run_folder import remove_run_files
    from spanbert.pretrain.train import MODEL_CARD_TITLE, MODEL_FILES, RUN_FILES

    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    (folder / "notes.txt").write_text("mine")
    removed = remove_run_files(folder, RUN_FILES, MODEL_FILES, MODEL_CARD_TITLE)
    assert {SBO_HEAD_FILE, SPANBERT_CONFIG_FILE, "config.json", "model.safetensors", "README.md"} <= set(removed)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
