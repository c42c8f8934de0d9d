"""Span masking (SpanBERT, Joshi et al. 2020) as a pure, seeded numpy function.

:func:`mask_sequence` masks one token sequence the way the authors' pre-training code did:

1. budget = ceil(mask_ratio x number of maskable tokens) subword tokens (maskable = not a
   special token, not padding);
2. until the budget is met: draw a span length l (in words) from a geometric distribution
   truncated to [min_span_words, max_span_words] and renormalised (mean 3.797 for p=0.2 on
   1..10); draw an anchor uniformly among maskable tokens, rejecting it if already chosen;
   snap it back to the start of its word and choose l whole words from there, token by
   token, stopping at the end of the maskable run and the moment the budget is met (so the
   last span may be cut short, and a span that runs into chosen tokens merges with them);
3. merge the chosen positions into maximal runs (the spans) and decide 80/10/10 once per
   span: all [MASK] / all random tokens / all kept;
4. span boundary objective (SBO) targets: for a span s..e whose neighbours s-1 and e+1 are
   both real tokens, one target per token of its first ``max_pair_targets`` tokens.

Two ablation schemes of the paper are here too: ``whole_word`` (random whole words) and
``token`` (BERT's subword masking). The function is pure: all randomness comes from the
``rng`` argument, so the same generator state gives the same output.

:func:`mask_batch` does the same for a padded (B, T) batch with one generator per row; only
the random choices loop over rows (and spans), the rest is vectorised over the whole batch.
The collator uses it; ``mask_sequence`` is a batch of one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from spanbert.core.errors import ConfigError
from spanbert.core.options import option

__all__ = [
    "IGNORE_INDEX",
    "MaskingConfig",
    "MaskedBatch",
    "MaskedSequence",
    "mask_batch",
    "mask_budget",
    "mask_sequence",
    "random_token_cdf",
    "span_length_distribution",
]

IGNORE_INDEX = -100  # label of positions that are not predicted (PyTorch's cross-entropy default)

ACTION_MASK, ACTION_RANDOM, ACTION_KEEP = 0, 1, 2


@dataclass(frozen=True)
class MaskingConfig:
    """How tokens are chosen and replaced. Defaults are SpanBERT's published settings."""

    scheme: Literal["span", "whole_word", "token"] = option(
        "span", option="masking", help="Masking scheme: span (SpanBERT), whole_word or token (BERT).")
    # fraction of maskable tokens chosen (rounded up)
    mask_ratio: float = option(0.15, help="Share of tokens masked.")
    geometric_p: float = option(0.2, help=(
        "Span masking: span lengths in words are drawn from Geometric(p) truncated to 1..--max-span-words (the "
        "paper: 0.2, mean 3.8 words; larger p, shorter spans)."))
    min_span_words: int = 1
    max_span_words: int = option(10, min=1, help="Span masking: the longest span in words (the paper: 10).")
    mask_prob: float = 0.8  # a chosen span becomes all [MASK]
    random_prob: float = 0.1  # ... all random tokens; the rest are kept unchanged
    max_pair_targets: int = 15  # SBO targets per span (its first tokens)

    def __post_init__(self) -> None:
        def fail(field: str, msg: str) -> None:
            raise ConfigError(f"masking.{field}: {msg} (got {getattr(self, field)!r})")

        def is_int(x: object) -> bool:
            return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

        def is_num(x: object) -> bool:
            return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)

        if self.scheme not in ("span", "whole_word", "token"):
            fail("scheme", "must be one of 'span', 'whole_word', 'token'")
        for name in ("mask_ratio", "geometric_p", "mask_prob", "random_prob"):
            if not is_num(getattr(self, name)) or not math.isfinite(getattr(self, name)):
                fail(name, "must be a number")
        if not 0.0 < self.mask_ratio <= 1.0:
            fail("mask_ratio", "must be in (0, 1]")
        if not 0.0 < self.geometric_p <= 1.0:
            fail("geometric_p", "must be in (0, 1]")
        for name in ("min_span_words", "max_span_words", "max_pair_targets"):
            if not is_int(getattr(self, name)):
                fail(name, "must be an integer")
        if self.min_span_words < 1:
            fail("min_span_words", "must be >= 1")
        if self.max_span_words < self.min_span_words:
            fail("max_span_words", f"must be >= min_span_words ({self.min_span_words})")
        if self.max_pair_targets < 0:
            fail("max_pair_targets", "must be >= 0 (0 disables SBO targets)")
        if not 0.0 <= self.mask_prob <= 1.0:
            fail("mask_prob", "must be in [0, 1]")
        if not 0.0 <= self.random_prob <= 1.0:
            fail("random_prob", "must be in [0, 1]")
        if self.mask_prob + self.random_prob > 1.0 + 1e-12:
            fail("random_prob", f"mask_prob + random_prob must be <= 1 (mask_prob={self.mask_prob})")


@dataclass
class MaskedSequence:
    """The result of masking one sequence of T tokens.

    ``spans`` are the units the 80/10/10 decision was made for: for the ``span`` scheme the
    merged runs of chosen tokens, for ``whole_word`` each chosen word, for ``token`` each
    chosen token (adjacent units of the last two schemes are not merged). SBO targets are
    always built over the merged runs.
    """

    input_ids: np.ndarray  # (T,) int64, after replacement
    labels: np.ndarray  # (T,) int64: original id at chosen positions, IGNORE_INDEX elsewhere
    spans: np.ndarray  # (S, 2) int64, inclusive [start, end] token positions, sorted
    span_action: np.ndarray  # (S,) int8: 0 = [MASK], 1 = random, 2 = kept
    drawn_span_words: np.ndarray  # (K,) int64: span length (words) drawn per accepted anchor
    sbo: np.ndarray  # (P, 3) int64: (left_boundary, right_boundary, offset_in_span)
    sbo_labels: np.ndarray  # (P,) int64: original id at left_boundary + 1 + offset


def span_length_distribution(p: float, lo: int, hi: int) -> np.ndarray:
    """P(l) for l = lo..hi: weights p(1-p)^(l-1), renormalised over the truncated range.

    The truncated tail mass is spread over all lengths by the renormalisation (mean 3.797
    for p=0.2 on 1..10); piling it onto ``hi`` instead would give the wrong mean of 4.46.

    Returns:
        (hi - lo + 1,) float64 probabilities summing to 1.
    """
    if not 0.0 < p <= 1.0:
        raise ConfigError(f"masking.geometric_p: must be in (0, 1] (got {p!r})")
    if not 1 <= lo <= hi:
        raise ConfigError(f"masking.max_span_words: need 1 <= min_span_words <= max_span_words (got {lo}, {hi})")
    lengths = np.arange(lo, hi + 1)
    # (1-p)^(l-lo) is p(1-p)^(l-1) up to a constant factor that renormalising removes; it
    # stays positive at l=lo when p=1 (all mass on lo), where (1-p)^(l-1) would be all zero.
    weights = (1.0 - p) ** (lengths - lo)
    return weights / weights.sum()


def mask_budget(n_maskable: int, mask_ratio: float) -> int:
    """ceil(mask_ratio x n_maskable), immune to float noise (0.15 x 100 is 15, not 16)."""
    return int(math.ceil(round(mask_ratio * n_maskable, 9)))


def random_token_cdf(vocab_size: int, special_ids: Iterable[int], unigram: np.ndarray | None = None) -> np.ndarray:
    """Cumulative distribution over the vocabulary for random replacement tokens.

    Args:
        vocab_size: number of token ids V.
        special_ids: ids that are never drawn.
        unigram: optional (V',) corpus counts per id, V' <= V (missing ids count 0). When
            given, replacements follow the corpus unigram distribution as in the authors'
            code; otherwise they are uniform over the non-special ids.

    Returns:
        (V,) float64 non-decreasing cdf ending at exactly 1.0; draw an id with
        ``np.searchsorted(cdf, rng.random(n), side="right")``.
    """
    if vocab_size < 1:
        raise ConfigError(f"masking.vocab_size: must be >= 1 (got {vocab_size})")
    if unigram is None:
        weights = np.ones(vocab_size, dtype=np.float64)
    else:
        counts = np.asarray(unigram, dtype=np.float64).ravel()
        if counts.shape[0] > vocab_size:
            raise ConfigError(f"masking.unigram: has {counts.shape[0]} entries for a vocabulary of {vocab_size}")
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ConfigError("masking.unigram: counts must be finite and >= 0")
        weights = np.zeros(vocab_size, dtype=np.float64)
        weights[: counts.shape[0]] = counts
    special = np.asarray([i for i in special_ids if 0 <= i < vocab_size], dtype=np.int64)
    weights[special] = 0.0
    total = weights.sum()
    if total <= 0:
        raise ConfigError("masking.unigram: no non-special token has a positive count")
    cdf = np.cumsum(weights) / total
    # Ids after the last drawable one get cdf 1.0 exactly, so a draw u < 1 never lands on them
    # through rounding (searchsorted with side="right" skips zero-probability ids).
    cdf[int(np.flatnonzero(weights)[-1]) :] = 1.0
    return cdf


@dataclass
class MaskedBatch:
    """The result of masking B sequences of T tokens (see :func:`mask_batch`)."""

    input_ids: np.ndarray  # (B, T) int64, after replacement
    labels: np.ndarray  # (B, T) int64: original id at chosen positions, IGNORE_INDEX elsewhere
    spans: np.ndarray  # (S, 3) int64: (batch_index, start, end) inclusive, sorted
    span_action: np.ndarray  # (S,) int8: 0 = [MASK], 1 = random, 2 = kept
    drawn_span_words: np.ndarray  # (K, 2) int64: (batch_index, span length in words drawn)
    sbo: np.ndarray  # (P, 4) int64: (batch_index, left_boundary, right_boundary, offset_in_span)
    sbo_labels: np.ndarray  # (P,) int64: original id at left_boundary + 1 + offset


class _Words:
    """Words of a (B, T) batch, restricted to maskable tokens, on flattened positions.

    A word is a maximal stretch of maskable tokens with a word start only at its first
    token; a maskable token that follows a non-maskable one (or begins a row) always starts
    a word, so words never cross special tokens, padding or rows. A "run" is a maximal
    stretch of maskable tokens: spans may grow over several words but not past its end.
    """

    def __init__(self, word_starts: np.ndarray, maskable: np.ndarray) -> None:
        n_rows, n_cols = maskable.shape
        prev_maskable = np.zeros_like(maskable)
        prev_maskable[:, 1:] = maskable[:, :-1]
        starts = (maskable & (word_starts | ~prev_maskable)).ravel()  # (B*T,)
        self.start = starts.nonzero()[0]  # (W,) first token of each word
        boundaries = np.append((starts | ~maskable.ravel()).nonzero()[0], n_rows * n_cols)
        self.end = boundaries[boundaries.searchsorted(self.start, side="right")]  # (W,) one past its last token
        self.word_of = starts.cumsum() - 1  # (B*T,) word holding each token (garbage where not maskable)
        n_words = self.start.shape[0]
        continues = np.zeros(n_words, dtype=bool)  # the next word is in the same run
        continues[:-1] = (self.end[:-1] == self.start[1:]) & (self.start[1:] % n_cols != 0)
        run_ends = (~continues).nonzero()[0]  # (R,)
        self.run_last = run_ends[run_ends.searchsorted(np.arange(n_words))]  # (W,) last word of each word's run
        # Python lists: scalar lookups in the per-span loop are several times faster on lists.
        self.start_list = self.start.tolist()
        self.end_list = self.end.tolist()
        self.word_of_list = self.word_of.tolist()
        self.run_last_list = self.run_last.tolist()


def _choose_spans(
    chosen: bytearray,
    maskable_idx: np.ndarray,
    words: _Words,
    budget: int,
    length_cdf: np.ndarray,
    rng: np.random.Generator,
    config: MaskingConfig,
) -> list[int]:
    """SpanBERT's span selection for one row; marks ``chosen`` (flat, 1 byte a token).

    Returns the span lengths (words) drawn for accepted anchors.
    """
    ws, we, wo, rl = words.start_list, words.end_list, words.word_of_list, words.run_last_list
    ones = b"\x01" * (int(maskable_idx[-1]) - int(maskable_idx[0]) + 1)
    drawn: list[int] = []
    remaining = budget
    n_maskable = maskable_idx.shape[0]
    # Draws come in chunks (one rng call each for lengths and anchors); a chunk of about
    # half the budget covers a typical sequence, rejections just draw another chunk.
    chunk = max(8, budget // 2)
    while remaining > 0:
        lengths = (config.min_span_words + length_cdf.searchsorted(rng.random(chunk), side="right")).tolist()
        anchors = maskable_idx[rng.integers(0, n_maskable, chunk)].tolist()
        for n_words, anchor in zip(lengths, anchors):
            if chosen[anchor]:
                continue  # the authors reject an anchor that is already masked
            drawn.append(n_words)
            word = wo[anchor]
            start = ws[word]  # snap back to the start of the anchor's word
            end = we[min(word + n_words - 1, rl[word])]  # l words, not past the maskable run
            new = (end - start) - chosen.count(1, start, end)
            if new >= remaining:
                # The budget is met inside this span: keep tokens up to the one that meets it
                # (tokens chosen before do not count).
                end = start
                while remaining:
                    remaining -= not chosen[end]
                    end += 1
                chosen[start:end] = ones[: end - start]
                break
            chosen[start:end] = ones[: end - start]
            remaining -= new
    return drawn


def _choose_whole_words(words: _Words, first: int, stop: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Random whole words among words[first:stop], BERT-style: in random order, a word that
    would overflow the budget is skipped. Returns (U, 2) inclusive flat positions, sorted."""
    order = first + rng.permutation(stop - first)  # (W_row,)
    lengths = (words.end - words.start)[order]  # (W_row,)
    total = lengths.cumsum()
    n_fit = int(total.searchsorted(budget, side="right"))  # words taken before the first overflow
    picked = order[:n_fit].tolist()
    remaining = budget - (int(total[n_fit - 1]) if n_fit else 0)
    if remaining > 0:
        for w, n in zip(order[n_fit:].tolist(), lengths[n_fit:].tolist()):
            if n <= remaining:
                picked.append(w)
                remaining -= n
                if remaining == 0:
                    break
    picked_arr = np.sort(np.asarray(picked, dtype=np.int64))
    return np.stack([words.start[picked_arr], words.end[picked_arr] - 1], axis=1)


def _runs(chosen: np.ndarray) -> np.ndarray:
    """Maximal runs of True in each row of a (B, T) bool array: (R, 3) (row, start, end)."""
    n_rows, n_cols = chosen.shape
    padded = np.zeros((n_rows, n_cols + 2), dtype=np.int8)  # a False column each side: runs stop at rows
    padded[:, 1:-1] = chosen
    edges = np.diff(padded.ravel())  # (B*(T+2) - 1,)
    starts = (edges == 1).nonzero()[0]  # flat index in padded of the run's first token, minus 1
    ends = (edges == -1).nonzero()[0]
    rows = starts // (n_cols + 2)
    out = np.empty((starts.shape[0], 3), dtype=np.int64)
    out[:, 0] = rows
    out[:, 1] = starts - rows * (n_cols + 2)
    out[:, 2] = ends - rows * (n_cols + 2) - 1
    return out


def _as_arrays(input_ids, word_starts, maskable, ndim: int, shape: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three inputs of the maskers as int64 / bool / bool arrays of one ``ndim``-D shape."""
    ids = np.asarray(input_ids, dtype=np.int64)
    starts, ok = np.asarray(word_starts, dtype=bool), np.asarray(maskable, dtype=bool)
    if ids.ndim != ndim or starts.shape != ids.shape or ok.shape != ids.shape:
        raise ValueError(f"input_ids, word_starts and maskable must be {shape}, got {ids.shape}, {starts.shape}, {ok.shape}")
    return ids, starts, ok


def mask_batch(
    input_ids: np.ndarray,
    word_starts: np.ndarray,
    maskable: np.ndarray,
    *,
    rngs: Sequence[np.random.Generator],
    config: MaskingConfig,
    mask_token_id: int,
    random_token_cdf: np.ndarray,
) -> MaskedBatch:
    """Mask each row of a padded batch as :func:`mask_sequence` would.

    Row b draws only from ``rngs[b]``, in the same order as :func:`mask_sequence` (tokens,
    then unit actions, then random replacements), so with distinct generators every row
    equals ``mask_sequence`` of that row with that generator. One generator may also serve
    several rows: the result is then still fixed by its state, but rows differ from
    sequential ``mask_sequence`` calls. Only the random choices loop over rows; the rest is
    vectorised over the batch.

    Args:
        input_ids, word_starts, maskable: (B, T) arrays as in :func:`mask_sequence`.
        rngs: B generators.
        config, mask_token_id, random_token_cdf: as in :func:`mask_sequence`.

    Returns:
        a :class:`MaskedBatch`.
    """
    ids, starts_in, maskable = _as_arrays(input_ids, word_starts, maskable, 2, "(B, T) of one shape")
    n_rows, n_cols = ids.shape
    if len(rngs) != n_rows:
        raise ValueError(f"need one generator per row: got {len(rngs)} for {n_rows} rows")

    flat_maskable_idx = maskable.ravel().nonzero()[0]  # (M,) flat positions
    row_bounds = flat_maskable_idx.searchsorted(np.arange(n_rows + 1) * n_cols)  # (B+1,)
    words = _Words(starts_in, maskable) if config.scheme != "token" else None
    if words is not None:
        word_row_bounds = words.start.searchsorted(np.arange(n_rows + 1) * n_cols).tolist()  # (B+1,)
    length_cdf = np.cumsum(span_length_distribution(config.geometric_p, config.min_span_words, config.max_span_words))
    length_cdf[-1] = 1.0
    chosen = bytearray(n_rows * n_cols)  # 1 byte a token, flat (B*T,)
    chosen_view = np.frombuffer(chosen, dtype=bool).reshape(n_rows, n_cols)  # (B, T), shares memory

    # 1. Choose tokens, row by row (each row draws from its own generator).
    unit_rows: list[np.ndarray] = []  # whole_word / token: per row (U_b, 3) (row, start, end)
    drawn_rows: list[np.ndarray] = []
    drawn_lengths: list[int] = []
    for b, rng in enumerate(rngs):
        idx = flat_maskable_idx[row_bounds[b] : row_bounds[b + 1]]  # (M_b,)
        budget = mask_budget(idx.shape[0], config.mask_ratio)
        if budget == 0:
            continue
        if config.scheme == "span":
            lengths = _choose_spans(chosen, idx, words, budget, length_cdf, rng, config)
            drawn_rows.append(np.full(len(lengths), b))
            drawn_lengths.extend(lengths)
            continue
        if config.scheme == "token":
            picked = np.sort(rng.choice(idx, size=budget, replace=False))
            flat_units = np.stack([picked, picked], axis=1)
        else:
            flat_units = _choose_whole_words(words, word_row_bounds[b], word_row_bounds[b + 1], budget, rng)
            drawn_rows.append(np.full(flat_units.shape[0], b))
            drawn_lengths.extend([1] * flat_units.shape[0])
        row_units = np.empty((flat_units.shape[0], 3), dtype=np.int64)
        row_units[:, 0] = b
        row_units[:, 1:] = flat_units - b * n_cols
        chosen_view[b, row_units[:, 1]] = True
        for s, e in row_units[:, 1:][row_units[:, 2] > row_units[:, 1]].tolist():
            chosen_view[b, s : e + 1] = True  # multi-token words
        unit_rows.append(row_units)

    # 2. Units: merged runs for the span scheme, else the chosen words / tokens.
    runs = _runs(chosen_view)  # (R, 3), rows in order
    if config.scheme == "span":
        all_units = runs
    else:
        all_units = np.concatenate(unit_rows) if unit_rows else np.zeros((0, 3), dtype=np.int64)  # (S, 3)
    unit_len = all_units[:, 2] - all_units[:, 1] + 1  # (S,)
    units_per_row = np.bincount(all_units[:, 0], minlength=n_rows).tolist()  # (B,)

    # 3. 80/10/10 once per unit: u < mask_prob -> mask, < mask_prob + random_prob -> random, else keep.
    u = np.concatenate([rngs[b].random(units_per_row[b]) for b in range(n_rows)])  # (S,)
    all_actions = (u >= config.mask_prob).astype(np.int8) + (u >= config.mask_prob + config.random_prob)
    all_actions = all_actions.astype(np.int8)  # (S,)
    random_per_row = (
        np.bincount(all_units[:, 0], weights=unit_len * (all_actions == ACTION_RANDOM), minlength=n_rows)
        .astype(np.int64)
        .tolist()
    )  # (B,) tokens to replace by random ones
    random_ids = [
        random_token_cdf.searchsorted(rngs[b].random(random_per_row[b]), side="right")
        for b in range(n_rows)
        if random_per_row[b]
    ]

    unit_flat_start = all_units[:, 0] * n_cols + all_units[:, 1]  # (S,)
    # Flat positions of all chosen tokens, grouped by unit in order: (N,)
    first_of_unit = unit_len.cumsum() - unit_len
    positions = np.repeat(unit_flat_start - first_of_unit, unit_len) + np.arange(int(unit_len.sum()))
    token_action = np.repeat(all_actions, unit_len)  # (N,)
    drawn = (
        np.stack([np.concatenate(drawn_rows), np.asarray(drawn_lengths, dtype=np.int64)], axis=1)
        if drawn_rows
        else np.zeros((0, 2), dtype=np.int64)
    )  # (K, 2)

    flat_ids = ids.ravel()
    labels = np.full(n_rows * n_cols, IGNORE_INDEX, dtype=np.int64)  # (B*T,)
    labels[positions] = flat_ids[positions]
    out = flat_ids.copy()
    out[positions[token_action == ACTION_MASK]] = mask_token_id
    if random_ids:
        out[positions[token_action == ACTION_RANDOM]] = np.concatenate(random_ids)
    labels = labels.reshape(n_rows, n_cols)
    out = out.reshape(n_rows, n_cols)

    sbo, sbo_labels = _sbo_targets(ids, runs, maskable, config.max_pair_targets)
    return MaskedBatch(
        input_ids=out,
        labels=labels,
        spans=all_units,
        span_action=all_actions,
        drawn_span_words=drawn,
        sbo=sbo,
        sbo_labels=sbo_labels,
    )


def _sbo_targets(
    ids: np.ndarray, runs: np.ndarray, maskable: np.ndarray, max_targets: int
) -> tuple[np.ndarray, np.ndarray]:
    """SBO targets over the merged runs (R, 3) (row, start, end) of chosen tokens.

    A run s..e gets targets only if s-1 and e+1 are both maskable (real tokens): runs
    touching [CLS], [SEP], padding or the row's edge get none. Its first ``max_targets``
    tokens each get one target (row, s-1, e+1, i-s) predicting the original id.

    Returns:
        sbo (P, 4) int64 and sbo_labels (P,) int64.
    """
    n_cols = ids.shape[1]
    row, left, right = runs[:, 0], runs[:, 1] - 1, runs[:, 2] + 1
    ok = (left >= 0) & (right < n_cols)
    ok[ok] &= maskable[row[ok], left[ok]] & maskable[row[ok], right[ok]]
    row, left, right = row[ok], left[ok], right[ok]
    n_per_run = np.minimum(right - left - 1, max_targets)  # (R',)
    total = int(n_per_run.sum())
    sbo = np.empty((total, 4), dtype=np.int64)  # (P, 4)
    sbo[:, 0] = np.repeat(row, n_per_run)
    sbo[:, 1] = np.repeat(left, n_per_run)
    sbo[:, 2] = np.repeat(right, n_per_run)
    sbo[:, 3] = np.arange(total) - np.repeat(n_per_run.cumsum() - n_per_run, n_per_run)
    return sbo, ids[sbo[:, 0], sbo[:, 1] + 1 + sbo[:, 3]]


def mask_sequence(
    input_ids: np.ndarray,
    word_starts: np.ndarray,
    maskable: np.ndarray,
    *,
    rng: np.random.Generator,
    config: MaskingConfig,
    mask_token_id: int,
    random_token_cdf: np.ndarray,
) -> MaskedSequence:
    """Mask one sequence and build its MLM labels and SBO targets.

    Args:
        input_ids: (T,) token ids, including special tokens and any padding.
        word_starts: (T,) bool, True where a token starts a word (see ``spanbert.pretrain.words``).
            A maskable token right after a non-maskable one is always treated as a start.
        maskable: (T,) bool, True for real tokens that may be chosen (not special, not pad).
        rng: the only source of randomness; the same state gives the same result.
        config: the masking scheme and its parameters.
        mask_token_id: id written at positions whose span action is "mask".
        random_token_cdf: (V,) cdf from :func:`random_token_cdf` for "random" replacements.

    Returns:
        a :class:`MaskedSequence`; ``input_ids`` is a new array, the input is not modified.
    """
    ids, starts_in, maskable = _as_arrays(input_ids, word_starts, maskable, 1, "1-D of one length")
    batch = mask_batch(
        ids[None],
        starts_in[None],
        maskable[None],
        rngs=[rng],
        config=config,
        mask_token_id=mask_token_id,
        random_token_cdf=random_token_cdf,
    )
    return MaskedSequence(
        input_ids=batch.input_ids[0],
        labels=batch.labels[0],
        spans=batch.spans[:, 1:],
        span_action=batch.span_action,
        drawn_span_words=batch.drawn_span_words[:, 1],
        sbo=batch.sbo[:, 1:],
        sbo_labels=batch.sbo_labels,
    )
