"""Reading text-classification data (SST-2, ChnSentiCorp and the like) through ``datasets``.

Sources: a ``.tsv``/``.csv`` file with a header (TSV is read without quote processing, as
GLUE writes it), ``.jsonl``/``.json`` (optionally ``.gz``), a folder saved with
``Dataset.save_to_disk``, or ``hf:NAME[:CONFIG][@SPLIT]``. The text (and optional second text,
for sentence pairs) and label columns are named by the caller. Labels are kept as strings, so
``0``/``1`` and ``positive``/``negative`` behave alike; a missing column or an empty text is a
one-line :class:`~spanbert.core.errors.CorpusError` naming the file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from spanbert.core.errors import CorpusError, one_line
from spanbert.core.sources import load_dataset_source


@dataclass(frozen=True)
class ClassificationData:
    """Texts (and optional second texts) with their labels (``None`` where unlabelled)."""

    texts: list[str]
    labels: list[str] | None
    text_pairs: list[str] | None = None
    source: str = ""
    first_line: int = 2  # file line of item 0 (after a header), for error messages; 1 for JSONL, 0 for datasets

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, items: slice) -> "ClassificationData":
        """The items of a slice (``data[:100]``), with their file lines kept for errors."""
        if not isinstance(items, slice) or items.start not in (None, 0) or items.step not in (None, 1):
            raise TypeError("ClassificationData takes a leading slice, data[:n]")
        return replace(self, texts=self.texts[items], labels=None if self.labels is None else self.labels[items],
                       text_pairs=None if self.text_pairs is None else self.text_pairs[items])

    def where(self, i: int) -> str:
        """``file:line`` (or ``source[index]``) of item ``i``, for error messages."""
        return f"{self.source}:{i + self.first_line}" if self.first_line else f"{self.source}[{i}]"


def _label_str(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _load(source: str) -> tuple[object, int]:
    """A ``datasets.Dataset`` of ``source`` and the file line of its first row."""
    import datasets

    spec, _, split = source.partition("@") if source.startswith("hf:") else (source, "", "")
    ds = load_dataset_source(spec, split or "train")
    if ds is not None:
        return ds, 0
    path = Path(source)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder")
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    try:
        if suffix == ".tsv":
            return datasets.load_dataset("csv", data_files=str(path), split="train", delimiter="\t", quoting=3,
                                         keep_default_na=False), 2
        if suffix == ".csv":
            return datasets.load_dataset("csv", data_files=str(path), split="train", keep_default_na=False), 2
        if suffix in (".jsonl", ".json"):
            return datasets.load_dataset("json", data_files=str(path), split="train"), 1
    except Exception as e:  # noqa: BLE001 - pandas/arrow parse errors: report the file, one line
        raise CorpusError(f"{path}: cannot parse ({one_line(e.__cause__ or e, None)})") from None
    raise CorpusError(f"{path}: unknown format (expected .tsv, .csv, .jsonl or .json, optionally .gz)")


def read_classification(source: str | os.PathLike, text_field: str = "sentence", label_field: str | None = "label",
                        text_pair_field: str | None = None, require_labels: bool = True) -> ClassificationData:
    """Texts and labels of ``source``; ``label_field=None`` (or ``require_labels=False`` and no
    such column) reads unlabelled texts for prediction."""
    source = str(source)
    data, first_line = _load(source)
    columns = set(data.column_names)
    name = source
    wanted = [text_field] + ([text_pair_field] if text_pair_field else [])
    if label_field and (require_labels or label_field in columns):
        wanted.append(label_field)
    for column in wanted:
        if column not in columns:
            raise CorpusError(f"{name}: no column {column!r} (columns: {', '.join(sorted(columns))}); "
                              "choose with --text-field / --label-field")
    texts = [("" if t is None else str(t)) for t in data[text_field]]
    pairs = [("" if t is None else str(t)) for t in data[text_pair_field]] if text_pair_field else None
    labels = None
    if label_field in wanted:
        labels = []
        for i, value in enumerate(data[label_field]):
            label = "" if value is None else _label_str(value)
            if not label:
                where = f"{name}:{i + first_line}" if first_line else f"{name}[{i}]"
                raise CorpusError(f"{where}: empty {label_field!r}")
            labels.append(label)
    result = ClassificationData(texts, labels, pairs, name, first_line)
    for i, text in enumerate(texts):
        if not text.strip():
            raise CorpusError(f"{result.where(i)}: empty {text_field!r}")
    if not texts:
        raise CorpusError(f"{name}: no rows")
    return result


def label_set(labels: list[str]) -> list[str]:
    """The sorted label names (numerically when every label is an integer, so ``"10"`` follows ``"9"``)."""
    names = set(labels)
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def check_labels(data: ClassificationData, known: dict[str, int]) -> list[int]:
    """Label ids of ``data`` under the model's label set; an unknown label names its file and line."""
    assert data.labels is not None
    ids = []
    for i, label in enumerate(data.labels):
        if label not in known:
            raise CorpusError(f"{data.where(i)}: label {label!r} is not in the model's label set ({', '.join(known)})")
        ids.append(known[label])
    return ids


__all__ = ["ClassificationData", "read_classification", "label_set", "check_labels"]
