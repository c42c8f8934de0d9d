"""GAP (Webster et al. 2018): gendered ambiguous pronouns in Wikipedia text, resolved by a
coreference model, scored like the data set's own scorer.

Each example is a text, a pronoun and two names A and B (character offsets), each name labelled
coreferent with the pronoun or not. A coreference model resolves the whole text; the decision
for a name is "coreferent" when the predicted cluster of the pronoun (the mention whose span is
exactly the pronoun) holds a mention that *matches* the name (:func:`mention_matches`); when it
matches both names, only the one mentioned nearest the pronoun is kept, since GAP's two names are
different people (``at_most_one``; off: both are kept).

Scoring follows the GAP scorer's rules: each example gives two binary decisions (A, B); true and
false positives and negatives are counted overall and per pronoun gender (she/her/hers
feminine, he/his/him masculine); precision, recall and F1 are over the positive decisions; the
bias is feminine F1 / masculine F1; an example without a system answer counts two false
negatives. A system file is ``ID<TAB>A-coref<TAB>B-coref`` lines without a header.

    spanbert evaluate gap --model runs/coref --data gap-test.tsv --output runs/gap [--any-match]
    spanbert score gap --key gap-test.tsv --response runs/gap/predictions.tsv
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spanbert.core.errors import CorpusError

KEY_FIELDS = ["ID", "Text", "Pronoun", "Pronoun-offset", "A", "A-offset", "A-coref", "B", "B-offset", "B-coref", "URL"]
GENDERS = {"she": "feminine", "her": "feminine", "hers": "feminine", "he": "masculine", "his": "masculine",
           "him": "masculine"}
POSSESSIVE = ("'s", "’s")


@dataclass(frozen=True)
class GapExample:
    """One GAP row; offsets are character offsets into ``text``, spans end-exclusive."""

    id: str
    text: str
    pronoun: str
    pronoun_offset: int
    a: str
    a_offset: int
    a_coref: bool
    b: str
    b_offset: int
    b_coref: bool

    @property
    def gender(self) -> str:
        return GENDERS[self.pronoun.lower()]

    def span(self, which: str) -> tuple[int, int]:
        """``(start, end)`` of ``"pronoun"``, ``"a"`` or ``"b"``."""
        name, offset = {"pronoun": (self.pronoun, self.pronoun_offset), "a": (self.a, self.a_offset),
                        "b": (self.b, self.b_offset)}[which]
        return offset, offset + len(name)


def _bool(value: str, where: str, column: str) -> bool:
    low = value.strip().lower()
    if low not in ("true", "false"):
        raise CorpusError(f"{where}: {column} must be TRUE or FALSE, got {value!r}")
    return low == "true"


def _rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(line number, fields) of a TAB-separated file read without quote processing."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                yield n, row
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_gap(path: str | os.PathLike) -> list[GapExample]:
    """The examples of a GAP TSV file (header ``ID Text Pronoun Pronoun-offset A A-offset
    A-coref B B-offset B-coref URL``). A wrong header, a short row, an offset that is not a
    number or does not point at its name in the text, a label other than TRUE/FALSE, a pronoun
    outside he/his/him/she/her/hers or a repeated ID is a ``file:line`` CorpusError."""
    path = Path(path)
    examples: list[GapExample] = []
    seen: set[str] = set()
    for n, row in _rows(path):
        where = f"{path}:{n}"
        if n == 1:
            if row[: len(KEY_FIELDS) - 1] != KEY_FIELDS[:-1]:
                raise CorpusError(f"{where}: expected the GAP header {' '.join(KEY_FIELDS)}")
            continue
        if not row or row == [""]:
            continue
        if len(row) < len(KEY_FIELDS) - 1:
            raise CorpusError(f"{where}: expected {len(KEY_FIELDS) - 1} or more TAB-separated fields, got {len(row)}")
        rec = dict(zip(KEY_FIELDS, row))
        if rec["ID"] in seen:
            raise CorpusError(f"{where}: ID {rec['ID']!r} repeats an earlier row")
        seen.add(rec["ID"])
        text = rec["Text"]
        offsets = {}
        for name in ("Pronoun", "A", "B"):
            try:
                offsets[name] = int(rec[f"{name}-offset"])
            except ValueError:
                raise CorpusError(f"{where}: {name}-offset must be an integer, got {rec[f'{name}-offset']!r}") from None
            start = offsets[name]
            if not rec[name] or start < 0 or text[start : start + len(rec[name])] != rec[name]:
                raise CorpusError(f"{where}: {name}-offset {start} does not point at {rec[name]!r} in the text")
        if rec["Pronoun"].lower() not in GENDERS:
            raise CorpusError(f"{where}: pronoun {rec['Pronoun']!r} is not one of {', '.join(GENDERS)}")
        examples.append(GapExample(rec["ID"], text, rec["Pronoun"], offsets["Pronoun"], rec["A"], offsets["A"],
                                   _bool(rec["A-coref"], where, "A-coref"), rec["B"], offsets["B"],
                                   _bool(rec["B-coref"], where, "B-coref")))
    if not examples:
        raise CorpusError(f"{path}: no GAP examples")
    return examples


def read_gap_response(path: str | os.PathLike) -> dict[str, tuple[bool, bool]]:
    """A system file: ``ID<TAB>A-coref<TAB>B-coref`` per line, no header (the GAP scorer's
    format); a repeated ID or a bad label is a ``file:line`` CorpusError."""
    path = Path(path)
    out: dict[str, tuple[bool, bool]] = {}
    for n, row in _rows(path):
        where = f"{path}:{n}"
        if not row or row == [""]:
            continue
        if len(row) < 3:
            raise CorpusError(f"{where}: expected ID, A-coref and B-coref separated by TABs, got {len(row)} field(s)")
        if row[0] in out:
            raise CorpusError(f"{where}: ID {row[0]!r} repeats an earlier line")
        out[row[0]] = (_bool(row[1], where, "A-coref"), _bool(row[2], where, "B-coref"))
    return out


def mention_matches(mention: tuple[int, int], name: tuple[int, int], text: str) -> bool:
    """Whether a predicted mention (character span, end-exclusive) stands for a name.

    It does when the two overlap and either the mention lies inside the name ("Cassidy" for
    "Cheryl Cassidy"), or it ends where the name ends (a head-final phrase: "actress Cheryl
    Cassidy"), or it starts where the name starts and the name is not followed by a possessive
    ``'s`` ("Cheryl Cassidy, a pupil" matches; "Pauline's friend" does not match "Pauline")."""
    (ms, me), (ns, ne) = mention, name
    if me <= ns or ne <= ms:
        return False
    if ns <= ms and me <= ne:
        return True
    if me == ne:
        return True
    return ms == ns and not text[ne : ne + 2] in POSSESSIVE


def gap_decisions(example: GapExample, clusters: Sequence[Sequence[tuple[int, int]]],
                  at_most_one: bool = True) -> tuple[bool, bool]:
    """(A coreferent, B coreferent) from predicted clusters of character spans: true for a name
    when the pronoun's cluster holds a mention, other than the pronoun, that matches it.

    GAP's two names are different people, so at most one can be the pronoun's referent; with
    ``at_most_one``, when the cluster matches both, only the name whose matching mention lies
    nearest the pronoun (in characters, either side) is kept."""
    pronoun = example.span("pronoun")
    for cluster in clusters:
        if pronoun in [tuple(m) for m in cluster]:
            others = [tuple(m) for m in cluster if tuple(m) != pronoun]
            matches = [[m for m in others if mention_matches(m, example.span(w), example.text)] for w in ("a", "b")]
            a, b = bool(matches[0]), bool(matches[1])
            if at_most_one and a and b:
                distance = [min(_gap(m, pronoun) for m in ms) for ms in matches]
                a, b = distance[0] <= distance[1], distance[1] < distance[0]
            return a, b
    return False, False


def _gap(m: tuple[int, int], n: tuple[int, int]) -> int:
    """Characters between two spans (0 when they touch or overlap)."""
    return max(m[0] - n[1], n[0] - m[1], 0)


@dataclass
class Counts:
    """Decision counts of one group (overall, masculine or feminine)."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, gold: bool, system: bool | None) -> None:
        if system is None:  # no answer: a false negative whatever the gold label (the GAP scorer's rule)
            self.fn += 1
        elif gold and system:
            self.tp += 1
        elif system:
            self.fp += 1
        elif gold:
            self.fn += 1
        else:
            self.tn += 1

    def to_json(self) -> dict:
        p = 100.0 * self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = 100.0 * self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        total = self.tp + self.fp + self.tn + self.fn
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                "accuracy": 100.0 * (self.tp + self.tn) / total if total else 0.0,
                "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}


@dataclass
class GapScores:
    overall: Counts = field(default_factory=Counts)
    masculine: Counts = field(default_factory=Counts)
    feminine: Counts = field(default_factory=Counts)
    examples: int = 0
    exact_examples: int = 0  # both decisions right
    missing: int = 0

    def to_json(self) -> dict:
        out = {name: getattr(self, name).to_json() for name in ("overall", "masculine", "feminine")}
        m, f = out["masculine"]["f1"], out["feminine"]["f1"]
        out["bias_f_over_m"] = f / m if m and f else None
        out["examples"], out["missing"] = self.examples, self.missing
        out["example_accuracy"] = 100.0 * self.exact_examples / self.examples if self.examples else 0.0
        return out


def score_gap(key: Sequence[GapExample], response: Mapping[str, tuple[bool, bool]]) -> GapScores:
    """Score system decisions (ID -> (A, B)) against the key examples with the GAP scorer's
    rules (see the module doc). ``accuracy`` counts right decisions; ``example_accuracy``
    counts examples with both decisions right."""
    scores = GapScores()
    for ex in key:
        system = response.get(ex.id)
        scores.examples += 1
        if system is None:
            scores.missing += 1
        elif system == (ex.a_coref, ex.b_coref):
            scores.exact_examples += 1
        for group in (scores.overall, getattr(scores, ex.gender)):
            for i, gold in enumerate((ex.a_coref, ex.b_coref)):
                group.add(gold, None if system is None else system[i])
    return scores


def write_gap_response(path: str | os.PathLike, decisions: Mapping[str, tuple[bool, bool]]) -> None:
    """Write decisions in the GAP scorer's system format (atomically)."""
    from spanbert.core.atomic import atomic_write_text

    atomic_write_text(path, "".join(f"{i}\t{'TRUE' if a else 'FALSE'}\t{'TRUE' if b else 'FALSE'}\n"
                                    for i, (a, b) in decisions.items()))


def predict_gap(resolver, examples: Sequence[GapExample], progress: bool = False) -> list[list[list[tuple[int, int]]]]:
    """The clusters (character spans) a :class:`spanbert.tasks.coref.inference.CorefResolver` finds
    in each example's text (one forward pass per text); :func:`gap_decisions` turns them into
    decisions."""
    from tqdm.auto import tqdm

    return [[[(m.start_char, m.end_char) for m in c] for c in resolver.resolve([ex.text])[0]]
            for ex in tqdm(examples, disable=not progress, desc="gap", unit="text")]


__all__ = ["GapExample", "GapScores", "Counts", "gap_decisions", "mention_matches", "predict_gap", "read_gap",
           "read_gap_response", "score_gap", "write_gap_response"]
