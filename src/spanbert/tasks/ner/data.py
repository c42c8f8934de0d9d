"""Readers of NER data: CoNLL column files, ``datasets`` folders, and a ``datasets.Dataset`` view.

CoNLL format (as in CoNLL-2003 and WNUT-17): one token per line, columns separated by a tab
(or, on lines without a tab, by spaces), the tag in the **last** column; a blank (or
whitespace-only) line ends a sentence; ``-DOCSTART-`` lines are skipped. Every token line of a
file must have the same number of columns as its first one. A one-column file is untagged
text (for prediction). Problems are one :class:`CorpusError` line naming ``file:line``.

Tags are ``O`` or ``B-/I-/E-/S-TYPE`` in IOB2 (BIO), IOB1 or IOBES (BIOES); the scheme is
detected (:func:`spanbert.tasks.ner.tags.detect_scheme`) or given, and chunks are read leniently,
which is right for all three (see :mod:`spanbert.tasks.ner.tags`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spanbert.core.errors import CorpusError
from spanbert.core.sources import load_dataset_source
from spanbert.tasks.ner.tags import Span, check_scheme, detect_scheme, spans_to_tags, tag_problem, tags_to_spans

logger = logging.getLogger(__name__)
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class NerSentence:
    """One sentence: its tokens (words) and, when tagged, one tag per token.

    ``lines``: the 1-based file line of each token (empty when not read from a file).
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...] = ()
    lines: tuple[int, ...] = ()

    @property
    def line(self) -> int:
        """The file line of the first token (0 when not read from a file)."""
        return self.lines[0] if self.lines else 0

    @property
    def spans(self) -> list[Span]:
        """The typed word spans of the tags (inclusive ends), read leniently."""
        return tags_to_spans(self.tags)


@dataclass
class NerCorpus:
    """Sentences of one source, with its scheme and what the reader saw."""

    sentences: list[NerSentence]
    source: str
    scheme: str = "IOB2"
    columns: int = 2
    tagged: bool = True

    @property
    def labels(self) -> list[str]:
        """Entity types that occur, sorted."""
        return sorted({s.label for sent in self.sentences for s in sent.spans})

    def span_counts(self) -> Counter:
        return Counter(s.label for sent in self.sentences for s in sent.spans)

    def summary(self) -> str:
        text = f"{self.source}: {len(self.sentences)} sentences, {sum(len(s.tokens) for s in self.sentences)} tokens"
        if self.tagged:
            counts = self.span_counts()
            text += f", {sum(counts.values())} entities ({self.scheme}; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"
        return text


def _fields(line: str) -> list[str]:
    if "\t" in line:
        return [f.strip() for f in line.split("\t")]
    return line.split()


def read_conll(path: str | os.PathLike, scheme: str = "auto", require_tags: bool = True) -> NerCorpus:
    """Read a CoNLL column file into sentences (see the module doc for the format).

    ``scheme``: ``"auto"`` (detected), ``"IOB2"``/``"BIO"``, ``"IOB1"`` or ``"IOBES"``/``"BIOES"``;
    with a named scheme a tag whose prefix it lacks (``E-`` in IOB2) is an error.
    ``require_tags=False`` also accepts a one-column (token-only) file.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    named = None if scheme == "auto" else check_scheme(scheme)
    sentences: list[NerSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    columns, columns_line = 0, 0

    def flush() -> None:
        if tokens:
            sentences.append(NerSentence(tuple(tokens), tuple(tags), tuple(lines)))
            tokens.clear()
            tags.clear()
            lines.clear()

    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise CorpusError(f"{path}:{n}: not UTF-8 text ({e.reason})") from None
            if n == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                flush()
                continue
            parts = _fields(line)
            if parts[0].startswith(DOCSTART):
                flush()
                continue
            if not columns:
                columns, columns_line = len(parts), n
                if columns == 1 and require_tags:
                    raise CorpusError(f"{path}:{n}: one column only; a tagged file needs 'token<TAB>tag' lines")
            elif len(parts) != columns:
                raise CorpusError(f"{path}:{n}: {len(parts)} columns, but line {columns_line} has {columns}")
            if not parts[0]:
                raise CorpusError(f"{path}:{n}: empty token")
            if columns > 1:
                tag = parts[-1]
                problem = tag_problem(tag, named)
                if problem:
                    raise CorpusError(f"{path}:{n}: {problem}")
                tags.append(tag)
            lines.append(n)
            tokens.append(parts[0])
    flush()
    if not sentences:
        raise CorpusError(f"{path}: no sentences")
    tagged = columns > 1
    used = named or (detect_scheme(s.tags for s in sentences) if tagged else "IOB2")
    return NerCorpus(sentences, str(path), used, columns, tagged)


def write_conll(path: str | os.PathLike, sentences: Sequence[Sequence[Sequence[str]]]) -> None:
    """Write sentences given as rows of columns (e.g. ``[(token, gold, pred), ...]``) atomically,
    tab-separated, a blank line after each sentence."""
    from spanbert.core.atomic import atomic_write_text

    lines = []
    for rows in sentences:
        lines.extend("\t".join(row) for row in rows)
        lines.append("")
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def to_dataset(sentences: Iterable[NerSentence]):
    """A ``datasets.Dataset`` with columns ``tokens``, ``tags`` and ``spans`` (a list of
    ``{start, end, label}`` word spans, end inclusive)."""
    import datasets

    rows = {"tokens": [], "tags": [], "spans": []}
    for s in sentences:
        rows["tokens"].append(list(s.tokens))
        rows["tags"].append(list(s.tags))
        rows["spans"].append([{"start": sp.start, "end": sp.end, "label": sp.label} for sp in s.spans])
    features = datasets.Features({
        "tokens": datasets.List(datasets.Value("string")),
        "tags": datasets.List(datasets.Value("string")),
        "spans": datasets.List({"start": datasets.Value("int32"), "end": datasets.Value("int32"),
                                "label": datasets.Value("string")}),
    })
    return datasets.Dataset.from_dict(rows, features=features)


def _tag_names(ds, column: str) -> list[str] | None:
    """Names of an integer tag column with a ``ClassLabel`` feature (e.g. ``ner_tags``)."""
    feature = ds.features.get(column)
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list) and feature:
        inner = feature[0]
    return list(inner.names) if hasattr(inner, "names") else None


def sentences_from_rows(ds, source: str, scheme: str = "auto") -> NerCorpus:
    """Sentences from ``datasets`` rows with ``tokens`` and one of ``tags`` (strings), ``ner_tags``
    (strings, or integers with ``ClassLabel`` names) or ``spans`` (``{start, end, label}``)."""
    columns = set(ds.column_names)
    if "tokens" not in columns:
        raise CorpusError(f"{source}: no 'tokens' column (has {', '.join(sorted(columns))})")
    tag_column = next((c for c in ("tags", "ner_tags") if c in columns), None)
    if tag_column is None and "spans" not in columns:
        raise CorpusError(f"{source}: needs a 'tags', 'ner_tags' or 'spans' column next to 'tokens'")
    names = _tag_names(ds, tag_column) if tag_column else None
    named = None if scheme == "auto" else check_scheme(scheme)
    sentences = []
    for i, row in enumerate(ds):
        tokens = [str(t) for t in row["tokens"]]
        if any(not t.strip() for t in tokens):
            raise CorpusError(f"{source}: row {i}: empty token")
        if tag_column:
            tags = [names[t] if names is not None else str(t) for t in row[tag_column]]
        else:
            spans = row["spans"]
            if isinstance(spans, dict):  # a Sequence of structs comes back as columns
                spans = [dict(zip(spans, values)) for values in zip(*spans.values())]
            try:
                tags = spans_to_tags(len(tokens), [(int(s["start"]), int(s["end"]), str(s["label"])) for s in spans])
            except Exception as e:  # noqa: BLE001 - a bad span is the data's fault
                raise CorpusError(f"{source}: row {i}: {e}") from None
        if len(tags) != len(tokens):
            raise CorpusError(f"{source}: row {i}: {len(tokens)} tokens but {len(tags)} tags")
        for tag in tags:
            problem = tag_problem(tag, named)
            if problem:
                raise CorpusError(f"{source}: row {i}: {problem}")
        if tokens:
            sentences.append(NerSentence(tuple(tokens), tuple(tags)))
    if not sentences:
        raise CorpusError(f"{source}: no sentences")
    used = named or detect_scheme(s.tags for s in sentences)
    return NerCorpus(sentences, source, used, 2, True)


def read_ner(source: str | os.PathLike, split: str = "train", scheme: str = "auto", require_tags: bool = True) -> NerCorpus:
    """Read NER sentences from a CoNLL file, a folder saved with ``datasets.save_to_disk``, or
    ``hf:NAME[:CONFIG]`` (``split`` picks the split of the last two)."""
    ds = load_dataset_source(source, split)
    if ds is not None:
        return sentences_from_rows(ds, str(source), scheme)
    path = Path(source)
    return read_conll(path, scheme, require_tags)


__all__ = ["NerSentence", "NerCorpus", "read_conll", "read_ner", "write_conll", "to_dataset", "sentences_from_rows"]
