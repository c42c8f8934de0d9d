"""Tests for spanbert.tasks.ner.features: word-boundary spans land on the right subwords (checked
against the tokenizer's own word_ids), long sentences become windows of whole words, and
negative sampling is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from spanbert.tasks.ner.data import read_conll
from spanbert.tasks.ner.features import TrainingCollator, encode_sentences, window_spans
from spanbert.tasks.ner.settings import WindowConfig

from .conftest import DATA

SAMPLE = DATA / "ner" / "wnut17_train_sample.conll"


def check_against_word_ids(tokenizer, sentences, config=WindowConfig()):
    """Every window's word starts/ends and every candidate span agree with ``word_ids``."""
    corpus = encode_sentences(tokenizer, sentences, config)
    for w in corpus.windows:
        words = list(sentences[w.sentence][w.first_word : w.first_word + w.num_words])
        enc = tokenizer(words, is_split_into_words=True)
        if len(enc["input_ids"]) > config.max_seq_length:
            continue  # a single over-long word (truncated); covered elsewhere
        assert w.input_ids.tolist() == enc["input_ids"]  # [CLS] words [SEP], as the tokenizer builds it
        ids = enc.word_ids()
        for k in range(w.num_words):
            positions = [i for i, x in enumerate(ids) if x == k]
            assert (w.word_starts[k], w.word_ends[k]) == (positions[0], positions[-1])
        word_spans, token_spans = window_spans(w, 8)
        assert len(word_spans) == len(token_spans)
        for (a, b), (s, e) in zip(word_spans, token_spans):
            assert ids[s] == a and (e + 1 == len(ids) or ids[e + 1] != b) and ids[e] == b and b - a < 8
    return corpus


def test_spans_map_to_subwords_with_the_tiny_tokenizer(tiny_tokenizer):
    sentences = [s.tokens for s in read_conll(SAMPLE).sentences]
    corpus = check_against_word_ids(tiny_tokenizer, sentences)
    assert len(corpus) == len(sentences) and corpus.long_sentences == 0


def test_spans_map_to_subwords_with_real_minilm(minilm_dir):
    from spanbert.core.checkpoints import load_tokenizer

    tok = load_tokenizer(str(minilm_dir))
    sentences = [s.tokens for s in read_conll(SAMPLE).sentences]
    check_against_word_ids(tok, sentences)
    # "@paulwalk" is several subwords of one word; the span [0, 0] covers them all
    w = encode_sentences(tok, sentences[:1]).windows[0]
    pieces = tok.convert_ids_to_tokens(w.input_ids[w.word_starts[0] : w.word_ends[0] + 1].tolist())
    assert "".join(p.removeprefix("##") for p in pieces) == "@paulwalk"


def test_long_sentences_become_windows_of_whole_words(tiny_tokenizer):
    sentences = [s.tokens for s in read_conll(SAMPLE).sentences]
    config = WindowConfig(max_seq_length=24)
    gold = [[(0, 1, 1), (10, 12, 2), (20, 20, 1)] if len(s) > 21 else [] for s in sentences]
    corpus = encode_sentences(tiny_tokenizer, sentences, config, gold)
    assert corpus.long_sentences > 0
    check_against_word_ids(tiny_tokenizer, sentences, config)
    for s, words in enumerate(sentences):
        windows = [w for w in corpus.windows if w.sentence == s]
        # consecutive, non-overlapping, covering every word once
        assert [w.first_word for w in windows] == list(np.cumsum([0] + [w.num_words for w in windows[:-1]]))
        assert sum(w.num_words for w in windows) == len(words)
        assert all(len(w.input_ids) <= 24 for w in windows)
        kept = [(a + w.first_word, b + w.first_word, lab) for w in windows for a, b, lab in w.gold]
        assert set(kept) <= set(gold[s])
    assert corpus.gold_cut_by_windows == sum(len(g) for g in gold) - sum(len(w.gold) for w in corpus.windows)


def test_words_without_subwords_become_unk(tiny_tokenizer):
    # U+0301 (a lone combining accent) and U+200B (zero-width space) normalise to nothing
    corpus = encode_sentences(tiny_tokenizer, [["I", "\u0301", "saw", "\u200b", "it"]])
    w = corpus.windows[0]
    assert w.num_words == 5 and w.input_ids[w.word_starts[1]] == tiny_tokenizer.unk_token_id
    assert w.input_ids[w.word_starts[3]] == tiny_tokenizer.unk_token_id
    assert (w.word_ends >= w.word_starts).all() and (w.word_starts[1:] == w.word_ends[:-1] + 1).all()


def test_a_word_longer_than_a_window_is_truncated(tiny_tokenizer):
    long_word = "qzx" * 6  # 18 subwords with the tiny vocabulary
    corpus = encode_sentences(tiny_tokenizer, [["a", long_word, "b"]], WindowConfig(max_seq_length=8))
    assert [w.num_words for w in corpus.windows] == [1, 1, 1]
    assert all(len(w.input_ids) <= 8 for w in corpus.windows)
    assert corpus.windows[1].word_ends[0] == 6  # [CLS] + 6 subwords + [SEP]


def test_negative_sampling_is_seeded_and_sized(tiny_tokenizer):
    sentences = read_conll(SAMPLE).sentences
    gold = [[(s.start, s.end, 1) for s in sent.spans] for sent in sentences]
    corpus = encode_sentences(tiny_tokenizer, [s.tokens for s in sentences], WindowConfig(), gold)
    first = TrainingCollator(corpus, 8, 0.5, 0, seed=3)
    again = TrainingCollator(corpus, 8, 0.5, 0, seed=3)
    a, b = first([0, 1, 2]), again([0, 1, 2])
    assert all(torch_equal(a[k], b[k]) for k in a)
    second_draw = first([0, 1, 2])
    assert not torch_equal(a["spans"], second_draw["spans"])  # fresh negatives each epoch
    # window 0: 27 words, 2 gold spans -> ceil(0.5 * 27) = 14 negatives + 2 gold
    labels = a["span_labels"][0]
    assert int((labels == 1).sum()) == 2 and int((labels == 0).sum()) == 14
    assert int((labels == -100).sum()) == labels.numel() - 16
    # all spans (ratio 0): every candidate of up to 8 words, gold labelled
    full = TrainingCollator(corpus, 8, 0.0, 0)([0])
    assert int(full["span_mask"].sum()) == len(window_spans(corpus.windows[0], 8)[0]) == 27 * 8 - 28


def torch_equal(x, y) -> bool:
    return x.shape == y.shape and bool((x == y).all())


@pytest.mark.parametrize("max_seq_length", [2, 0])
def test_window_config_is_checked(max_seq_length):
    from spanbert.core.errors import ConfigError

    with pytest.raises(ConfigError):
        WindowConfig(max_seq_length)
