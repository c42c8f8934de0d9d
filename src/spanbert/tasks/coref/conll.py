"""Reading and writing CoNLL-2012-style coreference files, as the reference scorer v8.01 reads them.

A file holds documents ``#begin document <name>`` ... ``#end document``; ``<name>`` is the rest
of the line, e.g. ``(nw/xinhua/00/chtb_0009); part 000`` (surrounding spaces stripped here).
Every non-blank line in between is one token; tokens are numbered over the whole document and
blank lines only end sentences. The coreference column is the LAST whitespace-separated column
(the scorer's test files TC-B..TC-L have just ``docname coref``; LitBank has 13 TAB-separated
columns): ``-`` or ``_`` for none, else ``|``-joined pieces ``(id`` (a mention of entity ``id``
starts here), ``id)`` (it ends here) and ``(id)`` (a one-token mention). A closing bracket
pairs with the latest open mention of its entity. Pieces of one token are applied as the scorer
does: one-token mentions first, then openings, then closings; ``(a+b)`` (a double antecedent)
is skipped as the scorer skips it.

A document's clusters are listed in the order in which their ids first appear, the mentions of
a cluster in the order in which they close, duplicates kept: that order decides which repeated
response mention the scorer drops, so the metrics see exactly what the scorer sees.

Departures from the scorer (which dies or reads on silently): every problem is a one-line
:class:`~spanbert.core.errors.CorpusError` naming ``file:line`` -- a closing bracket without an
opening, a mention never closed, a malformed coreference column, a document without tokens,
no ``#end document``, a repeated document name, token lines outside a document, a file with
no document. Gzip files are decompressed (by their magic number, whatever their name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spanbert.core.atomic import atomic_write_text
from spanbert.core.errors import CorpusError
from spanbert.core.sources import read_bytes

Span = tuple[int, int]

_BEGIN = re.compile(r"^#\s*begin document (.*)$")
_END = re.compile(r"#\s*end document")
_PIECE = r"\(\d+\+\d+\)|\((?P<single>\d+)\)|\((?P<open>\d+)|(?P<close>\d+)\)"  # (a+b) first: skipped
_PIECES = re.compile(_PIECE)
_COLUMN = re.compile(r"(?:(?>\(\d+\+\d+\)|\(\d+\)|\(\d+|\d+\))\|?)++")  # the same pieces; atomic: no backtracking
_NAME_PART = re.compile(r"^\((?P<doc>.+)\);\s*part\s+(?P<part>\S+)$")


@dataclass
class CorefDocument:
    """One document of a CoNLL coreference file.

    ``words[i]`` is token i's word (column 4 when a line has at least 5 columns, else ``_``);
    ``speakers[i]`` its speaker (column 10 on lines of the 12+ columns CoNLL-2012 layout,
    else ``-``; None when no token has one); ``sentences`` the ``[start, end)`` token ranges
    between blank lines; ``clusters`` the entities, each a list of inclusive ``(start, end)``
    token spans."""

    name: str
    words: list[str]
    clusters: list[list[Span]] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    speakers: list[str] | None = None

    @property
    def num_mentions(self) -> int:
        return sum(len(c) for c in self.clusters)


def _read_lines(path: Path) -> list[str]:
    raw = read_bytes(path, "CoNLL")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None
    return text.split("\n")


class _DocumentBuilder:
    """Collects one document's tokens and brackets (the scorer's GetCoreference)."""

    def __init__(self, path: Path, name: str, lineno: int):
        self.path, self.name, self.begin_line = path, name, lineno
        self.words: list[str] = []
        self.speakers: list[str] = []
        self.sentences: list[tuple[int, int]] = []
        self.sentence_start = 0
        self.entity_index: dict[str, int] = {}  # entity id as written -> cluster index, by first appearance
        self.clusters: list[list[Span]] = []
        self.open: dict[str, list[tuple[int, int]]] = {}  # entity id -> stack of (start token, line)

    def _cluster(self, entity: str) -> list[Span]:
        if entity not in self.entity_index:
            self.entity_index[entity] = len(self.clusters)
            self.clusters.append([])
        return self.clusters[self.entity_index[entity]]

    def end_sentence(self) -> None:
        if len(self.words) > self.sentence_start:
            self.sentences.append((self.sentence_start, len(self.words)))
        self.sentence_start = len(self.words)

    def add_token(self, line: str, lineno: int) -> None:
        columns = line.split()
        token = len(self.words)
        self.words.append(columns[3] if len(columns) >= 5 else "_")
        self.speakers.append(columns[9] if len(columns) >= 12 else "-")
        coref = columns[-1]
        if coref in ("-", "_"):
            return
        singles, opens, closes = [], [], []
        if not _COLUMN.fullmatch(coref):
            raise CorpusError(f"{self.path}:{lineno}: malformed coreference column {coref!r} "
                              f"(expected '-', '_' or pieces '(N', 'N)', '(N)', usually joined by '|')")
        for match in _PIECES.finditer(coref):
            if match["single"] is not None:
                singles.append(match["single"])
            elif match["open"] is not None:
                opens.append(match["open"])
            elif match["close"] is not None:
                closes.append(match["close"])
        # The scorer's order: one-token mentions, then openings, then closings.
        for entity in singles:
            self._cluster(entity).append((token, token))
        for entity in opens:
            self._cluster(entity)
            self.open.setdefault(entity, []).append((token, lineno))
        for entity in closes:
            stack = self.open.get(entity)
            if not stack:
                raise CorpusError(f"{self.path}:{lineno}: '{entity})' closes a mention of entity {entity} "
                                  f"that was never opened (document {self.name!r})")
            start, _ = stack.pop()
            self._cluster(entity).append((start, token))

    def finish(self, lineno: int) -> CorefDocument:
        for entity, stack in self.open.items():
            if stack:
                _, open_line = stack[0]
                raise CorpusError(f"{self.path}:{open_line}: mention of entity {entity} opened here is never closed "
                                  f"(document {self.name!r} ends at line {lineno})")
        if not self.words:
            raise CorpusError(f"{self.path}:{self.begin_line}: document {self.name!r} has no tokens")
        self.end_sentence()
        speakers = self.speakers if any(s not in ("-", "_") for s in self.speakers) else None
        return CorefDocument(self.name, self.words, self.clusters, self.sentences, speakers)


def read_conll(path: str | os.PathLike) -> list[CorefDocument]:
    """All documents of a CoNLL coreference file (plain or ``.gz``), in file order."""
    path = Path(path)
    return parse_conll(_read_lines(path), path)


SUFFIXES = (".conll", ".gold_conll", ".v4_gold_conll", ".conll.gz", ".gold_conll.gz")


def read_coref_documents(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[CorefDocument]:
    """The documents of CoNLL files and folders of them (``*.conll``, ``*.gold_conll``, ``.gz``), in
    sorted file order; a folder without such files is a CorpusError."""
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    docs: list[CorefDocument] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(SUFFIXES))
            if not files:
                raise CorpusError(f"{path}: no CoNLL files ({', '.join(SUFFIXES)}) in this folder")
        else:
            files = [path]
        for f in files:
            docs.extend(read_conll(f))
    return docs


def parse_conll(lines: Iterable[str], path: str | os.PathLike = "<text>") -> list[CorefDocument]:
    """The documents of CoNLL lines (``path`` only names them in errors)."""
    documents: list[CorefDocument] = []
    begun: dict[str, int] = {}
    builder: _DocumentBuilder | None = None
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        begin = _BEGIN.match(line)
        if builder is None:
            if begin:
                name = begin.group(1).strip()
                if name in begun:
                    raise CorpusError(f"{path}:{lineno}: document {name!r} already began at line {begun[name]}")
                begun[name] = lineno
                builder = _DocumentBuilder(path, name, lineno)
            elif _END.search(line):
                raise CorpusError(f"{path}:{lineno}: '#end document' without '#begin document'")
            elif line.strip():
                raise CorpusError(f"{path}:{lineno}: token line outside a document (no '#begin document' before it)")
            continue
        if _END.search(line):
            documents.append(builder.finish(lineno))
            builder = None
        elif begin:
            raise CorpusError(f"{path}:{lineno}: '#begin document' inside document {builder.name!r} "
                              f"(begun at line {builder.begin_line}; '#end document' missing)")
        elif not line.strip():
            builder.end_sentence()
        else:
            builder.add_token(line, lineno)
    if builder is not None:
        raise CorpusError(f"{path}:{builder.begin_line}: document {builder.name!r} has no '#end document'")
    if not documents:
        raise CorpusError(f"{path}: no '#begin document' line (not a CoNLL coreference file?)")
    return documents


def read_conll_clusters(path: str | os.PathLike) -> dict[str, list[list[Span]]]:
    """Document name -> its clusters (lists of inclusive token spans), as the scorer reads them."""
    return {doc.name: doc.clusters for doc in read_conll(path)}


def coref_column(num_tokens: int, clusters: Iterable[Iterable[Span]]) -> list[str]:
    """The coreference column of each token for ``clusters`` (cluster i gets id i).

    Per token: openings (longest mention first, so that nested mentions of one entity pair
    up), one-token mentions, then closings (shortest first); ``-`` where there is none."""
    opens: list[list[tuple[int, str]]] = [[] for _ in range(num_tokens)]
    singles: list[list[str]] = [[] for _ in range(num_tokens)]
    closes: list[list[tuple[int, str]]] = [[] for _ in range(num_tokens)]
    for entity, cluster in enumerate(clusters):
        for start, end in cluster:
            if not 0 <= start <= end < num_tokens:
                raise ValueError(f"mention ({start}, {end}) of cluster {entity} is outside the {num_tokens} tokens")
            if start == end:
                singles[start].append(f"({entity})")
            else:
                opens[start].append((-end, f"({entity}"))
                closes[end].append((-start, f"{entity})"))
    column = []
    for i in range(num_tokens):
        pieces = [p for _, p in sorted(opens[i])] + singles[i] + [p for _, p in sorted(closes[i])]
        column.append("|".join(pieces) if pieces else "-")
    return column


def format_conll(documents: Iterable[CorefDocument]) -> str:
    """The text of a CoNLL coreference file: per token ``doc part index word coref`` (TAB-separated;
    the scorer reads only the last column), a blank line after each sentence."""
    out: list[str] = []
    for doc in documents:
        match = _NAME_PART.match(doc.name)
        doc_id, part = (match["doc"], match["part"]) if match else (doc.name or "-", "0")
        doc_id = re.sub(r"\s+", "_", doc_id)
        column = coref_column(len(doc.words), doc.clusters)
        sentences = doc.sentences or [(0, len(doc.words))]
        out.append(f"#begin document {doc.name}")
        for start, end in sentences:
            for i in range(start, end):
                word = re.sub(r"\s+", "_", doc.words[i]) or "_"
                out.append(f"{doc_id}\t{part}\t{i - start}\t{word}\t{column[i]}")
            out.append("")
        out.append("#end document")
    return "\n".join(out) + "\n"


def write_conll(path: str | os.PathLike, documents: Iterable[CorefDocument] | Mapping[str, CorefDocument]) -> None:
    """Write documents (e.g. a response: the key's documents with predicted clusters) atomically.

    Raises ValueError for what the format cannot hold: a document without tokens, a mention
    outside its document, two mentions of one entity that cross or share a boundary token
    (``(0, 3)`` and ``(2, 5)``), which would read back as other mentions."""
    docs = list(documents.values()) if isinstance(documents, Mapping) else list(documents)
    for doc in docs:
        if not doc.words:
            raise ValueError(f"document {doc.name!r} has no tokens")
    text = format_conll(docs)
    for doc, read_back in zip(docs, parse_conll(text.split("\n"), path)):
        if sorted(sorted(c) for c in doc.clusters if c) != sorted(sorted(c) for c in read_back.clusters):
            raise ValueError(f"document {doc.name!r}: mentions of one entity cross or share a boundary token; "
                             f"the CoNLL format cannot hold them")
    atomic_write_text(path, text)


__all__ = ["CorefDocument", "coref_column", "format_conll", "parse_conll", "read_conll", "read_conll_clusters",
           "read_coref_documents", "write_conll", "SUFFIXES"]
