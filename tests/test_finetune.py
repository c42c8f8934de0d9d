"""The shared fine-tuning loop's batching."""

from __future__ import annotations

import numpy as np

from spanbert.finetune import length_grouped_batches


def test_batches_are_full_disjoint_length_grouped_and_seeded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=1000)
    batches = length_grouped_batches(lengths, 16, seed=3, epoch=0, group=4)
    flat = np.concatenate(batches)
    assert all(len(b) == 16 for b in batches) and len(batches) == 1000 // 16
    assert len(set(flat.tolist())) == len(flat)  # no item twice
    # inside a group of 4 batches the lengths are sorted, so a batch's spread is far below random
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.5 * (lengths.max() - lengths.min())
    again = length_grouped_batches(lengths, 16, seed=3, epoch=0, group=4)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = length_grouped_batches(lengths, 16, seed=3, epoch=1, group=4)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_left_out_items_change_between_epochs_even_in_one_group():
    """Ten items at batch 8 (a single group): the two left out are not always the two shortest."""
    lengths = np.arange(10) + 1
    left_out = set()
    for epoch in range(20):
        used = set(np.concatenate(length_grouped_batches(lengths, 8, seed=0, epoch=epoch)).tolist())
        assert len(used) == 8
        left_out |= set(range(10)) - used
    assert len(left_out) > 2
