"""Word boundaries for span masking, taken from a fast tokenizer.

SpanBERT draws span lengths in *words* and snaps every span to a word start, so the
masker needs to know which subword tokens begin a word. Rather than guessing from token
strings (``##`` for WordPiece, ``▁`` for SentencePiece, ``Ġ`` for byte-level BPE), we read
the fast tokenizer's ``word_ids()``, which every tokenizer family fills from its
pre-tokenizer, and refine it with the character offsets:

* tokens with ``word_id`` None (special tokens) never start a word;
* Chinese/Japanese/Korean ideographs have no spaces between words, so each ideograph is its
  own word (BERT's own tokenizer splits them the same way), unless a ``pre_segmenter`` (a
  word segmenter returning character spans) is given, which then decides the words;
* several tokens that cover the same character (byte-level BPE splits one ideograph into
  up to four byte tokens) always stay in one word.

Everything here is vectorised over tokens with numpy; a document of 100k tokens takes
milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from spanbert.core.errors import TokenizerError, one_line

__all__ = ["word_starts", "batch_word_starts", "is_cjk_codepoint"]

PreSegmenter = Callable[[str], list[tuple[int, int]]]

# CJK ideograph blocks (inclusive codepoint ranges): the URO, extensions A-H and the
# compatibility ideographs. Kana and Hangul are not included: Japanese and Korean text has
# other word cues, and BERT's tokenizer does not split them per character either.
_CJK_RANGES = np.array(
    [
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xF900, 0xFAFF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2EBEF),
        (0x2F800, 0x2FA1F),
        (0x30000, 0x323AF),
    ],
    dtype=np.int64,
)

# Every codepoint for which Python's str.isspace() is true.
_WHITESPACE = np.array(sorted({c for c in range(0x3001) if chr(c).isspace()}), dtype=np.int64)


def is_cjk_codepoint(codepoints: np.ndarray) -> np.ndarray:
    """Return a bool array: True where a codepoint is a CJK ideograph (same shape as input)."""
    cp = np.asarray(codepoints, dtype=np.int64)[..., None]  # (..., 1) against (R,)
    return ((cp >= _CJK_RANGES[:, 0]) & (cp <= _CJK_RANGES[:, 1])).any(axis=-1)


def _codepoints(text: str) -> np.ndarray:
    """Text as an int64 array of codepoints, indexable with the tokenizer's char offsets."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _word_ids_array(word_ids: Sequence[int | None]) -> np.ndarray:
    """word_ids with None mapped to -1, as int64 (T,)."""
    return np.fromiter((-1 if w is None else w for w in word_ids), dtype=np.int64, count=len(word_ids))


def _segments_array(segments: Any) -> np.ndarray:
    """A pre-segmenter's output as an int64 (S, 2) array of (start, end) character offsets;
    anything else (None, triples, non-integers, offsets beyond int64) is a one-line TokenizerError."""
    what = "pre_segmenter: expected a list of (start, end) character offsets"
    if segments is None or isinstance(segments, (str, bytes)):
        raise TokenizerError(f"{what}, got {type(segments).__name__}")
    try:
        array = np.asarray(list(segments), dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise TokenizerError(f"{what} (int64 integers): {one_line(e, None)}") from None
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise TokenizerError(f"{what}, got an array of shape {array.shape}")
    return array


def word_starts(
    word_ids: Sequence[int | None],
    offsets: Sequence[tuple[int, int]] | np.ndarray,
    text: str,
    pre_segmenter: PreSegmenter | None = None,
) -> np.ndarray:
    """Mark the tokens that begin a word.

    Args:
        word_ids: the fast tokenizer's ``encoding.word_ids()`` for one sequence, (T,);
            None marks special tokens.
        offsets: the ``offset_mapping`` of the same sequence, (T, 2) character offsets into
            ``text`` (end exclusive).
        text: the string the sequence was tokenized from (single sequences only: the second
            text of a pair has offsets into another string).
        pre_segmenter: optional word segmenter ``text -> [(start, end), ...]`` of character
            spans (e.g. a Chinese word segmenter). When given it decides the words: a token
            starts a word when its first character starts a segment or lies in another
            segment than the previous token's. Tokens outside every segment fall back to
            the default rule.

    Returns:
        (T,) bool array, True where a token starts a word. Special tokens are False.

    Default rule: a token starts a word when its ``word_id`` differs from the previous
    token's (or the previous token is special), or when it begins a new character and that
    character, or the last character of the previous token, is a CJK ideograph. Tokens that
    begin at the same character as the previous one (byte pieces of one character, or a
    lone ``▁``/``Ġ`` before it) never start a new word. The first real token after a
    special token always starts a word, even when a window begins inside a word.
    """
    n_tokens = len(word_ids)
    wid = _word_ids_array(word_ids)  # (T,)
    off = np.asarray(offsets, dtype=np.int64).reshape(n_tokens, 2)  # (T, 2)
    if n_tokens == 0:
        return np.zeros(0, dtype=bool)
    real = wid >= 0  # (T,)
    starts = np.zeros(n_tokens, dtype=bool)
    if not real.any():
        return starts

    # Work on the slice of text these tokens cover (a window of a long document).
    lo = int(off[real, 0].min())
    hi = int(off[real, 1].max())
    cps = _codepoints(text[lo:hi])  # (L,)
    n_chars = cps.shape[0]
    tok_start = np.clip(off[:, 0] - lo, 0, n_chars)  # (T,)
    tok_end = np.clip(off[:, 1] - lo, 0, n_chars)  # (T,)

    # next_char[i]: first non-space position >= i (n_chars if none): a token's "key"
    # character is the first non-space one at or after its start, so a whitespace-only
    # piece (▁, Ġ) shares its key with the token that follows it.
    not_space = ~np.isin(cps, _WHITESPACE)  # (L,)
    pos = np.where(not_space, np.arange(n_chars), n_chars)
    next_char = np.append(np.minimum.accumulate(pos[::-1])[::-1], n_chars)  # (L+1,)
    key = next_char[tok_start]  # (T,)
    has_char = key < n_chars  # (T,)
    key_cp = np.where(has_char, cps[np.minimum(key, n_chars - 1)] if n_chars else 0, -1)
    has_content = key < tok_end  # token holds a non-space character itself
    last_cp = np.where((tok_end > 0) & has_content, cps[np.maximum(tok_end - 1, 0)] if n_chars else 0, -1)

    prev_real = np.concatenate(([False], real[:-1]))
    prev_wid = np.concatenate(([-1], wid[:-1]))
    prev_key = np.concatenate(([-1], key[:-1]))
    prev_last_cp = np.concatenate(([-1], last_cp[:-1]))
    prev_content = np.concatenate(([False], has_content[:-1]))
    new_char = key != prev_key  # (T,)

    cjk_split = new_char & prev_content & (is_cjk_codepoint(key_cp) | is_cjk_codepoint(prev_last_cp))
    default = real & (~prev_real | (wid != prev_wid) | cjk_split)  # (T,)
    if pre_segmenter is None:
        return default

    segments = _segments_array(pre_segmenter(text))  # (S, 2)
    segments = segments[np.argsort(segments[:, 0], kind="stable")]
    abs_key = key + lo  # (T,) absolute char position
    seg = np.searchsorted(segments[:, 0], abs_key, side="right") - 1  # (T,) candidate segment
    inside = (seg >= 0) & has_char
    seg_c = np.maximum(seg, 0)
    if len(segments):
        inside &= abs_key < segments[seg_c, 1]
        at_seg_start = inside & (segments[seg_c, 0] == abs_key)
    else:
        at_seg_start = np.zeros(n_tokens, dtype=bool)
    seg = np.where(inside, seg, -1)
    prev_seg = np.concatenate(([-2], seg[:-1]))
    by_segment = real & (~prev_real | (new_char & (at_seg_start | (seg != prev_seg))))
    return np.where(inside, by_segment, default)


def batch_word_starts(
    encoding: Any,
    texts: list[str],
    pre_segmenter: PreSegmenter | None = None,
) -> list[np.ndarray]:
    """:func:`word_starts` for every sequence of a fast tokenizer's batch output.

    Args:
        encoding: a ``transformers.BatchEncoding`` from a fast tokenizer called with
            ``return_offsets_mapping=True`` (numpy/torch tensors or lists). When it was
            called with ``return_overflowing_tokens=True`` its ``overflow_to_sample_mapping``
            maps each window back to its text.
        texts: the texts that were tokenized, in order.
        pre_segmenter: see :func:`word_starts`.

    Returns:
        one (T_i,) bool array per sequence in the encoding.

    Raises:
        TokenizerError: the encoding has no offsets or word ids (slow tokenizer).
    """
    if "offset_mapping" not in encoding:
        raise TokenizerError("batch_word_starts needs offsets: call the tokenizer with return_offsets_mapping=True")
    if not getattr(encoding, "encodings", None):
        raise TokenizerError("batch_word_starts needs the output of a fast tokenizer (it has no word_ids)")
    n_seq = len(encoding.encodings)
    sample = encoding.get("overflow_to_sample_mapping")
    sample_of = list(range(n_seq)) if sample is None else [int(s) for s in np.asarray(sample).tolist()]
    if max(sample_of, default=-1) >= len(texts):
        raise ValueError(f"got {len(texts)} texts for an encoding of {max(sample_of) + 1} texts")
    offsets = encoding["offset_mapping"]
    out = []
    for i in range(n_seq):
        # Offsets of padding are (0, 0) and their word id is None: harmless.
        out.append(word_starts(encoding.word_ids(i), np.asarray(offsets[i]), texts[sample_of[i]], pre_segmenter))
    return out
