"""``spanbert predict coref``, ``spanbert score coref`` (the CoNLL reference scorer's metrics on a
key and a response file), ``spanbert evaluate gap`` and ``spanbert score gap``; :func:`register`
attaches them to the CLI's groups (``finetune``/``evaluate coref`` come from the task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError, CorpusError
from spanbert.core.options import PRECISION_ALIAS, with_aliases
from spanbert.tasks.options import MaxExamples, Precision, Progress, report_scores


def score_coref_files(key: str | Path, response: str | Path, metric: str = "all") -> dict:
    """Score a response file against a key file (documents matched by name, e.g. ``(doc); part 0``).

    Returns the JSON object the command prints: per metric recall, precision and F1 in percent
    (unrounded) with their counts, mention identification, and ``conll_f1`` when MUC, B-cubed
    and CEAF-e were all computed. A key document absent from the response counts as one with
    no response mentions (as the reference scorer does); a response document absent from the
    key is a CorpusError."""
    from spanbert.tasks.coref.conll import read_conll_clusters
    from spanbert.tasks.coref.metrics import check_metrics, score_corpus

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
    metrics = score_coref_files(key, response, metric)
    report_scores(metrics, output)


@with_aliases(PRECISION_ALIAS)
def predict_coref_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned coreference model folder.")],
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="A text to resolve (one document); repeatable.")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="A UTF-8 text file: its whole content is one document.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the clusters as JSON (mentions with character offsets).")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML page colouring each cluster.")] = None,
    precision: Precision = "auto",
    singletons: Annotated[bool | None, typer.Option("--singletons/--no-singletons", help="Output one-mention clusters (default: as the model was fine-tuned).")] = None,
) -> None:
    """Find coreference clusters in raw text."""
    from spanbert.tasks.options import texts_to_predict
    from spanbert.tasks.coref.inference import CorefResolver, clusters_json

    if bool(text) == (input is not None):
        raise ConfigError("--text / --input: give exactly one")
    texts = texts_to_predict(text, input, per_line=False)
    resolved = CorefResolver(model, precision=precision, singletons=singletons).resolve(texts)
    if html is not None:
        from spanbert.core.atomic import atomic_write_text
        from spanbert.tasks.coref.html import render_page

        atomic_write_text(html, render_page(texts, [[[(m.start_char, m.end_char) for m in c] for c in r] for r in resolved]))
    if as_json:
        typer.echo(clusters_json(texts, resolved))
        return
    for i, clusters in enumerate(resolved, 1):
        typer.echo(f"text {i}: {len(clusters)} clusters")
        for c, mentions in enumerate(clusters, 1):
            typer.echo(f"  {c}: " + " | ".join(f"{m.text!r} [{m.start_char}-{m.end_char}]" for m in mentions))


def _gap_summary(scores: dict) -> str:
    o, m, f = scores["overall"], scores["masculine"], scores["feminine"]
    bias = "-" if scores["bias_f_over_m"] is None else f"{scores['bias_f_over_m']:.2f}"
    return (f"GAP ({scores['examples']} examples): F1 {o['f1']:.1f} (P {o['precision']:.1f} R {o['recall']:.1f}), "
            f"accuracy {o['accuracy']:.1f}; masculine F1 {m['f1']:.1f}, feminine F1 {f['f1']:.1f}, bias F/M {bias}")


def score_gap_command(
    key: Annotated[Path, typer.Option(help="GAP TSV with its header (gap-test.tsv, ...).")],
    response: Annotated[Path, typer.Option(help="System TSV: ID, A-coref, B-coref (TRUE/FALSE) per line, no header.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the scores here as JSON.")] = None,
) -> None:
    """Score GAP decisions like the GAP scorer: P/R/F1 of the coreferent decisions overall and per
    pronoun gender, the F/M bias, and decision and example accuracy."""
    from spanbert.tasks.coref.gap import read_gap, read_gap_response, score_gap

    examples = read_gap(key)
    answers = read_gap_response(response)
    extra = sorted(set(answers) - {e.id for e in examples})
    if extra:
        raise CorpusError(f"{response}: ID {extra[0]!r} is not in the key file {key}")
    scores = score_gap(examples, answers).to_json()
    report_scores(scores, output)


@with_aliases({**PRECISION_ALIAS, "--limit": "max_examples"})
def evaluate_gap_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned coreference model folder.")],
    data: Annotated[Path, typer.Option(help="GAP TSV with its header (gap-test.tsv, ...).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for predictions.tsv (GAP system format) and metrics.json.")],
    precision: Precision = "auto",
    max_examples: MaxExamples = None,
    at_most_one: Annotated[bool, typer.Option("--at-most-one/--any-match", help="When the pronoun's cluster matches both names, keep only the one mentioned nearest the pronoun (GAP's names are different people); --any-match keeps both.")] = True,
    progress: Progress = True,
) -> None:
    """Resolve each GAP text with a coreference model and score the pronoun-name decisions
    (a name is coreferent when the pronoun's predicted cluster holds a mention matching it).
    metrics.json also holds the scores under the other --at-most-one/--any-match rule."""
    import time

    from spanbert.core.atomic import atomic_write_json
    from spanbert.tasks.coref.gap import gap_decisions, predict_gap, read_gap, score_gap, write_gap_response
    from spanbert.tasks.coref.inference import CorefResolver

    examples = read_gap(data)[:max_examples] if max_examples else read_gap(data)
    resolver = CorefResolver(model, precision=precision, singletons=False)
    start = time.perf_counter()
    clusters = predict_gap(resolver, examples, progress=progress)
    seconds = time.perf_counter() - start
    decide = {rule: {e.id: gap_decisions(e, c, rule) for e, c in zip(examples, clusters)} for rule in (True, False)}
    scores = score_gap(examples, decide[at_most_one]).to_json()
    other = score_gap(examples, decide[not at_most_one]).to_json()
    output.mkdir(parents=True, exist_ok=True)
    write_gap_response(output / "predictions.tsv", decide[at_most_one])
    names = {True: "at_most_one", False: "any_match"}
    atomic_write_json(output / "metrics.json", {"model": str(model), "data": str(data), "seconds": round(seconds, 1),
                                                "rule": names[at_most_one], "metrics": scores,
                                                f"metrics_{names[not at_most_one]}": other})
    typer.echo(f"{len(examples)} texts in {seconds:.1f} s")
    typer.echo(_gap_summary(scores))
    typer.echo(f"files: {output}")


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``predict coref``, ``evaluate gap`` and ``score coref|gap`` to the CLI groups."""
    groups["score"].command("coref")(wrap(score_coref_command))
    groups["score"].command("gap")(wrap(score_gap_command))
    groups["evaluate"].command("gap")(wrap(evaluate_gap_command))
    groups["predict"].command("coref")(wrap(predict_coref_command))
