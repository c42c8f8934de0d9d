"""Bad inputs through the Python API: each is one of our one-line errors naming the field, option
or file (the command-line side is in tests/test_fuzz_more.py), and model folders whose weights
do not match their config are refused instead of loading half random."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from spanbert.core.errors import CheckpointError, ConfigError, TokenizerError
from .conftest import TINY_BERT

transformers.logging.set_verbosity_error()

TINY = {**TINY_BERT, "max_position_embeddings": 64}


@pytest.mark.parametrize("field, value", [
    ("lr", math.nan), ("lr", math.inf), ("lr", 0.0), ("epochs", 0.0), ("epochs", math.nan), ("warmup_steps", -1),
    ("weight_decay", -0.1), ("weight_decay", math.nan), ("seed", -1), ("seed", 2**32), ("save_every", -1),
    ("time_budget_s", 0.0), ("time_budget_s", math.inf), ("num_workers", -1), ("log_every", 0), ("adam_beta1", 1.0),
    ("adam_eps", 0.0), ("max_grad_norm", math.nan), ("batch_size", 0), ("max_steps", 0), ("lr", "1e-4"),
])
def test_pretrain_arguments_refuse_bad_values(field, value):
    from spanbert.pretrain.arguments import PretrainArguments

    with pytest.raises(ConfigError, match=field) as info:
        PretrainArguments(output_dir="out", **{field: value})
    option = "--time-budget" if field == "time_budget_s" else "--" + field.replace("_", "-")
    assert option in str(info.value) and "\n" not in str(info.value)


def test_pretrain_arguments_accept_the_edges():
    from spanbert.pretrain.arguments import PretrainArguments

    PretrainArguments(output_dir="out", warmup_steps=0, weight_decay=0.0, seed=2**32 - 1, save_every=0, num_workers=0,
                      max_grad_norm=math.inf, time_budget_s=0.5)


@pytest.mark.parametrize("fields, option", [
    ({"sbo_loss_weight": math.nan}, "--sbo-weight"), ({"sbo_loss_weight": -1.0}, "--sbo-weight"),
    ({"dropout": 1.0}, "--dropout"), ({"dropout": math.nan}, "--dropout"), ({"max_length": 7}, "--max-length"),
])
def test_pretrain_job_refuses_bad_values(fields, option):
    from spanbert.pretrain.arguments import PretrainArguments, PretrainJob

    with pytest.raises(ConfigError, match=option):
        PretrainJob(corpus=["x.txt"], train=PretrainArguments(output_dir="out"), **fields)
    PretrainJob(corpus=["x.txt"], train=PretrainArguments(output_dir="out"), sbo_loss_weight=0.0, dropout=0.0, max_length=8)


def test_unknown_precision_is_refused():
    from spanbert.core.precision import check_precision, inference_autocast

    with pytest.raises(ConfigError, match="--precision 'fp8'"):
        inference_autocast(torch.device("cpu"), "fp8")
    assert check_precision("auto") == "auto"


# -- model folders


def _save_qa(tokenizer, path: Path) -> Path:
    torch.manual_seed(0)
    model = transformers.BertForQuestionAnswering(transformers.BertConfig(vocab_size=len(tokenizer), **TINY))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _drop_tensors(path: Path, prefix: str) -> None:
    weights = load_file(path / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith(prefix)}, path / "model.safetensors",
              metadata={"format": "pt"})


def _load_qa(path):
    from spanbert.core.checkpoints import load_task_model

    return load_task_model(path, transformers.AutoModelForQuestionAnswering, transformers.BertForQuestionAnswering, "QA")


def test_a_saved_task_model_must_hold_its_head(tiny_tokenizer, tmp_path):
    """A folder saved as BertForQuestionAnswering loads as it is; without its qa_outputs tensors
    it is refused (the head would silently be random)."""
    path = _save_qa(tiny_tokenizer, tmp_path / "qa")
    model, _ = _load_qa(path)
    assert torch.equal(model.qa_outputs.weight, load_file(path / "model.safetensors")["qa_outputs.weight"])
    _drop_tensors(path, "qa_outputs.")
    with pytest.raises(CheckpointError, match="qa_outputs.bias"):
        _load_qa(path)


def test_missing_encoder_layers_are_refused_everywhere(tiny_tokenizer, tmp_path):
    """Encoder tensors missing from the weights: every loader refuses the folder, naming them."""
    from spanbert.pretrain.fill import SpanFiller
    from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining, load_for_pretraining

    torch.manual_seed(0)
    path = tmp_path / "spanbert"
    SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tiny_tokenizer), **TINY)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    SpanFiller.from_pretrained(path)  # complete: loads
    _drop_tensors(path, "bert.encoder.layer.1.")
    for load in (lambda: _load_qa(path), lambda: SpanFiller.from_pretrained(path), lambda: load_for_pretraining(str(path))):
        with pytest.raises(CheckpointError, match=r"missing from the weights \(bert\.encoder\.layer\.1\."):
            load()
    with pytest.raises(CheckpointError, match=r"^--init-from "):
        load_for_pretraining(str(path))


def test_tokenizer_larger_than_the_embeddings_is_refused(tiny_tokenizer, tmp_path):
    path = _save_qa(tiny_tokenizer, tmp_path / "qa")
    config = json.loads((path / "config.json").read_text())
    weights = load_file(path / "model.safetensors")
    small = len(tiny_tokenizer) - 10
    weights["bert.embeddings.word_embeddings.weight"] = weights["bert.embeddings.word_embeddings.weight"][:small].clone()
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps({**config, "vocab_size": small}))
    with pytest.raises(CheckpointError, match=f"{len(tiny_tokenizer)} tokens but config.json vocab_size is {small}"):
        _load_qa(path)


def test_a_tokenizer_of_special_tokens_only_is_refused(tiny_tokenizer, tmp_path):
    from spanbert.core.checkpoints import load_tokenizer

    tiny_tokenizer.save_pretrained(tmp_path)
    assert len(load_tokenizer(tmp_path)) == len(tiny_tokenizer)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(TokenizerError, match="no vocabulary beyond its 5 special tokens"):
        load_tokenizer(tmp_path)


# -- fill


@pytest.fixture(scope="module")
def mask_loving_filler(tiny_tokenizer):
    """A filler whose heads both rank [MASK] (and [CLS]) far above every other token."""
    from spanbert.pretrain.fill import SpanFiller
    from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining

    torch.manual_seed(0)
    model = SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tiny_tokenizer), **TINY))
    with torch.no_grad():
        for bias in (model.cls.predictions.bias, model.sbo.bias):
            bias[tiny_tokenizer.mask_token_id] += 50.0
            bias[tiny_tokenizer.cls_token_id] += 40.0
    return SpanFiller(model, tiny_tokenizer)


def test_fill_never_predicts_special_tokens(mask_loving_filler, tiny_tokenizer):
    (result,) = mask_loving_filler.fill("The [MASK] [MASK] of the [MASK].", top_k=4)
    special = set(tiny_tokenizer.all_special_ids)
    assert sum(s.end - s.start + 1 for s in result.spans) == 3
    for span in result.spans:
        for head, prediction in span.predictions.items():
            assert not special & set(prediction.token_ids), head
            assert all(0.0 < p <= 1.0 for p in prediction.probabilities), head
            for alternatives in prediction.top_k:
                assert len(alternatives) == 4
                assert not set(tiny_tokenizer.all_special_tokens) & {t for t, _ in alternatives}, head
    assert tiny_tokenizer.mask_token not in result.filled_text["iterative"]


def test_iterative_fill_takes_one_step_per_mask(mask_loving_filler, monkeypatch):
    """The iterative fill runs the encoder once per mask, whatever the heads prefer."""
    calls = []
    real = type(mask_loving_filler.model).forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(mask_loving_filler.model), "forward", counting)
    mask_loving_filler.fill("a [MASK] [MASK] [MASK] b [MASK]")
    assert len(calls) == 1 + 4  # the parallel pass, then one per mask


@pytest.mark.parametrize("top_k", [-1, 10**6, 2.5])
def test_fill_top_k_out_of_range(mask_loving_filler, top_k):
    with pytest.raises(ConfigError, match="--top-k"):
        mask_loving_filler.fill("a [MASK] b", top_k=top_k)
