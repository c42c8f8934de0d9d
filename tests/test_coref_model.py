"""Coreference features, model loss, decoding and HTML: segments cover every subword once and
respect sentences, spans map back to words exactly, the loss equals a brute-force marginal
log-likelihood, greedy linking gives the hand-computed clusters, the page is escaped."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from spanbert.tasks.coref.conll import CorefDocument, read_conll
from spanbert.tasks.coref.decoding import clusters_from_antecedents, decode_clusters, predicted_antecedents
from spanbert.tasks.coref.features import SegmentConfig, document_tensors, encode_document, text_document
from spanbert.tasks.coref.html import render_page, render_text
from spanbert.tasks.coref.model import BertForCoreference, CorefConfig, distance_bucket, non_crossing_top_spans
from spanbert.core.errors import ConfigError

from .conftest import DATA, TINY_BERT

PRIDE = DATA / "coref" / "1342_pride_and_prejudice_brat_head.conll"
ALICE = DATA / "coref" / "11_alices_adventures_in_wonderland_brat_head.conll"
TINY = {**TINY_BERT, "max_position_embeddings": 128}


def _check_encoding(tokenizer, doc: CorefDocument, config: SegmentConfig):
    enc = encode_document(tokenizer, doc, config)
    plain = tokenizer(doc.words, is_split_into_words=True, add_special_tokens=False)
    word_ids = plain.word_ids()
    # every subword exactly once, in order, segments framed by [CLS] ... [SEP] and never too long
    assert all(len(s) <= config.max_segment_length for s in enc.segments)
    assert all(s[0] == tokenizer.cls_token_id and s[-1] == tokenizer.sep_token_id for s in enc.segments)
    assert np.concatenate([s[1:-1] for s in enc.segments]).tolist() == plain["input_ids"]
    # word -> subword spans agree with the tokenizer's word_ids
    for w in range(len(doc.words)):
        assert [i for i, x in enumerate(word_ids) if x == w] == list(range(enc.word_first[w], enc.word_last[w] + 1))
    # candidates: word spans inside a sentence, at most max_span_width subwords, mapped exactly
    sentence_of = np.zeros(len(doc.words), dtype=int)
    for k, (a, b) in enumerate(doc.sentences):
        sentence_of[a:b] = k
    words, spans = enc.candidate_words, enc.candidate_spans
    assert (sentence_of[words[:, 0]] == sentence_of[words[:, 1]]).all()
    assert ((spans[:, 1] - spans[:, 0] + 1) <= config.max_span_width).all()
    assert [enc.word_span(a, b) for a, b in words.tolist()] == [tuple(s) for s in spans.tolist()]
    assert word_ids[spans[0, 0]] == words[0, 0]
    # gold: candidates labelled with their cluster; the others counted
    labelled = {(tuple(words[k]), int(enc.span_cluster_ids[k]) - 1) for k in np.flatnonzero(enc.span_cluster_ids)}
    gold = {(m, c) for c, cluster in enumerate(doc.clusters) for m in cluster}
    assert labelled <= gold and len(gold) - len(labelled) == enc.gold_not_candidates
    return enc


@pytest.mark.parametrize("path", [PRIDE, ALICE])
def test_segments_cover_every_subword_once_and_map_spans_back(tiny_tokenizer, path):
    doc = read_conll(path)[0]
    enc = _check_encoding(tiny_tokenizer, doc, SegmentConfig(max_segment_length=64, max_span_width=12))
    assert len(enc.segments) > 2 and enc.gold_not_candidates < doc.num_mentions
    # sentences that fit are never cut: every segment starts at a sentence start or inside a too-long sentence
    starts = {a for a, _ in doc.sentences}
    long_sentences = [(a, b) for a, b in doc.sentences if enc.word_last[b - 1] - enc.word_first[a] + 1 > 62]
    first_tokens = np.cumsum([0] + [len(s) - 2 for s in enc.segments[:-1]])
    for t in first_tokens:
        w = int(np.flatnonzero(enc.word_first == t)[0])  # segments begin on a word
        assert w in starts or any(a < w < b for a, b in long_sentences)


def test_short_sentences_pack_into_segments_at_sentence_boundaries(tiny_tokenizer):
    words = "Anne saw Tom . He waved . She smiled back at him .".split()
    doc = CorefDocument("d", words, [[(0, 0), (7, 7)], [(2, 2), (4, 4), (11, 11)]], [(0, 4), (4, 7), (7, 13)])
    enc = _check_encoding(tiny_tokenizer, doc, SegmentConfig(max_segment_length=20, max_span_width=30))
    assert len(enc.segments) == 2  # 8 + 6 subwords, then 13
    ends = np.cumsum([len(s) - 2 for s in enc.segments])
    assert set(ends.tolist()) <= {int(enc.word_last[b - 1]) + 1 for _, b in doc.sentences}
    assert enc.gold_not_candidates == 0 and enc.span_cluster_ids.max() == 2


def test_raw_text_words_sentences_and_offsets():
    text = "Mr. Bennet came home.  He was tired!\n\nHis wife <smiled>."
    doc = text_document(text)
    assert all(text[a:b] == w for w, (a, b) in zip(doc.document.words, doc.offsets))
    assert [doc.document.words[a] for a, _ in doc.document.sentences] == ["Mr.", "He", "His"]
    with pytest.raises(ConfigError, match="no words"):
        text_document("  \n ")


def test_raw_text_splits_possessives_like_the_training_data():
    """LitBank and OntoNotes are PTB-tokenized ("Pauline 's friend"), so raw text is too."""
    text = "Pauline's friend met Simon’s sister; it's 1990's. Mr. Darcy and J. K. Smith came at 5 p.m. today."
    doc = text_document(text)
    assert doc.document.words[:6] == ["Pauline", "'s", "friend", "met", "Simon", "’s"]
    # the period of a title or an initial stays with it (LitBank: "Mr." is one token)
    assert doc.document.words[13:20] == ["Mr.", "Darcy", "and", "J.", "K.", "Smith", "came"]
    assert doc.document.words[-2:] == ["today", "."]  # a sentence's own period stays apart
    assert all(text[a:b] == w for w, (a, b) in zip(doc.document.words, doc.offsets))


def test_distance_buckets_follow_lee_et_al():
    d = torch.tensor([0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 1000])
    assert distance_bucket(d, 10).tolist() == [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]


def _tiny_model(tokenizer, **fields) -> BertForCoreference:
    torch.manual_seed(0)
    fields = {"max_span_width": 8, "ffnn_size": 16, "feature_size": 4, "max_top_antecedents": 5, **fields}
    config = CorefConfig(vocab_size=len(tokenizer), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **TINY, **fields)
    return BertForCoreference(config).eval()


@pytest.mark.parametrize("fields", [{}, {"coarse_to_fine": False, "higher_order": 2, "use_genre": True, "max_top_antecedents": 40}])
def test_loss_is_the_marginal_log_likelihood_of_gold_antecedents(tiny_tokenizer, fields):
    doc = read_conll(PRIDE)[0]
    enc = encode_document(tiny_tokenizer, doc, SegmentConfig(64, 8))
    model = _tiny_model(tiny_tokenizer, top_span_ratio=1.0, **fields)  # keep many spans: gold ones among them
    batch = document_tensors(enc, tiny_tokenizer.pad_token_id)
    out = model(**batch)
    k, c = out.antecedents.shape
    assert k == len(doc.words) and c == model.config.max_top_antecedents and (out.scores[:, 0] == 0).all()
    top = out.top_spans.tolist()
    assert top == sorted(top) and out.loss.shape == ()
    ids = batch["span_cluster_ids"][out.top_indices].tolist()
    assert sum(1 for i in ids if i) >= 5
    expected, links = 0.0, 0
    for i in range(k):
        valid = [j for j in range(c) if out.antecedent_mask[i, j]]
        assert all(int(out.antecedents[i, j]) < i for j in valid)  # only earlier spans
        logits = [0.0] + [float(out.scores[i, j + 1].detach()) for j in valid]
        gold = [j + 1 for n, j in enumerate(valid) if ids[i] and ids[int(out.antecedents[i, j])] == ids[i]]
        links += len(gold)
        gold_logits = [logits[0]] if not gold else [float(out.scores[i, g].detach()) for g in gold]
        expected += math.log(sum(math.exp(x) for x in logits)) - math.log(sum(math.exp(x) for x in gold_logits))
    assert links > 0  # the case has real gold antecedents, not only dummies
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    out.loss.backward()  # gradients reach the encoder
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_top_spans_are_ratio_of_words(tiny_tokenizer):
    doc = read_conll(ALICE)[0]
    enc = encode_document(tiny_tokenizer, doc, SegmentConfig(64, 8))
    with torch.no_grad():
        out = _tiny_model(tiny_tokenizer)(**document_tensors(enc, tiny_tokenizer.pad_token_id, with_gold=False))
    assert len(out.top_indices) == math.ceil(0.4 * len(doc.words)) and out.loss is None


def test_greedy_linking_and_transitive_closure():
    spans = [(0, 0), (2, 3), (5, 5), (7, 7), (9, 9)]
    # 2 -> 0, 3 -> 2 (so 0, 2, 3 together), 4 -> 1; span 1 itself links to nothing
    assert clusters_from_antecedents(spans, [-1, -1, 0, 2, 1]) == [[(0, 0), (5, 5), (7, 7)], [(2, 3), (9, 9)]]
    assert clusters_from_antecedents(spans, [-1] * 5) == []
    scores = np.array([[0, -1e9], [0, 2.0], [0, -0.5], [0, 0.1]])  # (k, c + 1), dummy first
    antecedents = np.array([[0], [0], [1], [1]])
    assert predicted_antecedents(scores, antecedents) == [-1, 0, -1, 1]
    assert decode_clusters(np.array([[0, 0], [4, 5], [6, 6], [8, 8]]), scores, antecedents) == [[(0, 0), (4, 5), (8, 8)]]
    # singletons: the unlinked span (6, 6) joins as its own cluster only if its mention score passes
    top = np.array([[0, 0], [4, 5], [6, 6], [8, 8]])
    assert decode_clusters(top, scores, antecedents, np.array([5.0, 5.0, 0.3, 5.0]), 0.0) == [
        [(0, 0), (4, 5), (8, 8)], [(6, 6)]]
    assert decode_clusters(top, scores, antecedents, np.array([5.0, 5.0, -0.3, 5.0]), 0.0) == [[(0, 0), (4, 5), (8, 8)]]
    with pytest.raises(ValueError, match="mention_scores"):
        decode_clusters(top, scores, antecedents, None, 0.0)


def _crosses(a, b) -> bool:
    (s1, e1), (s2, e2) = a, b
    return s1 < s2 <= e1 < e2 or s2 < s1 <= e2 < e1


def test_non_crossing_pruning_equals_a_brute_force_greedy():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 40))
        starts = rng.integers(0, 20, n)
        spans = [(int(s), int(s + w)) for s, w in zip(starts, rng.integers(0, 6, n))]
        order = rng.permutation(n).tolist()
        k = int(rng.integers(1, n + 1))
        expected = []
        for i in order:  # the definition: best first, skip what crosses anything kept
            if not any(_crosses(spans[i], spans[j]) for j in expected):
                expected.append(i)
            if len(expected) == k:
                break
        assert non_crossing_top_spans(spans, order, k) == expected, trial
    # nested and identical spans are kept; a crossing one is skipped
    assert non_crossing_top_spans([(0, 5), (2, 3), (4, 8), (6, 7), (0, 5)], [0, 1, 2, 3, 4], 5) == [0, 1, 3, 4]


def test_model_keeps_no_crossing_spans_unless_told(tiny_tokenizer):
    doc = read_conll(PRIDE)[0]
    enc = encode_document(tiny_tokenizer, doc, SegmentConfig(64, 10))
    batch = document_tensors(enc, tiny_tokenizer.pad_token_id, with_gold=False)
    crossing_seen = []
    for non_crossing in (True, False):
        torch.manual_seed(0)
        model = BertForCoreference(CorefConfig(vocab_size=len(tiny_tokenizer), max_span_width=10, ffnn_size=16,
                                               feature_size=8, non_crossing=non_crossing, **TINY)).eval()
        with torch.no_grad():
            top = model(**batch).top_spans.tolist()
        crossing_seen.append(any(_crosses(a, b) for a in top for b in top))
    assert crossing_seen == [False, True]


class _Balance(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack.pop() == tag

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_escaped_and_well_formed_with_nested_and_crossing_mentions():
    text = "<b>Anne</b> & her sister's dog met Anne."
    clusters = [[(3, 7), (12, 15), (35, 39)], [(12, 22)], [(16, 30)]]  # nested (12-15 in 12-22) and crossing
    page = render_page([text], [clusters])
    parser = _Balance()
    parser.feed(page)
    assert parser.stack == []
    body = render_text(text, clusters)
    assert "<b>" not in page and body.startswith("&lt;b&gt;<span") and "&lt;/b&gt;" in body and "&amp;" in body
    shown = "".join(parser.text)
    assert text in re.sub(r"\[|\]\d+", "", shown)  # the whole text survives, once the brackets are dropped
    assert render_text("plain", []) == "plain"


def test_span_vectors_pool_with_the_shared_extractor_as_the_windowed_copy_did(tiny_tokenizer):
    """The model pools through ``span_repr.SelfAttentiveSpanExtractor`` (it kept its own windowed
    copy until the extractor read windows too): same ``attention.scorer`` weights, so saved models
    load, and the same values as that copy, reproduced here."""
    model = _tiny_model(tiny_tokenizer)
    assert {"attention.scorer.weight", "attention.scorer.bias"} <= set(model.state_dict())
    torch.manual_seed(1)
    tokens = torch.randn(30, 32)
    spans = torch.tensor([[0, 0], [3, 9], [5, 6], [29, 29], [22, 29]])
    # the removed BertForCoreference._attention_pooled
    width = int((spans[:, 1] - spans[:, 0]).max()) + 1
    index = spans[:, :1] + torch.arange(width)  # (N, W)
    inside = index <= spans[:, 1:]
    index = index.clamp(max=tokens.size(0) - 1)
    logits = model.attention.scorer(tokens).squeeze(-1)[index].masked_fill(~inside, float("-inf"))
    pooled = torch.einsum("nw,nwh->nh", torch.softmax(logits.float(), dim=-1), tokens[index])
    with torch.no_grad():
        g = model._span_vectors(tokens, spans)
        endpoints = model.endpoints(tokens.unsqueeze(0), spans.unsqueeze(0))[0]
    assert torch.allclose(g, torch.cat([endpoints, pooled], dim=-1), atol=1e-6)


def test_fine_scores_in_chunks_equal_one_pass(tiny_tokenizer):
    model = _tiny_model(tiny_tokenizer)
    torch.manual_seed(2)
    g, ante, pair = torch.randn(7, model.span_dim), torch.randint(0, 7, (7, 3)), torch.randn(7, 3, 8)  # distance + speaker features
    assert torch.allclose(model._fine_scores(g, ante, pair, rows=2), model._fine_scores(g, ante, pair, rows=100), atol=1e-6)


def test_inference_path_equals_training_path(tiny_tokenizer, monkeypatch):
    """Inference scores spans in chunks and recomputes the kept vectors; training keeps them all."""
    import spanbert.tasks.coref.model as coref_model

    doc = read_conll(ALICE)[0]
    batch = document_tensors(encode_document(tiny_tokenizer, doc, SegmentConfig(64, 8)), tiny_tokenizer.pad_token_id)
    model = _tiny_model(tiny_tokenizer, higher_order=1)
    with_grad = model(**batch)
    monkeypatch.setattr(coref_model, "SPAN_CHUNK", 7)
    with torch.no_grad():
        chunked = model(**batch)
    assert torch.equal(with_grad.top_indices, chunked.top_indices)
    assert torch.allclose(with_grad.scores.detach(), chunked.scores, atol=1e-4)


def test_real_litbank_books_encode_exactly(tiny_tokenizer, shared_data):
    from spanbert.tasks.coref.conll import read_coref_documents

    files = sorted((shared_data / "litbank_coref" / "conll").glob("*.conll.gz"))[:3]
    for doc in read_coref_documents(files):
        enc = _check_encoding(tiny_tokenizer, doc, SegmentConfig(max_segment_length=384, max_span_width=30))
        # with this tiny vocabulary words are long in subwords, so a few wide mentions are out of reach
        assert enc.gold_not_candidates < 0.05 * doc.num_mentions


def test_training_window_equals_encoding_the_window_alone(tiny_tokenizer):
    from spanbert.tasks.coref.features import TrainingCollator, segment_window

    doc = read_conll(ALICE)[0]
    config = SegmentConfig(64, 12)
    enc = encode_document(tiny_tokenizer, doc, config)
    assert len(enc.segments) >= 4
    window = segment_window(enc, 1, 2)
    w0 = int(np.flatnonzero(enc.word_first == len(enc.segments[0]) - 2)[0])
    w1 = w0 + window.num_words
    sentences = [(max(a, w0) - w0, min(b, w1) - w0) for a, b in doc.sentences if a < w1 and b > w0]
    clusters = [[(s - w0, e - w0) for s, e in c if s >= w0 and e < w1] for c in doc.clusters]  # indices kept
    alone = encode_document(tiny_tokenizer, CorefDocument("w", doc.words[w0:w1], clusters, sentences), config)
    assert np.concatenate([s[1:-1] for s in window.segments]).tolist() == np.concatenate([s[1:-1] for s in alone.segments]).tolist()
    for field in ("word_first", "word_last", "candidate_words", "candidate_spans", "span_cluster_ids"):
        assert np.array_equal(getattr(window, field), getattr(alone, field)), field
    collate = TrainingCollator([enc], tiny_tokenizer.pad_token_id, max_segments=2, seed=3)
    batches = [collate([0]) for _ in range(6)]
    assert all(b["input_ids"].shape[0] == 2 for b in batches) and collate.lengths()[0] < enc.num_tokens
    assert len({b["input_ids"][0, 1].item() for b in batches}) > 1  # different windows across steps
    assert all(int(b["spans"].max()) < int(b["content_mask"].sum()) for b in batches)
