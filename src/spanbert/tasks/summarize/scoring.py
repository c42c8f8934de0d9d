"""ROUGE-1/2/L through the ``rouge-score`` package, several references, and ``spanbert score rouge``.

Per document, ``rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)``
scores the prediction against each reference. With several references the rule is one of:

* ``max`` (default): the reference with the highest ROUGE-1 F1 gives all three scores (the
  first such reference on ties). This is SciTLDR's "multi-target max" (allenai/scitldr,
  ``scripts/cal-rouge.py``: it keeps the whole score of the reference with the best ROUGE-1);
* ``mean``: each score averaged over the references (SciTLDR's "multi-target mean");
* ``max-per-metric``: for each ROUGE type separately, the reference with the highest F1 of
  that type, as ``RougeScorer.score_multi`` does.

Corpus scores are the mean over documents of the per-document precision, recall and F1,
reported in percent (x100) as papers do. ``rougeL`` is the LCS over the whole summary (no
sentence splitting), which is what a one-sentence SciTLDR summary needs.

``rouge-score`` is the optional ``summarize`` extra (``pip install 'spanbert[summarize]'``);
without it, scoring stops with a one-line :class:`~spanbert.core.errors.MissingExtraError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from spanbert.core.errors import ConfigError, CorpusError
from spanbert.core.extras import require
from spanbert.core.sources import iter_jsonl, open_text
from spanbert.tasks.summarize.data import row_id

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
MULTI_REFERENCE = ("max", "mean", "max-per-metric")
MultiReference = Literal["max", "mean", "max-per-metric"]


def require_rouge(feature: str = "ROUGE scoring") -> None:
    """A one-line :class:`~spanbert.core.errors.MissingExtraError` naming ``feature`` when
    ``rouge-score`` (the optional ``summarize`` extra) is not installed."""
    require("rouge_score.rouge_scorer", "summarize", feature)


def check_multi_reference(value: str, feature: str) -> str:
    """A command's ``--multi-reference`` value, checked with the ROUGE extra that ``feature`` needs."""
    require_rouge(feature)
    if value not in MULTI_REFERENCE:
        raise ConfigError(f"--multi-reference: {value!r} is not one of {', '.join(MULTI_REFERENCE)}")
    return value


@lru_cache(maxsize=1)
def rouge_scorer():
    """The shared ``RougeScorer`` (ROUGE-1/2/L, Porter stemming on)."""
    import logging

    rs = require("rouge_score.rouge_scorer", "summarize", "ROUGE scoring")
    absl = logging.getLogger("absl")  # rouge-score logs "Using default tokenizer." at INFO through absl
    level = absl.level
    absl.setLevel(logging.WARNING)
    try:
        return rs.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    finally:
        absl.setLevel(level)


def score_document(prediction: str, references: Sequence[str], multi_reference: MultiReference = "max"
                   ) -> dict[str, tuple[float, float, float]]:
    """``{rouge type: (precision, recall, f1)}`` of one prediction (fractions, 0..1) under the
    multi-reference rule (see the module doc)."""
    if multi_reference not in MULTI_REFERENCE:
        raise ConfigError(f"multi_reference: {multi_reference!r} is not one of {', '.join(MULTI_REFERENCE)}")
    if not references:
        raise ConfigError("references: a document needs at least one reference summary")
    scorer = rouge_scorer()
    per_ref = [scorer.score(ref, prediction) for ref in references]
    if multi_reference == "max":
        best = max(range(len(per_ref)), key=lambda i: (per_ref[i]["rouge1"].fmeasure, -i))
        return {t: tuple(per_ref[best][t]) for t in ROUGE_TYPES}  # type: ignore[misc]
    if multi_reference == "mean":
        return {t: tuple(sum(s[t][k] for s in per_ref) / len(per_ref) for k in range(3)) for t in ROUGE_TYPES}  # type: ignore[misc]
    out = {}
    for t in ROUGE_TYPES:
        best = max(range(len(per_ref)), key=lambda i: (per_ref[i][t].fmeasure, -i))
        out[t] = tuple(per_ref[best][t])
    return out  # type: ignore[return-value]


def rouge_corpus(predictions: Sequence[str], references: Sequence[Sequence[str]],
                 multi_reference: MultiReference = "max") -> dict[str, float]:
    """Mean per-document ROUGE in percent: ``rouge1``/``rouge2``/``rougeL`` (F1) and
    ``<type>_precision``/``<type>_recall``, plus ``documents``."""
    if len(predictions) != len(references):
        raise ConfigError(f"{len(predictions)} predictions for {len(references)} documents")
    totals = {t: [0.0, 0.0, 0.0] for t in ROUGE_TYPES}
    for pred, refs in zip(predictions, references):
        for t, prf in score_document(pred, refs, multi_reference).items():
            for k in range(3):
                totals[t][k] += prf[k]
    n = max(len(predictions), 1)
    metrics: dict[str, float] = {}
    for t in ROUGE_TYPES:
        metrics[t] = 100 * totals[t][2] / n
        metrics[f"{t}_precision"] = 100 * totals[t][0] / n
        metrics[f"{t}_recall"] = 100 * totals[t][1] / n
    metrics["documents"] = len(predictions)
    return metrics


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceDoc:
    id: str
    references: list[str]
    where: str  # file:line


def _text_list(value, where: str, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise CorpusError(f"{where}: field {field!r} must be a string or a list of strings, got {type(value).__name__}")


def read_references(path: str | os.PathLike) -> list[ReferenceDoc]:
    """Reference summaries by document from JSONL(.gz): ``{"id", "references"}`` rows, or a data
    file (SciTLDR ``paper_id`` + ``target``; generic ``id`` + ``summary``). Rows without an id
    get their line number, as :func:`~spanbert.tasks.summarize.data.read_summaries` gives them."""
    docs: list[ReferenceDoc] = []
    seen: dict[str, str] = {}
    for n, row in iter_jsonl(path):
        where = f"{path}:{n}"
        field = next((f for f in ("references", "target", "summary") if f in row), None)
        if field is None:
            raise CorpusError(f"{where}: missing field 'references' (or a data file's 'target'/'summary')")
        refs = [r for r in _text_list(row[field], where, field) if r.strip()]
        if not refs:
            raise CorpusError(f"{where}: field {field!r} has no non-empty reference summary")
        doc_id = row_id(row, where, str(n))
        if doc_id in seen:
            raise CorpusError(f"{where}: duplicate id {doc_id!r} (first at {seen[doc_id]})")
        seen[doc_id] = where
        docs.append(ReferenceDoc(doc_id, refs, where))
    if not docs:
        raise CorpusError(f"{path}: no references")
    return docs


def _summary_text(value, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)  # a list of selected sentences
    raise CorpusError(f"{where}: field 'summary' must be a string or a list of strings, got {type(value).__name__}")


def _is_jsonl(path: Path) -> bool:
    """Whether the first non-blank line of ``path`` is a JSON object (else: plain text lines)."""

    with open_text(path) as f:
        for line in f:
            if line.strip():
                try:
                    return isinstance(json.loads(line), dict)
                except json.JSONDecodeError:
                    return False
    return False


def read_predictions(path: str | os.PathLike, references: Sequence[ReferenceDoc], references_path: str = "") -> list[str]:
    """Predicted summaries aligned with ``references``.

    JSONL ``{"id", "summary"}`` rows are matched by id (an unknown or repeated id, or a
    reference without a prediction, is an error naming the line); plain text has one summary a
    line, in the references' order (the line counts must agree).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    refs_name = references_path or "the references"
    try:
        jsonl = _is_jsonl(path)
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise CorpusError(f"{path}: unreadable ({e})") from None
    if not jsonl:
    
        with open_text(path) as f:
            lines = f.read().splitlines()
        if len(lines) != len(references):
            line = min(len(lines), len(references)) + 1
            raise CorpusError(f"{path}:{line}: {len(lines)} prediction lines for {len(references)} documents in {refs_name}")
        return [line.strip() for line in lines]
    index = {doc.id: i for i, doc in enumerate(references)}
    found: dict[int, tuple[str, int]] = {}
    for n, row in iter_jsonl(path):
        where = f"{path}:{n}"
        for field in ("id", "summary"):
            if field not in row:
                raise CorpusError(f"{where}: missing field {field!r}")
        doc_id = row_id(row, where, "")
        if doc_id not in index:
            raise CorpusError(f"{where}: id {doc_id!r} is not in {refs_name}")
        i = index[doc_id]
        if i in found:
            raise CorpusError(f"{where}: id {doc_id!r} predicted twice (first at line {found[i][1]})")
        found[i] = (_summary_text(row["summary"], where), n)
    missing = [doc for i, doc in enumerate(references) if i not in found]
    if missing:
        raise CorpusError(f"{path}: no prediction for id {missing[0].id!r} ({missing[0].where})"
                          + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return [found[i][0] for i in range(len(references))]


def score_rouge_files(references: str | os.PathLike, predictions: str | os.PathLike,
                      multi_reference: MultiReference = "max") -> dict:
    """``spanbert score rouge``: metrics (see :func:`rouge_corpus`) plus how they were computed."""
    require_rouge("spanbert score rouge")  # before reading the files
    docs = read_references(references)
    preds = read_predictions(predictions, docs, str(references))
    metrics = rouge_corpus(preds, [d.references for d in docs], multi_reference)
    return {**metrics, "multi_reference": multi_reference, "stemming": True, "scale": "percent"}


__all__ = ["ROUGE_TYPES", "MULTI_REFERENCE", "require_rouge", "check_multi_reference", "rouge_scorer", "score_document", "rouge_corpus", "read_references",
           "read_predictions", "score_rouge_files", "ReferenceDoc"]
