"""Tests for spanbert.tasks.ner.model: the config and head register with the Auto classes, the loss
is the cross-entropy of the labelled spans only, padding changes nothing, the encoder comes
from plain BERT and from our pre-training folders, and a saved model reloads exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, BertConfig, BertModel

from spanbert.core.errors import ConfigError
from spanbert.tasks.ner.features import encode_sentences, pad_inputs, pad_spans, window_spans
from spanbert.tasks.ner.model import BertForSpanNER, SpanNerConfig, label_maps, load_ner_model
from spanbert.core.checkpoints import set_dropout
from .conftest import TINY_BERT

TINY = {**TINY_BERT, "max_position_embeddings": 64}
TYPES = ["location", "person"]


def tiny_config(vocab_size: int = 99, **fields) -> SpanNerConfig:
    return SpanNerConfig(vocab_size=vocab_size, **TINY, **label_maps(TYPES), width_embedding_dim=8,
                         classifier_hidden_size=16, **fields)


def batch_for(tokenizer, sentences, max_span_width=4):
    corpus = encode_sentences(tokenizer, sentences)
    spans = [window_spans(w, max_span_width) for w in corpus.windows]
    batch = pad_inputs([w.input_ids for w in corpus.windows], tokenizer.pad_token_id)
    batch.update(pad_spans([t for _, t in spans]))
    return batch, spans


def test_config_and_model_register_with_auto_classes():
    config = AutoConfig.for_model("spanbert_span_ner", **TINY, **label_maps(TYPES))
    assert isinstance(config, SpanNerConfig) and config.id2label == {0: "O", 1: "location", 2: "person"}
    assert type(AutoModel.from_config(config)) is BertForSpanNER
    assert type(AutoModelForTokenClassification.from_config(config)) is BertForSpanNER
    assert config.max_span_width == 8 and config.use_cross_attention and config.negative_ratio == 1.0


def test_label_zero_must_be_outside():
    with pytest.raises(ConfigError, match="label 0 must be 'O'"):
        BertForSpanNER(SpanNerConfig(**TINY, id2label={0: "PER", 1: "O"}))


@pytest.mark.parametrize("cross_attention, combination", [(True, "x,y"), (False, "x,y,x*y")])
def test_loss_is_the_cross_entropy_of_labelled_spans(tiny_tokenizer, cross_attention, combination):
    torch.manual_seed(0)
    model = BertForSpanNER(tiny_config(len(tiny_tokenizer), use_cross_attention=cross_attention,
                                       span_combination=combination, max_span_width=4)).eval()
    batch, spans = batch_for(tiny_tokenizer, [["Ann", "lives", "in", "Oslo", "."], ["Hi", "Bob"]])
    n0, n1 = len(spans[0][0]), len(spans[1][0])
    assert batch["spans"].shape == (2, n0, 2) and batch["span_mask"][1].sum() == n1
    labels = torch.full(batch["span_mask"].shape, -100)
    labels[0, 0], labels[0, 5], labels[1, 2] = 2, 0, 2  # three labelled spans; padding spans stay -100
    out = model(**batch, span_labels=labels)
    assert out.logits.shape == (2, n0, 3)
    picked = out.logits[[0, 0, 1], [0, 5, 2]]
    assert torch.allclose(out.loss, F.cross_entropy(picked, torch.tensor([2, 0, 2])))
    # a padding span's label is ignored even if set
    labels[1, n1] = 1
    assert torch.allclose(model(**batch, span_labels=labels).loss, out.loss)


def test_padding_does_not_change_a_window_s_logits(tiny_tokenizer):
    torch.manual_seed(1)
    model = BertForSpanNER(tiny_config(len(tiny_tokenizer))).eval()
    alone, spans = batch_for(tiny_tokenizer, [["Hi", "Bob"]])
    padded, _ = batch_for(tiny_tokenizer, [["Hi", "Bob"], ["a", "much", "longer", "sentence", "of", "words", "here"]])
    with torch.no_grad():
        a = model(**alone).logits[0]
        b = model(**padded).logits[0, : len(spans[0][0])]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_without_spans_every_token_is_scored(tiny_tokenizer):
    model = BertForSpanNER(tiny_config(len(tiny_tokenizer))).eval()
    ids = tiny_tokenizer(["Ann lives in Oslo"], return_tensors="pt")
    assert model(**ids).logits.shape == (1, ids["input_ids"].shape[1], 3)


def test_encoder_from_plain_bert_and_from_spanbert_pretraining(tiny_tokenizer, tmp_path):
    from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining

    torch.manual_seed(2)
    bert = BertModel(BertConfig(vocab_size=len(tiny_tokenizer), **TINY), add_pooling_layer=False)
    bert.save_pretrained(tmp_path / "bert")
    tiny_tokenizer.save_pretrained(tmp_path / "bert")
    pre = SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tiny_tokenizer), **TINY))
    pre.save_pretrained(tmp_path / "spanbert")
    tiny_tokenizer.save_pretrained(tmp_path / "spanbert")
    for folder, encoder in (("bert", bert), ("spanbert", pre.bert)):
        torch.manual_seed(0)
        model, tok = load_ner_model(tmp_path / folder, **label_maps(TYPES), max_span_width=3, width_embedding_dim=8)
        assert isinstance(model, BertForSpanNER) and model.config.max_span_width == 3 and len(tok) == len(tiny_tokenizer)
        source = encoder.state_dict()
        for name, p in model.bert.state_dict().items():
            assert torch.equal(source[name], p), name
        # the fresh head is initialised (no NaN/garbage from the meta device) and seeded
        torch.manual_seed(0)
        again, _ = load_ner_model(tmp_path / folder, **label_maps(TYPES), max_span_width=3, width_embedding_dim=8)
        for (name, p), q in zip(model.named_parameters(), again.parameters()):
            assert torch.isfinite(p).all() and torch.equal(p, q), name
        assert model.classifier.out.weight.std() < 0.05  # initializer_range 0.02, not torch's default


def test_save_and_reload_give_identical_logits(tiny_tokenizer, tmp_path):
    from spanbert.tasks.ner.settings import DecodeConfig, NerSettings, WindowConfig
    from spanbert.tasks.protocol import get_task

    torch.manual_seed(3)
    model = BertForSpanNER(tiny_config(len(tiny_tokenizer))).eval()
    settings = NerSettings(WindowConfig(64), DecodeConfig(0.35), "IOBES")
    get_task("ner").save(tmp_path / "ner", model, tiny_tokenizer, settings)
    again, _ = load_ner_model(tmp_path / "ner")
    plain = AutoModel.from_pretrained(tmp_path / "ner").eval()  # through the Auto registration
    batch, _ = batch_for(tiny_tokenizer, [["Ann", "lives", "in", "Oslo"]])
    with torch.no_grad():
        ref = model(**batch).logits
        assert torch.equal(again.eval()(**batch).logits, ref) and torch.equal(plain(**batch).logits, ref)
    assert get_task("ner").load_settings(tmp_path / "ner") == settings


def test_dropout_is_off_in_eval_and_on_in_train(tiny_tokenizer):
    torch.manual_seed(4)
    model = BertForSpanNER(tiny_config(len(tiny_tokenizer)))
    batch, _ = batch_for(tiny_tokenizer, [["Ann", "lives", "in", "Oslo"]])
    model.train()
    set_dropout(model, 0.5)
    a, b = model(**batch).logits, model(**batch).logits
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(**batch).logits, model(**batch).logits)
    assert np.isfinite(a.detach().numpy()).all()
