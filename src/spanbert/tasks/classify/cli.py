"""``spanbert predict classify``; :func:`register` attaches it to the CLI's predict group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.options import PRECISION_ALIAS, with_aliases
from spanbert.tasks.options import Precision, texts_to_predict


@with_aliases(PRECISION_ALIAS)
def predict_classify_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned classifier folder.")],
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="A text to classify; repeatable.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="A UTF-8 file with one text per line.")] = None,
    precision: Precision = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Classify texts given inline or one per line of a file (texts of any length)."""
    from spanbert.core.precision import check_precision
    from spanbert.tasks.classify.inference import TextClassifier

    check_precision(precision)
    texts = texts_to_predict(text, input_file)
    for t, p in zip(texts, TextClassifier(model, precision=precision).classify(texts)):
        if as_json:
            typer.echo(json.dumps({"text": t, "label": p.label, "score": round(p.score, 6),
                                   "probabilities": {k: round(v, 6) for k, v in p.probabilities.items()}}, ensure_ascii=False))
        else:
            typer.echo(f"{p.label}\t{p.score:.3f}\t{t if len(t) <= 80 else t[:77] + '...'}")


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``predict classify`` to the CLI groups (``finetune``/``evaluate classify`` come from the task)."""
    groups["predict"].command("classify")(wrap(predict_classify_command))
