"""Inference batches: every item once, longest first, at most batch_size, padding bounded."""

from __future__ import annotations

import numpy as np
import pytest

from spanbert.core.batching import inference_batches


def test_batches_cover_every_item_once_with_bounded_padding():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(1, 400, int(rng.integers(1, 80)))
        size, slack = int(rng.integers(1, 40)), float(rng.choice([0.0, 0.25, 1.0]))
        batches = inference_batches(lengths, size, slack)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(len(lengths)))
        assert np.all(np.diff(lengths[flat]) <= 0)  # longest first, across and inside batches
        for b in batches:
            assert 1 <= len(b) <= size
            padded, real = len(b) * lengths[b].max(), lengths[b].sum()
            assert len(b) == 1 or padded <= (1 + slack) * real
        # a batch ends only when it is full or the next item would break the padding bound
        for b, nxt in zip(batches, batches[1:]):
            grown = np.append(b, nxt[0])
            assert len(b) == size or len(grown) * lengths[grown].max() > (1 + slack) * lengths[grown].sum()


def test_equal_lengths_fill_whole_batches_and_mixed_lengths_split():
    assert [len(b) for b in inference_batches([128] * 10, 4)] == [4, 4, 2]
    # 110 tokens padded with nine 20-token items would be 5x the real tokens: they split
    assert [sorted(b.tolist()) for b in inference_batches([20] * 9 + [110], 32)] == [[9], list(range(9))]
    with pytest.raises(ValueError, match="batch_size"):
        inference_batches([1], 0)
