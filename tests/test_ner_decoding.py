"""Tests for spanbert.tasks.ner.decoding: greedy non-overlapping span selection, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.core.errors import ConfigError
from spanbert.tasks.ner.decoding import ScoredSpan, decode_spans, decoded_to_tags, fit_threshold
from spanbert.tasks.ner.settings import DecodeConfig
from spanbert.tasks.ner.tags import Span

ID2LABEL = {0: "O", 1: "PER", 2: "LOC"}


def test_highest_score_first_and_overlaps_skipped():
    spans = np.array([[0, 0], [0, 1], [1, 1], [2, 3], [3, 3]])
    probs = np.array([
        [0.30, 0.70, 0.00],  # [0,0] PER 0.7
        [0.10, 0.90, 0.00],  # [0,1] PER 0.9: taken first
        [0.20, 0.00, 0.80],  # [1,1] LOC 0.8: overlaps [0,1], skipped
        [0.40, 0.00, 0.60],  # [2,3] LOC 0.6: taken
        [0.45, 0.00, 0.55],  # [3,3] overlaps [2,3], skipped
    ])
    assert decode_spans(spans, probs) == [ScoredSpan(0, 1, 1, 0.9), ScoredSpan(2, 3, 2, 0.6)]
    assert decoded_to_tags(5, decode_spans(spans, probs), ID2LABEL) == ["B-PER", "I-PER", "B-LOC", "I-LOC", "O"]
    assert decoded_to_tags(5, decode_spans(spans, probs), ID2LABEL, "IOBES") == ["B-PER", "E-PER", "B-LOC", "E-LOC", "O"]


def test_argmax_versus_threshold():
    spans = np.array([[0, 0], [1, 1], [2, 2]])
    probs = np.array([
        [0.50, 0.30, 0.20],  # O wins: no entity by argmax; best type PER 0.3
        [0.35, 0.25, 0.40],  # LOC 0.40 beats O 0.35
        [0.90, 0.05, 0.05],
    ])
    assert [(d.start, d.label) for d in decode_spans(spans, probs)] == [(1, 2)]
    # a threshold keeps a span whose best type reaches it, whatever O's probability
    assert [(d.start, d.label) for d in decode_spans(spans, probs, threshold=0.3)] == [(0, 1), (1, 2)]
    assert decode_spans(spans, probs, threshold=0.5) == []


def test_ties_do_not_depend_on_input_order():
    spans = np.array([[1, 2], [0, 1], [2, 2]])
    probs = np.array([[0.2, 0.8, 0.0], [0.2, 0.8, 0.0], [0.2, 0.0, 0.8]])
    # equal scores: earlier start first -> [0,1]; then [1,2] overlaps; [2,2] is free
    expected = [ScoredSpan(0, 1, 1, 0.8), ScoredSpan(2, 2, 2, 0.8)]
    assert decode_spans(spans, probs) == expected
    assert decode_spans(spans[::-1], probs[::-1]) == expected


def test_empty_and_invalid_inputs():
    assert decode_spans(np.zeros((0, 2), dtype=int), np.zeros((0, 3))) == []
    with pytest.raises(ConfigError, match="threshold"):
        DecodeConfig(threshold=1.5)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(0, 10_000))
def test_decoded_spans_never_overlap_and_beat_o(n_words, seed):
    rng = np.random.default_rng(seed)
    spans = np.array([(s, e) for s in range(n_words) for e in range(s, min(n_words, s + 3))])
    probs = rng.dirichlet(np.ones(3), size=len(spans))
    decoded = decode_spans(spans, probs)
    covered = [w for d in decoded for w in range(d.start, d.end + 1)]
    assert len(covered) == len(set(covered))
    row = {tuple(s): i for i, s in enumerate(spans.tolist())}
    assert all(probs[row[(d.start, d.end)], d.label] > probs[row[(d.start, d.end)], 0] for d in decoded)


def test_fit_threshold_prefers_the_best_dev_f1():
    # one sentence, gold PER at [0,0]; the model gives it only 0.4 (O 0.6): argmax misses it,
    # a threshold <= 0.4 finds it; the invented LOC at [1,1] (0.2) appears only below 0.2
    candidates = [(np.array([[0, 0], [1, 1]]), np.array([[0.6, 0.4, 0.0], [0.8, 0.0, 0.2]]))]
    gold = [[Span(0, 0, "PER")]]
    threshold, f1 = fit_threshold(candidates, gold, ID2LABEL)
    assert f1 == 1.0 and 0.2 < threshold <= 0.4
    assert threshold == 0.25  # the first grid value (0.05 steps) that keeps PER and drops LOC
