"""``spanbert predict ner`` and ``score ner``; :func:`register` attaches them to the CLI's groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError
from spanbert.core.options import PRECISION_ALIAS, with_aliases
from spanbert.tasks.options import Precision, read_text_file, report_scores


@with_aliases(PRECISION_ALIAS)
def predict_ner_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned span NER model folder.")],
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="A text to tag; repeatable.")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="A .conll file (words in column 1) or a text file (one text a line).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="With a .conll input: write token<TAB>tag here.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Decoding threshold (default: the saved one).")] = None,
    precision: Precision = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find entities in texts given inline, as a text file (one a line) or as a CoNLL file."""
    from spanbert.tasks.ner.inference import EntityRecognizer

    if bool(text) == (input is not None):
        raise ConfigError("--text / --input: give exactly one")
    conll = input is not None and input.suffix.lower() in (".conll", ".tsv", ".bio", ".iob")
    if output is not None and not conll:
        raise ConfigError("--output: needs a CoNLL --input")
    words = texts = None
    if conll:
        from spanbert.tasks.ner.data import read_conll

        words = [list(s.tokens) for s in read_conll(input, require_tags=False).sentences]
    elif input is not None:
        texts = [line for line in read_text_file(input).splitlines() if line.strip()]
        if not texts:
            raise ConfigError(f"{input}: no text")
    else:
        texts = list(text or [])
        for i, t in enumerate(texts, 1):
            if not t.strip():
                raise ConfigError(f"--text #{i}: empty text")
    ner = EntityRecognizer(model, precision=precision, threshold=threshold)
    found = ner.predict_words(words) if words is not None else ner.predict(texts)
    sources = [" ".join(w) for w in words] if words is not None else texts
    if output is not None and words is not None:
        from spanbert.tasks.ner.data import write_conll
        from spanbert.tasks.ner.tags import Span, spans_to_tags

        rows = []
        for ws, ents in zip(words, found):
            tags = spans_to_tags(len(ws), [Span(e.start_word, e.end_word, e.label) for e in ents], ner.settings.scheme)
            rows.append(list(zip(ws, tags)))
        write_conll(output, rows)
    if as_json:
        typer.echo(json.dumps([{"text": s, "entities": [e.to_dict() for e in ents]} for s, ents in zip(sources, found)],
                              indent=2, ensure_ascii=False))
        return
    for s, ents in zip(sources, found):
        typer.echo(s)
        for e in ents:
            where = f"chars {e.start_char}-{e.end_char}" if e.start_char >= 0 else f"words {e.start_word}-{e.end_word}"
            typer.echo(f"  {e.label:<16} {e.text!r}  [{where}]  score {e.score:.2f}")
        if not ents:
            typer.echo("  (no entities)")


def score_ner_command(
    gold: Annotated[Path, typer.Option(help="Gold CoNLL file (tag in the last column).")],
    predictions: Annotated[Path, typer.Option(help="Predicted CoNLL file, token by token aligned with --gold (tag in the last column).")],
    mode: Annotated[str, typer.Option(help="default (conlleval-like, lenient) or strict (seqeval mode='strict').")] = "default",
    scheme: Annotated[str, typer.Option(help="Strict mode's scheme: IOB2 or IOBES.")] = "IOB2",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics here as JSON.")] = None,
) -> None:
    """Score NER predictions with seqeval's semantics: entity P/R/F1 per type, micro, macro, weighted."""
    from spanbert.tasks.ner.scoring import score_ner_files

    metrics = score_ner_files(gold, predictions, mode, scheme).to_json()
    report_scores(metrics, output)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``predict ner`` and ``score ner`` to the CLI groups (``finetune``/``evaluate ner`` come from the task)."""
    groups["predict"].command("ner")(wrap(predict_ner_command))
    groups["score"].command("ner")(wrap(score_ner_command))
