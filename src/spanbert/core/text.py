"""Raw text into sentences and words, with character offsets, for the tasks that take raw text
(NER and coreference read words, summarization and coreference read sentences).

Both are regex rule sets: no model, no download, the same result on every machine.
"""

from __future__ import annotations

import re


WORD_PATTERN = re.compile(
    r"(?:https?://|www\.)\S+"  # URLs
    r"|[@#]\w+"  # @mentions, #hashtags
    r"|(?:\w\.){2,}"  # abbreviations: U.S., e.g.
    r"|\w+(?:['’-]\w+)*"  # words, with inner apostrophes and hyphens: don't, state-of-the-art
    r"|[^\w\s]"  # any other symbol on its own
)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """``(word, start_char, end_char)`` for each word of ``text`` (see the module doc)."""
    return [(m.group(), m.start(), m.end()) for m in WORD_PATTERN.finditer(text)]


# Words that end with a period without ending the sentence (compared lowercased, without the
# final period). Single letters (initials: "J. Smith") are handled separately.
ABBREVIATIONS = frozenset(
    "e.g i.e et al etc cf vs viz approx ca fig figs eq eqs sec secs ref refs tab no nos vol pp ch "
    "dr mr mrs ms prof st jr sr mt gen col lt sgt capt rev hon gov sen rep inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k".split()
)


# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, and
# then something that can start a sentence (optional opening quote/bracket, then an upper-case
# letter or a digit).
_BOUNDARY = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(\s+)(?=[\"'\u201c\u2018(\[]?[A-Z0-9\u00c0-\u00de])")


_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")


_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the period ending at ``text[end - 1]`` belongs to an abbreviation or an initial."""
    match = _WORD_BEFORE.search(text[max(0, end - 20) : end])
    if match is None:
        return False
    word = match.group(1)
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith"
        return True
    return word.lower() in ABBREVIATIONS


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentences of ``text`` as ``(start, end)`` character offsets, ``text[start:end]`` being the
    sentence without surrounding whitespace.

    A sentence ends at ``.``/``!``/``?`` (plus closing quotes or brackets) followed by
    whitespace and an upper-case letter, a digit or an opening quote, unless the period ends a
    known abbreviation (``e.g.``, ``et al.``, ``Dr.``) or an initial; a blank line always ends
    one. A regex rule set (punkt needs a download): good on edited prose, not on all text.
    """
    cuts = {0, len(text)}
    for match in _PARAGRAPH.finditer(text):
        cuts.add(match.start())
        cuts.add(match.end())
    for match in _BOUNDARY.finditer(text):
        punct_end = match.start(1)
        stripped = text[match.start() : punct_end].rstrip("\"'\u201d\u2019)]")
        if stripped.endswith(".") and not stripped.endswith("..") and _is_abbreviation(text, match.start() + len(stripped)):
            continue
        cuts.add(punct_end)
        cuts.add(match.end(1))
    spans = []
    points = sorted(cuts)
    for start, end in zip(points, points[1:]):
        piece = text[start:end]
        if not piece.strip():
            continue
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        spans.append((start + lead, end - trail))
    return spans
