"""Choosing the summary sentences from sentence scores (pure functions), and the lead-k baseline.

The length budget is ``max_sentences`` and/or ``max_words`` (whitespace-separated words of the
chosen sentences together). Sentences are visited from the highest score down (ties: the
earlier sentence first); one that would break the word budget is skipped and later, shorter
ones may still fit. The summary is never empty: if not even the best sentence fits the word
budget, it is returned alone. With ``block_trigrams`` a sentence sharing a word trigram with
an already chosen one is skipped (BertSum's redundancy filter). Output indices are in
document order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spanbert.core.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """How long a summary may be: at most ``max_sentences`` and ``max_words`` (None: no limit)."""

    max_sentences: int | None = 1
    max_words: int | None = None
    block_trigrams: bool = False

    def __post_init__(self) -> None:
        if self.max_sentences is None and self.max_words is None:
            raise ConfigError("budget: give max_sentences and/or max_words")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ConfigError(f"max_sentences: must be >= 1, got {self.max_sentences}")
        if self.max_words is not None and self.max_words < 1:
            raise ConfigError(f"max_words: must be >= 1, got {self.max_words}")


def _trigrams(sentence: str) -> set[tuple[str, ...]]:
    words = sentence.lower().split()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def _fill(order: Sequence[int], sentences: Sequence[str], budget: Budget) -> list[int]:
    """Take sentences in ``order`` while the budget allows; returns them in document order."""
    chosen: list[int] = []
    words = 0
    seen: set[tuple[str, ...]] = set()
    for i in order:
        if budget.max_sentences is not None and len(chosen) >= budget.max_sentences:
            break
        n = len(sentences[i].split())
        if budget.max_words is not None and words + n > budget.max_words:
            continue
        if budget.block_trigrams:
            tri = _trigrams(sentences[i])
            if tri & seen:
                continue
            seen |= tri
        chosen.append(i)
        words += n
    if not chosen and len(order):
        chosen = [order[0]]
    return sorted(chosen)


def select_sentences(scores: Sequence[float], sentences: Sequence[str], budget: Budget = Budget()) -> list[int]:
    """Indices (document order) of the top-scoring sentences that fit ``budget``."""
    if len(scores) != len(sentences):
        raise ConfigError(f"{len(scores)} scores for {len(sentences)} sentences")
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return _fill(order, sentences, budget)


def lead_sentences(sentences: Sequence[str], budget: Budget = Budget()) -> list[int]:
    """The lead-k baseline: the document's first sentences that fit ``budget``."""
    return _fill(range(len(sentences)), sentences, budget)


def join_summary(sentences: Sequence[str], indices: Sequence[int]) -> str:
    """The chosen sentences joined by single spaces, in the given order."""
    return " ".join(sentences[i].strip() for i in indices)


__all__ = ["Budget", "select_sentences", "lead_sentences", "join_summary"]
