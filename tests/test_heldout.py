"""Held-out evaluation of the pre-training heads, and the document-level train / held-out split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.pretrain.corpus import load_corpus, pack_documents, unigram_distribution
from spanbert.core.errors import ConfigError
from spanbert.pretrain.heldout import HeldoutMetrics, evaluate_heldout, split_by_document, unigram_topk_ids
from spanbert.pretrain.masking import IGNORE_INDEX
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining

from .conftest import DATA

transformers.logging.set_verbosity_error()


@pytest.fixture(scope="module")
def docs():
    return load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")])


@pytest.fixture(scope="module")
def packed(docs, tiny_tokenizer):
    return pack_documents(docs, tiny_tokenizer, max_length=48, with_doc_ids=True)


def tiny_model(tokenizer, seed: int = 0) -> SpanBertForPreTraining:
    torch.manual_seed(seed)
    config = SpanBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64, sbo_position_size=16)
    return SpanBertForPreTraining(config)


def hand_metrics(model, dataset, collator, batch_size):
    """The same quantities from plain torch: one forward per batch, logits concatenated, then counted."""
    collator.set_epoch(0)
    model.eval()
    mlm_logits, mlm_labels, sbo_logits, sbo_labels, joint_scores = [], [], [], [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            batch = collator(rows)
            out = model(**batch, return_logits=True)
            labels = batch["labels"]  # (B, T)
            mlm_logits.append(out.mlm_logits)
            mlm_labels.append(labels[labels != IGNORE_INDEX])
            sbo_logits.append(out.sbo_logits)
            sbo_labels.append(batch["sbo_labels"])
            # joint, by a slow dictionary lookup: flat position -> MLM row
            row_of = {pos: r for r, pos in enumerate((labels.reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1).tolist())}
            for j, (b, left, _, offset) in enumerate(batch["sbo_pairs"].tolist()):
                pos = b * labels.size(1) + left + 1 + offset
                assert labels[b, left + 1 + offset] == batch["sbo_labels"][j]
                joint_scores.append(out.mlm_logits[row_of[pos]].log_softmax(-1) + out.sbo_logits[j].log_softmax(-1))
    mlm_logits, mlm_labels = torch.cat(mlm_logits), torch.cat(mlm_labels)
    sbo_logits, sbo_labels = torch.cat(sbo_logits), torch.cat(sbo_labels)
    joint = torch.stack(joint_scores)

    def topk(scores, labels, k):
        return (scores.topk(k, dim=-1).indices == labels[:, None]).any(-1).float().mean().item()

    return {
        "masked_tokens": len(mlm_labels), "sbo_targets": len(sbo_labels), "joint_targets": len(joint),
        "mlm_loss": F.cross_entropy(mlm_logits, mlm_labels).item(),
        "sbo_loss": F.cross_entropy(sbo_logits, sbo_labels).item(),
        "mlm_top1": (mlm_logits.argmax(-1) == mlm_labels).float().mean().item(),
        "mlm_top5": topk(mlm_logits, mlm_labels, 5),
        "sbo_top1": (sbo_logits.argmax(-1) == sbo_labels).float().mean().item(),
        "sbo_top5": topk(sbo_logits, sbo_labels, 5),
        "joint_top1": (joint.argmax(-1) == sbo_labels).float().mean().item(),
        "joint_top5": topk(joint, sbo_labels, 5),
        "labels": mlm_labels,
    }


def test_metrics_match_a_hand_computation(tiny_tokenizer, packed):
    model = tiny_model(tiny_tokenizer)
    # a few steps of training on the first rows, so the heads are not uniform and accuracies are not 0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_collator = SpanMaskingCollator(tiny_tokenizer, seed=5)
    for step in range(15):
        train_collator.set_epoch(step)
        out = model(**train_collator([packed[i] for i in range(16)]))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    model.train()
    heldout = packed.select(range(40, 80))
    collator = SpanMaskingCollator(tiny_tokenizer, seed=3)
    collator.set_epoch(7)
    unigram = unigram_distribution(packed, len(tiny_tokenizer))
    got = evaluate_heldout(model, heldout, collator, batch_size=16, precision="no", unigram=unigram)
    assert model.training and collator.epoch == 7  # mode restored, the caller's collator untouched
    want = hand_metrics(model, heldout, SpanMaskingCollator(tiny_tokenizer, seed=3), batch_size=16)
    assert got.segments == 40
    for key in ("masked_tokens", "sbo_targets", "joint_targets"):
        assert getattr(got, key) == want[key], key
    assert got.joint_targets == got.sbo_targets > 0
    for key in ("mlm_loss", "sbo_loss", "mlm_top1", "mlm_top5", "sbo_top1", "sbo_top5", "joint_top1", "joint_top5"):
        assert getattr(got, key) == pytest.approx(want[key], rel=1e-5, abs=1e-7), key
    assert got.mlm_top1 > 0 and got.mlm_top5 >= got.mlm_top1 and got.joint_top5 >= got.joint_top1

    # unigram baseline: a direct count of the most frequent non-special ids among the masked tokens
    counts = np.bincount(np.concatenate([np.asarray(r) for r in packed["input_ids"]]), minlength=len(tiny_tokenizer))
    special = set(tiny_tokenizer.all_special_ids)
    ranked = [int(i) for i in sorted(range(len(counts)), key=lambda i: (-counts[i], i)) if int(i) not in special]
    labels = want["labels"].tolist()
    assert got.unigram_top1 == pytest.approx(sum(t == ranked[0] for t in labels) / len(labels))
    assert got.unigram_top5 == pytest.approx(sum(t in ranked[:5] for t in labels) / len(labels))
    assert unigram_topk_ids(unigram, 5, sorted(special)).tolist() == ranked[:5]

    # identical masks every time (fixed epoch); JSON-ready output
    again = evaluate_heldout(model, heldout, collator, batch_size=7, precision="no", unigram=unigram)
    assert again.masked_tokens == got.masked_tokens and again.mlm_loss == pytest.approx(got.mlm_loss, rel=1e-5)
    assert json.loads(json.dumps(got.to_json())) == got.to_json()
    assert "MLM loss" in got.summary()
    limited = evaluate_heldout(model, heldout, collator, batch_size=16, precision="no", max_batches=1)
    assert limited.segments == 16 and limited.unigram_top1 is None


def test_evaluation_draws_no_random_numbers(tiny_tokenizer, packed):
    model = tiny_model(tiny_tokenizer)
    collator = SpanMaskingCollator(tiny_tokenizer, seed=0)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    evaluate_heldout(model, packed.select(range(10)), collator, precision="no")
    assert torch.equal(torch.get_rng_state(), state)


def test_bf16_is_close_to_fp32(tiny_tokenizer, packed):
    model = tiny_model(tiny_tokenizer)
    collator = SpanMaskingCollator(tiny_tokenizer, seed=0)
    fp32 = evaluate_heldout(model, packed.select(range(20)), collator, precision="no")
    bf16 = evaluate_heldout(model, packed.select(range(20)), collator, precision="bf16")
    assert isinstance(bf16, HeldoutMetrics) and bf16.masked_tokens == fp32.masked_tokens
    assert bf16.mlm_loss == pytest.approx(fp32.mlm_loss, rel=0.02)
    with pytest.raises(ConfigError, match="precision"):
        evaluate_heldout(model, packed.select(range(2)), collator, precision="fp8")


def test_doc_ids_follow_documents(docs, tiny_tokenizer, packed):
    plain = pack_documents(docs, tiny_tokenizer, max_length=48)
    assert plain.column_names == ["input_ids", "word_starts", "example_id"]  # unchanged without the option
    assert list(packed["input_ids"]) == list(plain["input_ids"])
    assert list(packed["example_id"]) == list(plain["example_id"])
    doc_ids = list(packed["doc_id"])
    assert doc_ids == sorted(doc_ids) and set(doc_ids) <= set(range(len(docs)))
    # each segment's tokens occur in its document's own tokenisation
    for row in packed.select(range(0, len(packed), 9)):
        doc_tokens = tiny_tokenizer(docs[row["doc_id"]]["text"], add_special_tokens=False)["input_ids"]
        inner = row["input_ids"][1:-1]
        assert any(doc_tokens[i : i + len(inner)] == inner for i in range(len(doc_tokens) - len(inner) + 1))
    stream = pack_documents(load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")],
                                        streaming=True), tiny_tokenizer, max_length=48, with_doc_ids=True)
    assert [r["doc_id"] for r in stream] == doc_ids


def test_split_by_document(packed):
    train, heldout = split_by_document(packed, 0.3, seed=4)
    docs_train, docs_held = set(train["doc_id"]), set(heldout["doc_id"])
    assert not docs_train & docs_held and docs_train | docs_held == set(packed["doc_id"])
    assert len(docs_held) == round(0.3 * len(set(packed["doc_id"])))
    assert len(train) + len(heldout) == len(packed)
    assert sorted(list(train["example_id"]) + list(heldout["example_id"])) == list(packed["example_id"])
    assert list(train["example_id"]) == sorted(train["example_id"])  # row order kept
    again, _ = split_by_document(packed, 0.3, seed=4)
    assert list(again["example_id"]) == list(train["example_id"])  # seeded
    tiny, _ = split_by_document(packed, 0.01, seed=4)
    assert len(tiny) < len(packed)  # at least one document held out
    for bad in (0, 1, -0.1, 1.5, True):
        with pytest.raises(ConfigError, match="--heldout-fraction"):
            split_by_document(packed, bad)
    with pytest.raises(ConfigError, match="doc_id"):
        split_by_document(packed.remove_columns("doc_id"), 0.1)
    with pytest.raises(ConfigError, match="at least 2"):
        split_by_document(packed.filter(lambda r: r["doc_id"] == 0), 0.5)
