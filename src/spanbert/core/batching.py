"""Inference batches that waste little on padding (a pure function).

Items are sorted longest first and cut into batches of at most ``batch_size``; a batch also
ends where taking the next item would make its padded size (items x the longest) exceed
``1 + max_padding`` times the tokens it really holds. Short texts that arrive together (a
server's micro-batch, a list of sentences) then run in a few tight batches instead of one
padded to its longest member: on the 2-core CPU, 15 sentences of 10-110 tokens cost 2.5x their
real tokens when padded as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def inference_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, max_padding: float = 0.25) -> list[np.ndarray]:
    """Index arrays of the batches (longest items first; ties keep their order)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start, real = 0, 0
    for pos, i in enumerate(order):
        n = pos - start  # items already in the current batch
        if n and (n == batch_size or (n + 1) * int(lengths[order[start]]) > (1 + max_padding) * (real + int(lengths[i]))):
            batches.append(order[start:pos])
            start, real = pos, 0
        real += int(lengths[i])
    if len(order):
        batches.append(order[start:])
    return batches


__all__ = ["inference_batches"]
