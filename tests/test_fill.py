"""Span filling: a model trained on a sentence gives its masked span back from each head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.core.errors import SpanBertError
from spanbert.pretrain.fill import SpanFiller, mask_runs
from spanbert.pretrain.masking import MaskingConfig
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
from spanbert.pretrain.words import batch_word_starts

transformers.logging.set_verbosity_error()

SENTENCES = [
    "The Congress of the United States has made provision for the public debt of the nation.",
    "Fellow citizens of the Senate and House of Representatives, I feel much satisfaction.",
]


def test_mask_runs():
    mask = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=torch.bool)
    assert mask_runs(mask) == [(1, 2), (4, 4), (7, 9)]
    assert mask_runs(torch.zeros(4, dtype=torch.bool)) == []


@pytest.fixture(scope="module")
def trained(tiny_tokenizer):
    """A tiny model that has memorised two sentences under span masking."""
    tok = tiny_tokenizer
    enc = tok(SENTENCES, return_offsets_mapping=True)
    starts = batch_word_starts(enc, SENTENCES)
    features = [{"input_ids": ids, "word_starts": ws.astype(int).tolist()}
                for ids, ws in zip(enc["input_ids"], starts)] * 8
    torch.manual_seed(0)
    config = SpanBertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=64, sbo_position_size=16,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = SpanBertForPreTraining(config)
    collator = SpanMaskingCollator(tok, MaskingConfig(mask_ratio=0.3), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model(**collator(features)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 1.0
    return SpanFiller(model, tok)


def masked(tokenizer, sentence: str, words: str) -> str:
    return sentence.replace(words, " ".join([tokenizer.mask_token] * len(tokenizer.tokenize(words))))


@pytest.mark.parametrize("sentence, words", [(SENTENCES[0], "United States"), (SENTENCES[1], "House of Representatives")])
def test_both_heads_recover_a_memorised_span(trained, sentence, words):
    tok = trained.tokenizer
    (result,) = trained.fill(masked(tok, sentence, words))
    (span,) = result.spans
    n = len(tok.tokenize(words))
    assert span.end - span.start + 1 == n
    truth = tok.convert_tokens_to_ids(tok.tokenize(words))
    for head in ("mlm", "sbo", "joint", "iterative"):
        pred = span.predictions[head]
        assert pred.token_ids == truth, (head, pred.tokens)
        assert all(0.0 < p <= 1.0 for p in pred.probabilities)
        if head != "iterative":
            assert len(pred.top_k) == n and pred.top_k[0][0][0] == pred.tokens[0]
    assert result.filled_text["sbo"] == tok.decode(tok(sentence)["input_ids"], skip_special_tokens=True)
    # SBO reads only the boundary tokens: they are the tokens around the run
    ids = tok(masked(tok, sentence, words))["input_ids"]
    assert span.boundary_tokens == tuple(tok.convert_ids_to_tokens([ids[span.start - 1], ids[span.end + 1]]))


def test_batch_of_texts_and_several_runs(trained):
    tok = trained.tokenizer
    text = masked(tok, masked(tok, SENTENCES[0], "United States"), "public debt")
    results = trained.fill([text, masked(tok, SENTENCES[1], "Senate")])
    assert [len(r.spans) for r in results] == [2, 1]
    assert np.all([s.start <= s.end for r in results for s in r.spans])


def test_errors(trained):
    with pytest.raises(SpanBertError, match="no \\[MASK\\]"):
        trained.fill("Nothing is masked here.")
    too_long = "The " + " ".join(["[MASK]"] * 20) + " end."
    with pytest.raises(SpanBertError, match="longer than the SBO head"):
        trained.fill(too_long)
