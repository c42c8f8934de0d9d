"""Tagging schemes: IOB2 (BIO), IOB1 and IOBES tags <-> typed word spans.

A tag is ``O`` or ``P-TYPE`` with the prefix ``P`` one of ``B`` (begin), ``I`` (inside),
``E`` (end), ``S`` (single). Spans are :class:`Span` ``(start, end, label)`` with ``end``
inclusive, in word positions of one sentence.

Two ways to read chunks off tags, with exactly seqeval's semantics (tests/test_ner_scoring.py
checks both against the ``seqeval`` package):

* :func:`tags_to_spans` (seqeval's default mode, like ``conlleval``): lenient. A token
  continues the open chunk only when it is ``I-X``/``E-X`` right after ``B-X``/``I-X`` of the
  same type; any other non-``O`` token starts a new chunk. So ``O I-PER`` is a chunk, ``B-PER
  I-LOC`` are two, and IOB1, IOB2 and IOBES files all read correctly with it.
* :func:`strict_spans` (seqeval ``mode="strict"``): IOB2 chunks are ``B-X (I-X)*``, an ``I-X``
  that continues nothing is dropped; IOBES chunks are ``S-X`` or ``B-X (I-X)* E-X``, and an
  unfinished ``B-X I-X`` is dropped. A prefix the scheme lacks (``E-`` in IOB2) is an error.

:func:`spans_to_tags` writes non-overlapping spans back in any of the three schemes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from spanbert.core.errors import ConfigError

Scheme = Literal["IOB2", "IOB1", "IOBES"]
SCHEMES: tuple[str, ...] = ("IOB2", "IOB1", "IOBES")
PREFIXES = ("B", "I", "E", "S")
ALLOWED_PREFIXES = {"IOB2": {"B", "I"}, "IOB1": {"B", "I"}, "IOBES": {"B", "I", "E", "S"}}


class Span(NamedTuple):
    """A typed span of words: ``start`` and ``end`` inclusive."""

    start: int
    end: int
    label: str


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``. Types may contain ``-``."""
    if tag == "O":
        return "O", ""
    prefix, _, label = tag.partition("-")
    return prefix, label


def tag_problem(tag: str, scheme: str | None = None) -> str | None:
    """Why ``tag`` is not a valid tag (of ``scheme`` when given), or ``None`` when it is."""
    if tag == "O":
        return None
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in PREFIXES:
        return f"tag {tag!r} has an unknown prefix (expected O, or B-, I-, E-, S- followed by a type)"
    if not label:
        return f"tag {tag!r} has no entity type after the prefix"
    if scheme is not None and prefix not in ALLOWED_PREFIXES[scheme]:
        return f"tag {tag!r}: prefix {prefix}- is not part of the {scheme} scheme"
    return None


def check_scheme(scheme: str) -> str:
    """``scheme`` normalised (``BIO`` = IOB2, ``BIOES`` = IOBES); a :class:`ConfigError` if unknown."""
    name = scheme.upper()
    name = {"BIO": "IOB2", "BIOES": "IOBES", "IOB": "IOB2"}.get(name, name)
    if name not in SCHEMES:
        raise ConfigError(f"scheme: unknown tagging scheme {scheme!r}; use IOB2 (BIO), IOB1 or IOBES (BIOES)")
    return name


def _continues(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """Whether ``cur`` extends the chunk of ``prev`` (the one rule of the lenient reading)."""
    return prev[0] in ("B", "I") and cur[0] in ("I", "E") and prev[1] == cur[1]


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Chunks of one sentence, read leniently (seqeval default mode / conlleval); see the module doc."""
    spans: list[Span] = []
    start = -1  # first word of the open chunk; -1: none open
    prev = ("O", "")
    for i, tag in enumerate(tags):
        cur = split_tag(tag)
        if start >= 0 and not _continues(prev, cur):  # E-/S- close their chunk too: nothing continues them
            spans.append(Span(start, i - 1, prev[1]))
            start = -1
        if cur[0] != "O" and start < 0:
            start = i
        prev = cur
    if start >= 0:
        spans.append(Span(start, len(tags) - 1, prev[1]))
    return spans


def strict_spans(tags: Sequence[str], scheme: str = "IOB2") -> list[Span]:
    """Chunks of one sentence with seqeval's strict mode for ``scheme`` (IOB2 or IOBES).

    Raises :class:`ConfigError` for a tag the scheme does not allow.
    """
    scheme = check_scheme(scheme)
    if scheme == "IOB1":
        raise ConfigError("strict mode: use IOB2 or IOBES (seqeval has no strict IOB1 reading)")
    parts = [split_tag(t) for t in tags]
    for t, (prefix, _) in zip(tags, parts):
        if prefix != "O" and prefix not in ALLOWED_PREFIXES[scheme]:
            raise ConfigError(f"strict mode: tag {t!r} is not part of the {scheme} scheme")
    spans: list[Span] = []
    n, i = len(parts), 0
    while i < n:
        prefix, label = parts[i]
        if prefix == "S":
            spans.append(Span(i, i, label))
            i += 1
        elif prefix == "B":
            j = i + 1
            while j < n and parts[j] == ("I", label):
                j += 1
            if scheme == "IOB2":
                spans.append(Span(i, j - 1, label))
                i = j
            elif j < n and parts[j] == ("E", label):
                spans.append(Span(i, j, label))
                i = j + 1
            else:  # an IOBES chunk that never ends is not an entity
                i = j
        else:  # O, or an I-/E- that continues no chunk
            i += 1
    return spans


def spans_to_tags(length: int, spans: Iterable[Span | tuple[int, int, str]], scheme: str = "IOB2") -> list[str]:
    """Tags of a sentence of ``length`` words with the given non-overlapping spans.

    IOB2: ``B-X I-X ...``; IOB1: ``I-X ...``, with ``B-X`` only where a chunk directly follows
    another chunk of the same type; IOBES: ``S-X`` for one word, else ``B-X I-X ... E-X``.
    """
    scheme = check_scheme(scheme)
    tags = ["O"] * length
    previous_end, previous_label = -2, ""
    for start, end, label in sorted(spans):
        if not 0 <= start <= end < length:
            raise ConfigError(f"span ({start}, {end}, {label!r}) lies outside a sentence of {length} words")
        if start <= previous_end:
            raise ConfigError(f"span ({start}, {end}, {label!r}) overlaps the span ending at word {previous_end}")
        if scheme == "IOBES" and start == end:
            tags[start] = f"S-{label}"
        else:
            for k in range(start, end + 1):
                tags[k] = f"I-{label}"
            if scheme == "IOB2" or scheme == "IOBES" or (previous_end == start - 1 and previous_label == label):
                tags[start] = f"B-{label}"
            if scheme == "IOBES":
                tags[end] = f"E-{label}"
        previous_end, previous_label = end, label
    return tags


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """The scheme a tagged corpus uses: IOBES when any ``E-``/``S-`` tag occurs; IOB1 when some
    chunk begins with ``I-`` and every ``B-`` directly follows a chunk of its own type; else IOB2."""
    starts_with_i = b_after_other = False
    for tags in sequences:
        prev = ("O", "")
        for tag in tags:
            cur = split_tag(tag)
            if cur[0] in ("E", "S"):
                return "IOBES"
            if cur[0] == "I" and not (prev[0] in ("B", "I") and prev[1] == cur[1]):
                starts_with_i = True
            if cur[0] == "B" and not (prev[0] in ("B", "I") and prev[1] == cur[1]):
                b_after_other = True
            prev = cur
    return "IOB1" if starts_with_i and not b_after_other else "IOB2"


def convert_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """Re-tag a sentence in ``scheme`` (its chunks read leniently)."""
    return spans_to_tags(len(tags), tags_to_spans(tags), scheme)


__all__ = ["Span", "SCHEMES", "split_tag", "tag_problem", "check_scheme", "tags_to_spans", "strict_spans",
           "spans_to_tags", "detect_scheme", "convert_tags"]
