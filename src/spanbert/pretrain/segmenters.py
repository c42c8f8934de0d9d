"""Word segmenters for text written without spaces, used to decide whole words for masking.

BERT's tokenizer makes every Chinese character its own word, so without help span masking
would draw spans of *characters*. A pre-segmenter maps a text to character spans of words
(``text -> [(start, end), ...]``, end exclusive); :func:`spanbert.pretrain.words.word_starts` then marks
a token as a word start when it begins one of those spans, so a masked span always covers
whole words (Chinese whole-word masking, as in Cui et al.'s Chinese BERT-wwm, over a
character-level vocabulary).

Segmenters are looked up by name (``--word-segmenter jieba``) so that a run's settings stay
plain strings; each is a module-level function, so ``datasets`` can hash it and send it to
worker processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from spanbert.core.errors import ConfigError

__all__ = ["SEGMENTERS", "get_segmenter", "jieba_segments"]

PreSegmenter = Callable[[str], list[tuple[int, int]]]


def _jieba():
    try:
        import jieba
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "--word-segmenter jieba needs the jieba package: pip install 'spanbert[chinese]' (or pip install jieba)"
        ) from e
    jieba.setLogLevel(logging.WARNING)  # it announces building its dictionary on every process start
    return jieba


def jieba_segments(text: str) -> list[tuple[int, int]]:
    """Word spans of ``text`` from jieba's default (accurate, HMM) mode, in order, end exclusive.

    Every character belongs to exactly one span; runs of Latin letters or digits come back as
    one span each, and each space or punctuation mark is its own span.
    """
    return [(start, end) for _, start, end in _jieba().tokenize(text)]


SEGMENTERS: dict[str, PreSegmenter] = {"jieba": jieba_segments}


def get_segmenter(name: str | None) -> PreSegmenter | None:
    """The segmenter called ``name``; ``None`` or ``"none"`` gives None (the tokenizer's own words).

    Raises:
        ConfigError: an unknown name, or its package is not installed.
    """
    if name is None or name == "none":
        return None
    if name not in SEGMENTERS:
        raise ConfigError(f"--word-segmenter: unknown segmenter {name!r}; choose none or {', '.join(SEGMENTERS)}")
    if name == "jieba":
        _jieba()  # fail now, with the install hint, rather than inside a worker
    return SEGMENTERS[name]
