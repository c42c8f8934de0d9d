"""``spanbert score coref``: the CoNLL reference scorer's metrics on a key and a response file.

The functions are registered on the command groups of :mod:`spanbert.cli` by :func:`register`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import CorpusError


def score_coref_files(key: str | Path, response: str | Path, metric: str = "all") -> dict:
    """Score a response file against a key file (documents matched by name, e.g. ``(doc); part 0``).

    Returns the JSON object the command prints: per metric recall, precision and F1 in percent
    (unrounded) with their counts, mention identification, and ``conll_f1`` when MUC, B-cubed
    and CEAF-e were all computed. A key document absent from the response counts as one with
    no response mentions (as the reference scorer does); a response document absent from the
    key is a CorpusError."""
    from .conll import read_conll_clusters
    from .metrics import check_metrics, score_corpus

    metrics = check_metrics(metric)
    key_docs = read_conll_clusters(key)
    response_docs = read_conll_clusters(response)
    extra = [name for name in response_docs if name not in key_docs]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise CorpusError(f"{response}: document {extra[0]!r}{more} is not in the key file {key}")
    scores = score_corpus(key_docs, response_docs, metrics)
    out = {"key": str(key), "response": str(response)}
    out.update(scores.to_json())
    out["documents_without_response"] = sum(1 for name in key_docs if name not in response_docs)
    return out


def score_coref_command(
    key: Annotated[Path, typer.Option(help="Gold CoNLL-2012 coreference file (#begin document ... ; brackets in the last column).")],
    response: Annotated[Path, typer.Option(help="System CoNLL file in the same format; its documents must be in --key.")],
    metric: Annotated[str, typer.Option(help="all, or one or more (comma-separated) of muc, bcub, ceafm, ceafe, blanc.")] = "all",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics here as JSON.")] = None,
) -> None:
    """Score coreference with the reference scorer v8.01's semantics: MUC, B-cubed, CEAF-m, CEAF-e, BLANC
    and the CoNLL average (mean F1 of MUC, B-cubed, CEAF-e), in percent."""
    from ..atomic import atomic_write_json

    metrics = score_coref_files(key, response, metric)
    typer.echo(json.dumps(metrics, indent=2))
    if output is not None:
        atomic_write_json(output, metrics)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``score coref`` to the CLI groups."""
    groups["score"].command("coref")(wrap(score_coref_command))
