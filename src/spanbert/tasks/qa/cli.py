"""``spanbert predict qa``, ``score squad`` and ``score cmrc``; :func:`register` attaches them
to the CLI's groups (``finetune``/``evaluate qa`` come from the task)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError
from spanbert.core.options import PRECISION_ALIAS, with_aliases
from spanbert.tasks.options import Precision, one_text


@with_aliases(PRECISION_ALIAS)
def predict_qa_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned QA model folder.")],
    question: Annotated[list[str], typer.Option("--question", "-q", help="A question; repeatable (all about the same context).")],
    context: Annotated[str | None, typer.Option(help="The text to answer from.")] = None,
    context_file: Annotated[Path | None, typer.Option(help="Read the context from this UTF-8 text file (any length).")] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Answers shown per question.")] = 1,
    precision: Precision = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answer questions about a text given inline or as a file."""
    from spanbert.core.precision import check_precision
    from spanbert.tasks.qa.inference import QuestionAnswerer

    check_precision(precision)
    if top_k < 0:
        raise ConfigError(f"--top-k {top_k}: must be >= 0")
    context = one_text(context, context_file, ("--context", "--context-file"), "context")
    for q in question:
        if not q.strip():
            raise ConfigError("--question: empty question")
    qa = QuestionAnswerer(model, precision=precision)
    predictions = qa.answer(question, context)
    rows = []
    for q, p in zip(question, predictions):
        row = {"question": q, **p.to_dict()}
        row["alternatives"] = [{"text": c.text, "start": c.start, "end": c.end, "probability": round(c.probability, 4)}
                               for c in p.nbest[:top_k]]
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        answer = row["text"] if row["text"] else "(no answer)"
        where = f" [chars {row['start']}-{row['end']}]" if row["start"] >= 0 else ""
        typer.echo(f"Q: {row['question']}\nA: {answer}{where}  score {row['score']:.2f}, null score {row['null_score']:.2f}")
        for alt in row["alternatives"][1:]:
            typer.echo(f"   or: {alt['text'] or '(no answer)'}  p={alt['probability']:.3f}")


def score_squad_command(
    data: Annotated[Path, typer.Option(help="The SQuAD v1.1/v2.0 data file (JSON or .json.gz).")],
    predictions: Annotated[Path, typer.Option(help="predictions.json: {question id: answer text}.")],
    na_probs: Annotated[Path | None, typer.Option(help="SQuAD 2.0 no-answer probabilities / null odds: {question id: number}.")] = None,
    na_prob_thresh: Annotated[float, typer.Option(help="SQuAD 2.0: questions above this no-answer probability count as answered 'no answer'.")] = 1.0,
    version: Annotated[str, typer.Option(help="auto, v1.1 or v2.0 semantics.")] = "auto",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics here as JSON.")] = None,
) -> None:
    """Score predictions exactly as the official SQuAD v1.1 / v2.0 evaluation scripts do."""
    from spanbert.core.atomic import atomic_write_json
    from spanbert.tasks.qa.scoring import score_squad_files

    result = score_squad_files(data, predictions, na_probs, na_prob_thresh, version)  # type: ignore[arg-type]
    typer.echo(json.dumps(result.metrics, indent=2))
    if output is not None:
        atomic_write_json(output, result.metrics)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``predict qa``, ``score squad`` and ``score cmrc`` to the CLI groups."""
    groups["predict"].command("qa")(wrap(predict_qa_command))
    groups["score"].command("squad")(wrap(score_squad_command))
    from spanbert.tasks.qa.cmrc import score_cmrc_command

    groups["score"].command("cmrc")(wrap(score_cmrc_command))
