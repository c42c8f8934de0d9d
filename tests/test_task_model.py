"""A SpanBERT pre-training folder loads under any task head as a plain BERT model."""

from __future__ import annotations

import json

import pytest
import torch

from spanbert.errors import CheckpointError
from spanbert.modeling import SpanBertForPreTraining, config_from_preset
from spanbert.task_model import load_task_model


@pytest.fixture(scope="module")
def spanbert_dir(tmp_path_factory, tiny_tokenizer):
    torch.manual_seed(0)
    model = SpanBertForPreTraining(config_from_preset("tiny", vocab_size=len(tiny_tokenizer)))
    out = tmp_path_factory.mktemp("spanbert")
    model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out, model


@pytest.mark.parametrize("task", ["qa", "classification"])
def test_spanbert_encoder_under_a_task_head_saves_as_plain_bert(spanbert_dir, task, tmp_path):
    import transformers

    path, pretrained = spanbert_dir
    if task == "qa":
        classes, overrides = (transformers.AutoModelForQuestionAnswering, transformers.BertForQuestionAnswering), {}
    else:
        classes, overrides = (transformers.AutoModelForSequenceClassification, transformers.BertForSequenceClassification), {"num_labels": 3}
    model, tok = load_task_model(path, *classes, task, **overrides)
    assert type(model) is classes[1] and model.config.model_type == "bert"
    if task == "classification":
        assert model.config.num_labels == 3
    theirs = pretrained.bert.state_dict()
    for name, tensor in model.bert.state_dict().items():
        if not name.startswith("pooler"):
            assert torch.equal(tensor, theirs[name]), name
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and not any(k.startswith("sbo_") for k in config)
    again = classes[0].from_pretrained(tmp_path)  # plain transformers, no spanbert config class needed
    batch = tok("a short text", return_tensors="pt")
    with torch.no_grad():
        a, b = model.eval()(**batch), again.eval()(**batch)
    key = "start_logits" if task == "qa" else "logits"
    assert torch.equal(a[key], b[key])


def test_not_a_model_folder(tmp_path):
    import transformers

    with pytest.raises(CheckpointError, match="no config.json"):
        load_task_model(tmp_path, transformers.AutoModelForQuestionAnswering, transformers.BertForQuestionAnswering, "QA")
