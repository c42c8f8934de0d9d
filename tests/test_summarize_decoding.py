"""Choosing summary sentences under a length budget, and lead-k: hand cases."""

from __future__ import annotations

import pytest

from spanbert.core.errors import ConfigError
from spanbert.tasks.summarize.decoding import Budget, join_summary, lead_sentences, select_sentences

SENTS = ["one two three.", "four five.", "six seven eight nine ten.", "eleven.", "twelve thirteen."]
#        3 words           2 words       5 words                     1 word     2 words


def test_top_sentences_in_document_order():
    scores = [0.1, 0.9, 0.5, 0.7, -1.0]
    assert select_sentences(scores, SENTS, Budget(max_sentences=1)) == [1]
    assert select_sentences(scores, SENTS, Budget(max_sentences=3)) == [1, 2, 3]  # picked 1, 3, 2; output in order
    assert select_sentences(scores, SENTS, Budget(max_sentences=10)) == [0, 1, 2, 3, 4]


def test_ties_prefer_the_earlier_sentence():
    assert select_sentences([0.5, 0.5, 0.5], SENTS[:3], Budget(max_sentences=2)) == [0, 1]


def test_word_budget_skips_sentences_that_do_not_fit():
    scores = [0.1, 0.9, 0.8, 0.7, 0.6]
    # 1 (2 words) fits; 2 (5 words) would make 7 > 5: skipped; 3 (1 word) fits -> 3 words; 4 (2) fits -> 5.
    assert select_sentences(scores, SENTS, Budget(max_sentences=None, max_words=5)) == [1, 3, 4]
    assert select_sentences(scores, SENTS, Budget(max_sentences=2, max_words=5)) == [1, 3]
    # Under 1 word only sentence 3 fits; with no sentence that fits, the best one alone.
    assert select_sentences([0.0, 0.0, 1.0, 0.5, 0.0], SENTS, Budget(max_sentences=None, max_words=1)) == [3]
    assert select_sentences([0.0, 0.0, 1.0], SENTS[:3], Budget(max_sentences=None, max_words=1)) == [2]


def test_trigram_blocking():
    sents = ["the cat sat on the mat", "the cat sat on a chair", "dogs bark"]
    assert select_sentences([0.9, 0.8, 0.1], sents, Budget(max_sentences=2)) == [0, 1]
    assert select_sentences([0.9, 0.8, 0.1], sents, Budget(max_sentences=2, block_trigrams=True)) == [0, 2]


def test_lead_k():
    assert lead_sentences(SENTS, Budget(max_sentences=1)) == [0]
    assert lead_sentences(SENTS, Budget(max_sentences=3)) == [0, 1, 2]
    assert lead_sentences(SENTS, Budget(max_sentences=None, max_words=6)) == [0, 1, 3]  # 3 + 2 + 1 words
    assert join_summary(SENTS, [0, 1]) == "one two three. four five."


def test_bad_budgets_and_shapes():
    with pytest.raises(ConfigError, match="max_sentences"):
        Budget(max_sentences=0)
    with pytest.raises(ConfigError, match="max_sentences and/or max_words"):
        Budget(max_sentences=None)
    with pytest.raises(ConfigError, match="2 scores for 3 sentences"):
        select_sentences([0.1, 0.2], SENTS[:3])
