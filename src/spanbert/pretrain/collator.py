"""A PyTorch data collator that span-masks a batch for SpanBERT pre-training.

Each feature is masked on its own by :func:`spanbert.pretrain.masking.mask_sequence` with its own
random generator, then the batch is padded. With an ``example_id`` in a feature its mask
depends only on (seed, epoch, example_id): the same in every run, whatever the batch
composition, DataLoader workers or number of processes, and new every epoch.

Typical use::

    collator = SpanMaskingCollator(tokenizer, seed=13)
    loader = DataLoader(dataset, batch_size=32, collate_fn=collator, num_workers=4)
    for epoch in range(n_epochs):
        collator.set_epoch(epoch)  # before the loader forks its workers
        for batch in loader:
            ...  # batch["input_ids"], ["attention_mask"], ["labels"], ["sbo_pairs"], ["sbo_labels"]

DataLoader workers hold copies of the collator made when they start: with
``persistent_workers=True`` a later ``set_epoch`` does not reach them, so build the loader
after ``set_epoch`` each epoch (or keep persistent workers off).

In a ``transformers.Trainer`` nothing calls ``set_epoch`` and, by default, the Trainer drops
the ``word_starts`` and ``example_id`` columns before they reach the collator: add
:class:`spanbert.pretrain.hf_trainer.SpanBertTrainerCallback` and set ``remove_unused_columns=False``
(see :mod:`spanbert.pretrain.hf_trainer`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from spanbert.core.errors import ConfigError, TokenizerError
from spanbert.pretrain.masking import MaskingConfig, mask_batch, random_token_cdf

__all__ = ["SpanMaskingCollator"]


class SpanMaskingCollator:
    """Pad a list of tokenized features and mask them with SpanBERT's scheme.

    Args:
        tokenizer: supplies the [MASK] and pad ids, the special ids (never masked) and the
            vocabulary size (``len(tokenizer)``) for random replacements.
        config: the masking scheme (SpanBERT's defaults).
        seed: base seed; see the module docstring for how masks are seeded.
        unigram: optional (V,) corpus token counts; random replacements then follow the
            corpus unigram distribution (as in the authors' code) instead of uniform.
        pad_to_multiple_of: pad the time dimension up to a multiple of this.
        every_token_a_word: let features without ``word_starts`` through, every token being a
            word of its own (spans may then start or end inside a word). Off by default: the
            ``span`` and ``whole_word`` schemes then refuse such a feature, since a missing
            column is far more often a mistake (a Trainer that dropped it) than a choice.

    Features are mappings with ``input_ids`` (ints, already with [CLS] ... [SEP]),
    ``word_starts`` (0/1 per token; needed by the ``span`` and ``whole_word`` schemes, see
    ``every_token_a_word``), optionally ``attention_mask`` (0 marks padding already in the
    feature) and ``example_id`` (int).

    A call returns (B = batch size, T = padded length, N = number of SBO targets):
        input_ids (B, T) long, attention_mask (B, T) long, labels (B, T) long (-100 where
        not chosen), sbo_pairs (N, 4) long (batch_index, left_position, right_position,
        offset_in_span) and sbo_labels (N,) long.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: MaskingConfig = MaskingConfig(),  # frozen, so a shared default is safe  # noqa: B008
        *,
        seed: int = 0,
        unigram: np.ndarray | None = None,
        pad_to_multiple_of: int | None = None,
        every_token_a_word: bool = False,
    ) -> None:
        name = type(tokenizer).__name__
        if tokenizer.mask_token_id is None:
            raise TokenizerError(
                f"tokenizer has no mask token ({name}): add one, e.g. "
                "tokenizer.add_special_tokens({'mask_token': '[MASK]'})"
            )
        if tokenizer.pad_token_id is None:
            raise TokenizerError(
                f"tokenizer has no pad token ({name}): add one, e.g. "
                "tokenizer.add_special_tokens({'pad_token': '[PAD]'})"
            )
        if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be >= 1, got {pad_to_multiple_of}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.tokenizer = tokenizer
        self.config = config
        self.seed = int(seed)
        self.pad_to_multiple_of = pad_to_multiple_of
        # Whether a feature may come without word_starts (the token scheme ignores words).
        self.words_optional = bool(every_token_a_word) or config.scheme == "token"
        self.mask_token_id = int(tokenizer.mask_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.special_ids = sorted({int(i) for i in tokenizer.all_special_ids})
        vocab_size = len(tokenizer)
        # Lookup table id -> is special; sized to cover special ids beyond len(tokenizer).
        self._special = np.zeros(max([vocab_size, *(i + 1 for i in self.special_ids)]), dtype=bool)
        self._special[self.special_ids] = True
        self.random_token_cdf = random_token_cdf(vocab_size, self.special_ids, unigram)
        self.epoch = 0
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch``: every example gets a fresh mask."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def _shared_rng(self) -> np.random.Generator:
        """Generator for features without ``example_id``, seeded from (seed, epoch).

        Each DataLoader worker (and each forked process) builds its own, seeded with its
        worker id too, so workers do not repeat each other's masks. The spawn key keeps it
        apart from every per-example generator ``default_rng([seed, epoch, example_id])``.
        """
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else -1
        key = (self.epoch, os.getpid(), worker)
        if self._rng is None or self._rng_key != key:
            seq = np.random.SeedSequence([self.seed, self.epoch], spawn_key=(1, worker + 1))
            self._rng = np.random.default_rng(seq)
            self._rng_key = key
        return self._rng

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Mask and pad a batch; see the class docstring for the output."""
        if len(features) == 0:
            raise ValueError("cannot collate an empty batch")
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(features)
        input_ids = np.full((n, width), self.pad_token_id, dtype=np.int64)  # (B, T)
        attention = np.zeros((n, width), dtype=bool)  # (B, T)
        word_starts = np.zeros((n, width), dtype=bool)  # (B, T)
        rngs: list[np.random.Generator] = []
        for b, feature in enumerate(features):
            length = lengths[b]
            input_ids[b, :length] = feature["input_ids"]
            mask = feature.get("attention_mask")
            attention[b, :length] = True if mask is None else np.asarray(mask, dtype=bool)
            starts = feature.get("word_starts")
            if starts is not None:
                if len(starts) != length:
                    raise ValueError(f"feature {b}: word_starts has {len(starts)} entries for {length} input_ids")
                word_starts[b, :length] = starts
            elif self.words_optional:
                word_starts[b, :length] = True  # every (maskable) token is its own word
            else:
                raise ConfigError(
                    f"SpanMaskingCollator: feature {b} has no word_starts, which {self.config.scheme} masking needs; "
                    "a transformers Trainer drops that column unless TrainingArguments(remove_unused_columns=False) "
                    "(see spanbert.pretrain.hf_trainer), and rows without word boundaries need every_token_a_word=True"
                )
            example_id = feature.get("example_id")
            if example_id is None:
                rngs.append(self._shared_rng())
            else:
                rngs.append(np.random.default_rng([self.seed, self.epoch, int(example_id)]))
        if input_ids.min() < 0 or input_ids.max() >= self._special.shape[0]:
            raise ValueError(f"input_ids outside the vocabulary (0..{self._special.shape[0] - 1})")
        maskable = ~self._special[input_ids] & attention  # (B, T)
        masked = mask_batch(
            input_ids,
            word_starts,
            maskable,
            rngs=rngs,
            config=self.config,
            mask_token_id=self.mask_token_id,
            random_token_cdf=self.random_token_cdf,
        )
        return {
            "input_ids": torch.from_numpy(masked.input_ids),
            "attention_mask": torch.from_numpy(attention.astype(np.int64)),
            "labels": torch.from_numpy(masked.labels),
            "sbo_pairs": torch.from_numpy(masked.sbo),  # (N, 4)
            "sbo_labels": torch.from_numpy(masked.sbo_labels),  # (N,)
        }
