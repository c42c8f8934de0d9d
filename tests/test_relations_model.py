"""The relation head: marker-start and [CLS] pooling read the right states; checkpoints reload to
identical logits (ours and through the transformers Auto classes); any BERT-family base works."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from spanbert.core.errors import CheckpointError
from spanbert.tasks.protocol import get_task
from spanbert.tasks.relations.data import label_set, read_semeval
from spanbert.tasks.relations.features import collate, encode_examples
from spanbert.tasks.relations.model import (
    BertForRelationExtraction,
    RelationConfig,
    new_relation_model,
    scheme_of,
)
from spanbert.tasks.relations.settings import RelationSettings

from .conftest import DATA, TINY_BERT, save_tiny_encoder

TRAIN = DATA / "relations" / "semeval_train_sample.txt"
TINY = {**TINY_BERT, "hidden_size": 64, "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, tiny_tokenizer):
    """A tiny plain-BERT folder (random weights) with the tiny WordPiece tokenizer."""
    return save_tiny_encoder(tmp_path_factory.mktemp("bert"), tiny_tokenizer, **TINY)


def _batch(model, tokenizer, n=6):
    examples = read_semeval(TRAIN)[:n]
    feats = encode_examples(examples, tokenizer, scheme_of(model.config), 128, model.config.label2id)
    return collate(feats, list(range(n)), tokenizer.pad_token_id, labels=True)


@pytest.mark.parametrize("pooling", ["markers", "cls"])
def test_head_reads_the_marker_states(bert_dir, pooling):
    labels = label_set(read_semeval(TRAIN))
    model, tok = new_relation_model(bert_dir, labels, pooling=pooling, no_relation_label="Other")
    assert isinstance(model.config, RelationConfig) and model.config.num_labels == len(labels) == 12
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == 600 + 4
    assert model.config.subject_start_ids == tok.convert_tokens_to_ids(["[S]"])
    assert model.config.object_start_ids == tok.convert_tokens_to_ids(["[O]"])
    model.eval()
    batch = _batch(model, tok)
    with torch.no_grad():
        out = model(**batch)
        hidden = model.bert(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state  # (B, T, H)
    rows = torch.arange(6)
    if pooling == "markers":
        pooled = torch.cat([hidden[rows, batch["subject_index"]], hidden[rows, batch["object_index"]]], -1)  # (B, 2H)
        assert model.classifier.in_features == 128
    else:
        pooled = hidden[:, 0]
        assert model.classifier.in_features == 64
    torch.testing.assert_close(out.logits, model.classifier(pooled))
    assert out.loss.item() == pytest.approx(F.cross_entropy(out.logits, batch["labels"]).item(), rel=1e-6)
    # without indices the head finds the markers from the config's marker ids
    no_index = {k: v for k, v in batch.items() if k not in ("subject_index", "object_index")}
    with torch.no_grad():
        assert torch.equal(model(**no_index).logits, out.logits)


def test_save_and_reload_give_identical_logits(bert_dir, tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    labels = label_set(read_semeval(TRAIN))
    model, tok = new_relation_model(bert_dir, labels, no_relation_label="Other", seed=3)
    model.eval()
    batch = _batch(model, tok)
    task = get_task("relations")
    task.save(tmp_path / "re", model, tok, task.settings_type())
    config = json.loads((tmp_path / "re" / "config.json").read_text())
    assert config["model_type"] == "spanbert_relation" and config["pooling"] == "markers"
    assert config["no_relation_label"] == "Other" and config["id2label"]["0"] == labels[0]
    assert not (tmp_path / "re" / "relations_settings.json").exists()  # the settings live in the config
    again, tok2, settings = task.load_trained(tmp_path / "re")
    assert settings == RelationSettings("markers", "wrap", "Other", 128)
    assert tok2.get_vocab() == tok.get_vocab() and tok2.tokenize("a [S] b [/S]") == tok.tokenize("a [S] b [/S]")
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path / "re")
    assert type(auto) is BertForRelationExtraction and type(AutoConfig.from_pretrained(tmp_path / "re")) is RelationConfig
    with torch.no_grad():
        a, b = model(**batch).logits, again.eval()(**batch).logits
        c = auto.eval()(**{k: v for k, v in batch.items() if not k.endswith("_index")}).logits
    assert torch.equal(a, b) and torch.equal(a, c)
    encoder = AutoModel.from_pretrained(tmp_path / "re")
    assert torch.equal(encoder.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def test_same_seed_same_head(bert_dir):
    labels = ["Other", "Cause-Effect(e1,e2)"]
    a, _ = new_relation_model(bert_dir, labels, seed=5)
    b, _ = new_relation_model(bert_dir, labels, seed=5)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert torch.equal(a.get_input_embeddings().weight, b.get_input_embeddings().weight)


def test_spanbert_pretraining_folder_as_base(tmp_path, tiny_tokenizer):
    from spanbert.pretrain.modeling import SpanBertForPreTraining, config_from_preset

    torch.manual_seed(0)
    pre = SpanBertForPreTraining(config_from_preset("tiny", vocab_size=len(tiny_tokenizer)))
    pre.save_pretrained(tmp_path / "pre")
    tiny_tokenizer.save_pretrained(tmp_path / "pre")
    model, tok = new_relation_model(tmp_path / "pre", ["Other", "Message-Topic(e1,e2)"])
    ours = model.bert.encoder.state_dict()
    for name, tensor in pre.bert.encoder.state_dict().items():
        assert torch.equal(ours[name], tensor), name
    assert not any(k.startswith("sbo_") for k in model.config.to_dict())


def test_loading_a_base_model_as_a_relation_model_fails(bert_dir):
    with pytest.raises(CheckpointError, match=r"not a fine-tuned relation extraction model \(it was saved as BertModel\)"):
        get_task("relations").load_trained(bert_dir)
