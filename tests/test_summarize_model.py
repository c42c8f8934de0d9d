"""Segments of whole sentences, sentence spans, padding masks and save/reload of the summarizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, BertConfig, BertModel

from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.tasks.summarize.data import read_summaries
from spanbert.tasks.summarize.features import collate_documents, encode_document
from spanbert.tasks.summarize.model import BertForExtractiveSummarization, ExtractiveSummarizerConfig, load_summarizer

from .conftest import DATA, TINY_BERT

TRAIN = DATA / "summarize" / "scitldr_a_train_sample.jsonl"
TINY = {**TINY_BERT, "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def docs():
    return read_summaries(TRAIN)[:4]


def tiny_model(tokenizer, **fields) -> BertForExtractiveSummarization:
    torch.manual_seed(0)
    config = ExtractiveSummarizerConfig(vocab_size=len(tokenizer), **{"cross_attention_heads": 2, "max_segment_length": 48,
                                                                       **TINY, **fields})
    return BertForExtractiveSummarization(config).eval()


def test_segments_hold_whole_sentences_and_spans_point_at_each_sentence(docs, tiny_tokenizer):
    counts = []
    for ex in docs:
        feats = encode_document(ex.sentences, tiny_tokenizer, 200)  # no sample sentence is longer (133 at most)
        counts.append(len(feats.segments))
        assert all(len(s) <= 200 and s[0] == tiny_tokenizer.cls_token_id and s[-1] == tiny_tokenizer.sep_token_id
                   for s in feats.segments)
        # Every document token is one (segment, position) slot, each used once, in order, no specials.
        slots = [tuple(p) for p in feats.token_positions]
        assert len(set(slots)) == len(slots) == sum(len(s) - 2 for s in feats.segments)
        assert [feats.segments[s][p] for s, p in slots] == [t for seg in feats.segments for t in seg[1:-1]]
        # Sentence k is the span [first, last]: spans tile the document, one per sentence, in order.
        spans = feats.sentence_spans
        assert len(spans) == len(ex.sentences) and spans[0, 0] == 0 and spans[-1, 1] == feats.num_tokens - 1
        assert (spans[1:, 0] == spans[:-1, 1] + 1).all()
        for k, (first, last) in enumerate(spans):
            sentence = ex.sentences[k]
            assert feats.token_positions[first, 0] == feats.token_positions[last, 0]  # never split across segments
            assert (feats.token_offsets[first : last + 1, 0] == k).all()
            start, end = feats.token_offsets[first, 1], feats.token_offsets[last, 2]
            assert sentence[:start].strip() == "" and sentence[end:].strip() == ""  # first and last token of the sentence
    # Greedy packing, e.g. document 0 (sentences of 84, 70, 93, 86, 88, 108 tokens, 198 per segment):
    # [84 70] [93 86] [88 108]. The tiny vocabulary makes long token sequences: several segments.
    assert counts == [3, 5, 1, 3]


def test_a_sentence_longer_than_a_segment_is_cut_not_split(tiny_tokenizer):
    long = " ".join(["whale"] * 100) + "."
    feats = encode_document(["Call me Ishmael.", long, "The end."], tiny_tokenizer, 16)
    assert len(feats.segments) == 3 and all(len(s) <= 16 for s in feats.segments)
    assert feats.sentence_spans[1, 1] - feats.sentence_spans[1, 0] + 1 == 14


def test_collated_token_index_reads_each_documents_tokens(docs, tiny_tokenizer):
    feats = [encode_document(ex.sentences, tiny_tokenizer, 48) for ex in docs]
    batch = collate_documents(feats, tiny_tokenizer.pad_token_id)
    flat = batch["input_ids"].reshape(-1)  # (S*L,)
    for b, f in enumerate(feats):
        n = f.num_tokens
        assert batch["token_mask"][b].sum() == n
        assert flat[batch["token_index"][b, :n]].tolist() == [t for seg in f.segments for t in seg[1:-1]]
        assert batch["sentence_mask"][b].sum() == len(f.sentence_spans)


@pytest.mark.parametrize("fields", [{}, {"span_representation": "endpoint+self_attentive"},
                                    {"span_representation": "self_attentive", "use_cross_attention": False}])
def test_padding_does_not_change_scores(docs, tiny_tokenizer, fields):
    """A document scores the same alone or next to a longer one, and whatever the padding holds."""
    model = tiny_model(tiny_tokenizer, **fields)
    short = encode_document(docs[2].sentences, tiny_tokenizer, 48)  # the shortest sample abstract (2 sentences)
    longer = [encode_document(ex.sentences, tiny_tokenizer, 48) for ex in (docs[0], docs[1])]
    with torch.no_grad():
        alone = model(**collate_documents([short], tiny_tokenizer.pad_token_id)).logits[0]
        batch = collate_documents([longer[0], short, longer[1]], tiny_tokenizer.pad_token_id)
        together = model(**batch).logits[1, : len(short.sentence_spans)]
        assert torch.allclose(alone, together, atol=1e-5)
        # Scribble over every padded place: segment padding, document-token padding, sentence padding.
        noisy = {k: v.clone() for k, v in batch.items()}
        gen = torch.Generator().manual_seed(1)
        pad_tokens = noisy["attention_mask"] == 0
        noisy["input_ids"][pad_tokens] = torch.randint(5, len(tiny_tokenizer), (int(pad_tokens.sum()),), generator=gen)
        pad_doc = noisy["token_mask"] == 0
        noisy["token_index"][pad_doc] = torch.randint(0, batch["input_ids"].numel(), (int(pad_doc.sum()),), generator=gen)
        pad_sent = noisy["sentence_mask"] == 0
        noisy["sentence_spans"][pad_sent] = torch.tensor([0, 3])
        again = model(**noisy).logits
    assert torch.equal(again, model(**batch).logits)
    assert (again[batch["sentence_mask"] == 0] == 0).all()


def test_loss_is_masked_weighted_bce(docs, tiny_tokenizer):
    model = tiny_model(tiny_tokenizer, pos_weight=3.0)
    feats = [encode_document(ex.sentences, tiny_tokenizer, 48, ex.oracle_labels) for ex in docs[1:3]]
    batch = collate_documents(feats, tiny_tokenizer.pad_token_id, labels=True)
    with torch.no_grad():
        out = model(**batch)
    logits = torch.cat([out.logits[b, : len(f.sentence_spans)] for b, f in enumerate(feats)])
    labels = torch.cat([torch.tensor(f.labels) for f in feats])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=torch.tensor(3.0))
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_head_on_plain_bert_and_reload_gives_identical_scores(docs, tiny_tokenizer, tmp_path):
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(tiny_tokenizer), **TINY), add_pooling_layer=False)
    bert.save_pretrained(tmp_path / "bert")
    tiny_tokenizer.save_pretrained(tmp_path / "bert")
    model, tok = load_summarizer(tmp_path / "bert", cross_attention_heads=2, max_segment_length=48)
    assert type(model) is BertForExtractiveSummarization and model.config.model_type == "spanbert_extsum"
    for name, tensor in bert.state_dict().items():
        assert torch.equal(model.bert.state_dict()[name], tensor), name  # the encoder is the checkpoint's
    model.eval()
    batch = collate_documents([encode_document(ex.sentences, tok, 48) for ex in docs], tok.pad_token_id)
    with torch.no_grad():
        before = model(**batch).logits
    model.save_pretrained(tmp_path / "head")
    tok.save_pretrained(tmp_path / "head")
    config = json.loads((tmp_path / "head" / "config.json").read_text())
    assert config["model_type"] == "spanbert_extsum" and config["max_segment_length"] == 48
    assert config["use_cross_attention"] is True and config["span_representation"] == "endpoint"
    assert type(AutoConfig.from_pretrained(tmp_path / "head")) is ExtractiveSummarizerConfig
    for loaded in (load_summarizer(tmp_path / "head")[0], AutoModel.from_pretrained(tmp_path / "head")):
        with torch.no_grad():
            assert torch.equal(loaded.eval()(**batch).logits, before)


def test_spanbert_pretraining_folder_gives_its_encoder(tiny_tokenizer, tmp_path):
    from spanbert.pretrain.modeling import SpanBertForPreTraining, config_from_preset

    torch.manual_seed(0)
    pre = SpanBertForPreTraining(config_from_preset("tiny", vocab_size=len(tiny_tokenizer)))
    pre.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    model, _ = load_summarizer(tmp_path, cross_attention_heads=2)
    assert not any(k.startswith("sbo_") for k in model.config.to_dict())
    theirs = pre.bert.state_dict()
    for name, tensor in model.bert.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name


def test_bad_head_settings(tiny_tokenizer, tmp_path):
    with pytest.raises(ConfigError, match="span_representation"):
        tiny_model(tiny_tokenizer, span_representation="mean")
    with pytest.raises(ConfigError, match="cross_attention_heads: 3"):
        tiny_model(tiny_tokenizer, cross_attention_heads=3)
    with pytest.raises(CheckpointError, match="no config.json"):
        load_summarizer(tmp_path)


def test_cross_attention_gets_gradients(docs, tiny_tokenizer):
    model = tiny_model(tiny_tokenizer).train()
    feats = [encode_document(ex.sentences, tiny_tokenizer, 48, ex.oracle_labels) for ex in docs[:2]]
    model(**collate_documents(feats, tiny_tokenizer.pad_token_id, labels=True)).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads.values())
    assert grads["cross_attention.attention.in_proj_weight"].abs().sum() > 0
