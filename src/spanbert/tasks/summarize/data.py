"""Reading summarization data, and splitting raw text into sentences with character offsets.

Sources (:func:`read_summaries`):

* SciTLDR-style JSONL(.gz): ``source`` (list of sentences), ``target`` (list of reference
  summaries, or one string), optional ``source_labels`` (0/1 per sentence), ``paper_id``;
* generic JSONL(.gz): ``text`` (a string, split by :func:`split_sentences`) and ``summary``
  (a string or a list of strings), optional ``id``;
* our own layout (:func:`to_dataset`): ``sentences``, ``references``, ``oracle_labels``, ``id``;
* a folder saved with ``datasets.Dataset.save_to_disk`` whose rows have any of these layouts.

Every problem in a row (invalid JSON, a missing field, a wrong type) is one
:class:`~spanbert.core.errors.CorpusError` line naming ``file:line`` (``folder[row]`` for saved
datasets) and the field. Empty (whitespace-only) source sentences are dropped with their label:
they have no tokens to form a span from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spanbert.core.errors import CorpusError
from spanbert.core.text import split_sentences
from spanbert.core.sources import iter_jsonl, load_dataset_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SummaryExample:
    """One document as a list of sentences, its reference summaries, and (when the data has
    them) 0/1 extractive oracle labels, one per sentence."""

    id: str
    sentences: list[str]
    references: list[str]
    oracle_labels: list[int] | None = None


def _string_list(row: dict, field: str, where: str, *, allow_string: bool) -> list[str]:
    value = row[field]
    if allow_string and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        kind = "a string or a list of strings" if allow_string else "a list of strings"
        raise CorpusError(f"{where}: field {field!r} must be {kind}, got {type(value).__name__}")
    return value


def row_id(row: dict, where: str, default: str) -> str:
    """The document id of a row: ``id`` or ``paper_id`` (a string or integer), else ``default``."""
    for key in ("id", "paper_id"):
        if key in row and row[key] is not None:
            if not isinstance(row[key], (str, int)) or isinstance(row[key], bool):
                raise CorpusError(f"{where}: field {key!r} must be a string or an integer, got {type(row[key]).__name__}")
            return str(row[key])
    return default


def example_from_row(row: dict, where: str, default_id: str, require_references: bool = True) -> SummaryExample:
    """A :class:`SummaryExample` from one SciTLDR-style or generic row; ``where`` names it in errors."""
    doc_id = row_id(row, where, default_id)
    sentence_field = "source" if "source" in row else "sentences" if "sentences" in row else None
    if sentence_field is not None:
        sentences = _string_list(row, sentence_field, where, allow_string=False)
        ref_field = "target" if sentence_field == "source" else "references"
        label_field = "source_labels" if sentence_field == "source" else "oracle_labels"
        labels = row.get(label_field) or None  # our own dataset view stores "no labels" as []
        if labels is not None:
            if not isinstance(labels, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v in (0, 1) for v in labels):
                raise CorpusError(f"{where}: field {label_field!r} must be a list of 0/1 integers")
            if len(labels) != len(sentences):
                raise CorpusError(f"{where}: field {label_field!r} has {len(labels)} labels for {len(sentences)} sentences")
    elif "text" in row:
        if not isinstance(row["text"], str):
            raise CorpusError(f"{where}: field 'text' must be a string, got {type(row['text']).__name__}")
        sentences = [row["text"][s:e] for s, e in split_sentences(row["text"])]
        ref_field, labels = "summary", None
    else:
        raise CorpusError(f"{where}: missing field 'source' (SciTLDR layout) or 'text' (generic layout)")
    if ref_field in row and row[ref_field] is not None:
        references = [r for r in _string_list(row, ref_field, where, allow_string=True) if r.strip()]
        if require_references and not references:
            raise CorpusError(f"{where}: field {ref_field!r} has no non-empty reference summary")
    elif require_references:
        raise CorpusError(f"{where}: missing field {ref_field!r} (the reference summaries)")
    else:
        references = []
    keep = [i for i, s in enumerate(sentences) if s.strip()]
    if not keep:
        raise CorpusError(f"{where}: the document has no non-empty sentence")
    if len(keep) < len(sentences):
        logger.info("%s: dropped %d empty sentence(s)", where, len(sentences) - len(keep))
    return SummaryExample(doc_id, [sentences[i] for i in keep], references,
                          None if labels is None else [labels[i] for i in keep])


def _rows(source: str) -> Iterator[tuple[str, str, dict]]:
    """``(where, default id, row)`` for each row of a JSONL(.gz) file or saved dataset folder."""
    path = Path(source)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder")
    data = load_dataset_source(path)
    if data is not None:
        for i, row in enumerate(data):
            yield f"{path}[{i}]", str(i), row
        return
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if not name.endswith((".jsonl", ".json")):
        raise CorpusError(f"{path}: unknown format (expected .jsonl or .json lines, optionally .gz, or a saved dataset folder)")
    for n, row in iter_jsonl(path):
        yield f"{path}:{n}", str(n), row


def read_summaries(source: str | os.PathLike, *, require_references: bool = True,
                   max_examples: int | None = None) -> list[SummaryExample]:
    """Documents of ``source`` (SciTLDR-style or generic JSONL(.gz), or a saved dataset folder).

    Ids come from ``id``/``paper_id``, else the file line (row index for folders); a repeated id
    is an error, since scores and predictions are matched by id.
    """
    examples: list[SummaryExample] = []
    seen: dict[str, str] = {}
    for where, default_id, row in _rows(str(source)):
        ex = example_from_row(row, where, default_id, require_references)
        if ex.id in seen:
            raise CorpusError(f"{where}: duplicate id {ex.id!r} (first at {seen[ex.id]})")
        seen[ex.id] = where
        examples.append(ex)
        if max_examples and len(examples) >= max_examples:
            break
    if not examples:
        raise CorpusError(f"{source}: no documents")
    return examples


def to_dataset(examples: list[SummaryExample]):
    """A ``datasets.Dataset`` view with columns ``id``, ``sentences``, ``references``,
    ``oracle_labels`` (an empty list where a document has none)."""
    import datasets

    return datasets.Dataset.from_dict({
        "id": [ex.id for ex in examples],
        "sentences": [ex.sentences for ex in examples],
        "references": [ex.references for ex in examples],
        "oracle_labels": [ex.oracle_labels or [] for ex in examples],
    }, features=datasets.Features({
        "id": datasets.Value("string"),
        "sentences": datasets.Sequence(datasets.Value("string")),
        "references": datasets.Sequence(datasets.Value("string")),
        "oracle_labels": datasets.Sequence(datasets.Value("int8")),
    }))


def load_summary_dataset(source: str | os.PathLike, **kwargs):
    """:func:`read_summaries` as a ``datasets.Dataset`` (see :func:`to_dataset`)."""
    return to_dataset(read_summaries(source, **kwargs))


__all__ = ["SummaryExample", "read_summaries", "to_dataset", "load_summary_dataset", "iter_jsonl",
           "example_from_row", "row_id"]
