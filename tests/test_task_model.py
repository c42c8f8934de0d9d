"""A SpanBERT pre-training folder loads under any task head as a plain BERT model."""

from __future__ import annotations

import json

import pytest
import torch

from spanbert.core.errors import CheckpointError
from spanbert.pretrain.modeling import SpanBertForPreTraining, config_from_preset
from spanbert.core.checkpoints import load_task_model


@pytest.fixture(scope="module", params=["new", "old"])
def spanbert_dir(request, tmp_path_factory, tiny_tokenizer):
    """A pre-training folder in today's layout (a BertForMaskedLM checkpoint + SBO side files, as
    `spanbert pretrain` saves it) or the older one (``model_type: spanbert``, save_pretrained)."""
    from spanbert.pretrain.modeling import save_pretraining_folder

    torch.manual_seed(0)
    model = SpanBertForPreTraining(config_from_preset("tiny", vocab_size=len(tiny_tokenizer)))
    out = tmp_path_factory.mktemp("spanbert")
    if request.param == "new":
        save_pretraining_folder(model, out)
    else:
        model.save_pretrained(out)
    assert json.loads((out / "config.json").read_text())["model_type"] == {"new": "bert", "old": "spanbert"}[request.param]
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


def test_missing_folder_is_one_line(tmp_path):
    import transformers

    with pytest.raises(CheckpointError, match="no such model folder"):
        load_task_model(tmp_path / "absent", transformers.AutoModelForSequenceClassification,
                        transformers.BertForSequenceClassification, "classification")


def test_custom_head_takes_the_encoder_then_reloads_as_itself(spanbert_dir, tmp_path):
    """load_head_model: a new head on a SpanBERT encoder (weights equal, head fresh), saved with
    its own model_type and reloaded as-is."""
    from transformers import BertConfig, BertModel, BertPreTrainedModel

    from spanbert.core.checkpoints import load_head_model, save_task_model

    class ToyHeadConfig(BertConfig):
        model_type = "toy_head_for_tests"

        def __init__(self, toy_width: int = 3, **kwargs):
            super().__init__(**kwargs)
            self.toy_width = toy_width

    class ToyHead(BertPreTrainedModel):
        config_class = ToyHeadConfig

        def __init__(self, config):
            super().__init__(config)
            self.bert = BertModel(config, add_pooling_layer=False)
            self.head = torch.nn.Linear(config.hidden_size, config.toy_width)
            self.post_init()

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            return self.head(self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state)

    path, pretrained = spanbert_dir
    torch.manual_seed(0)
    model, tok = load_head_model(path, ToyHead, "toy", toy_width=5)
    assert model.config.model_type == "toy_head_for_tests" and model.head.out_features == 5
    theirs = pretrained.bert.state_dict()
    for name, tensor in model.bert.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name
    save_task_model(tmp_path, model, tok, {"toy_settings.json": {"a": 1}}, card="# toy\n")
    assert json.loads((tmp_path / "toy_settings.json").read_text()) == {"a": 1} and (tmp_path / "README.md").is_file()
    assert not list(tmp_path.glob(".save.*"))
    again, _ = load_head_model(tmp_path, ToyHead, "toy")
    batch = tok("a short text", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model.eval()(**batch), again.eval()(**batch))
    with pytest.raises(CheckpointError, match="needs a BERT encoder"):
        (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        load_head_model(tmp_path, ToyHead, "toy")


def test_half_precision_checkpoints_load_as_float32_and_run_under_autocast(tiny_tokenizer, tmp_path):
    """A classifier saved in float16 loads with float32 weights (same values), so CPU bf16
    autocast works on it: float16 parameters under CPU autocast raised a LayerNorm dtype error."""
    from transformers import BertConfig, BertForSequenceClassification

    from spanbert.tasks.classify import TextClassifier
    from spanbert.tasks.classify.settings import ClassifySettings
    from spanbert.tasks.protocol import get_task

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=64, num_labels=2))
    get_task("classify").save(tmp_path / "half", model.half(), tiny_tokenizer, ClassifySettings())
    loaded = TextClassifier(tmp_path / "half", device="cpu", precision="bf16")
    params = dict(loaded.model.named_parameters())
    assert all(p.dtype == torch.float32 for p in params.values())
    assert torch.equal(params["classifier.weight"], model.classifier.weight.float())
    assert loaded.classify(["The people have spoken."])[0].label in ("LABEL_0", "LABEL_1")


def test_a_final_swap_cut_short_by_a_crash_is_finished_by_the_loader(tmp_path):
    """A fine-tuning killed between its two renames leaves only ``.OUT.ready`` (complete): the
    loaders finish the swap instead of calling the model missing; a half-written staging folder
    is never taken for a model."""
    from spanbert.core.checkpoints import check_model_folder

    out = tmp_path / "model"
    ready = tmp_path / ".model.ready"
    ready.mkdir()
    (ready / "config.json").write_text('{"model_type": "bert"}')
    assert check_model_folder(out) == out
    assert (out / "config.json").is_file() and not ready.exists()

    staging = tmp_path / ".other.staging"
    staging.mkdir()
    (staging / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="no such model folder"):
        check_model_folder(tmp_path / "other")
