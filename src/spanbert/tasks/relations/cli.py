"""``spanbert predict relations`` and ``spanbert score semeval``; :func:`register` attaches them
to the CLI groups (``finetune``/``evaluate relations`` come from the task).

    spanbert predict relations --model re/ --text "The <e1>author</e1> wrote the <e2>book</e2>."
    spanbert score semeval --key key.txt --predictions predictions.txt
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError
from spanbert.core.options import PRECISION_ALIAS, with_aliases
from spanbert.tasks.options import Precision


@with_aliases(PRECISION_ALIAS)
def predict_relations_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned relation model folder.")],
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="A sentence with <e1>subject</e1> and <e2>object</e2> marked (<e1:TYPE> gives a type); repeatable.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="A file of marked sentences (one a line, or SemEval blocks) or TACRED-style .json/.jsonl.")] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Labels shown per sentence.")] = 1,
    batch_size: Annotated[int, typer.Option(min=1, help="Sentences per forward pass.")] = 64,
    precision: Precision = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per sentence).")] = False,
) -> None:
    """Classify the relation between the marked entities of your sentences."""
    from spanbert.tasks.relations.data import parse_marked_sentence, read_relations, RelationExample
    from spanbert.tasks.relations.inference import RelationClassifier

    if not text and input_file is None:
        raise ConfigError("--text / --input: give sentences with --text (repeatable) or a file with --input")
    examples = []
    for n, sentence in enumerate(text or [], 1):
        words, subj, obj, st, ot = parse_marked_sentence(sentence, f"--text {n}")
        examples.append(RelationExample(str(n), words, subj, obj, None, st, ot, f"--text {n}"))
    if input_file is not None:
        examples.extend(read_relations(input_file, labeled=False))
    classifier = RelationClassifier(model, batch_size=batch_size, precision=precision)
    predictions = classifier.predict_examples(examples)
    rows = []
    for ex, p in zip(examples, predictions):
        top = sorted(p.probabilities.items(), key=lambda kv: -kv[1])[:max(1, top_k)]
        rows.append({"id": ex.id, "text": ex.marked_text(), "label": p.label, "score": round(p.score, 4),
                     "top": [{"label": k, "probability": round(v, 4)} for k, v in top]})
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    for row in rows:
        typer.echo(f"{row['id']}\t{row['label']}\t{row['score']:.3f}\t{row['text']}")
        for alt in row["top"][1:]:
            typer.echo(f"\t  or {alt['label']}  p={alt['probability']:.3f}")


def score_semeval_command(
    key: Annotated[Path, typer.Option(help="Answer key: 'id<TAB>label' lines with directed labels (e.g. answer_key.txt written by evaluate relations).")],
    predictions: Annotated[Path, typer.Option(help="Proposed answers in the same format.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics here as JSON.")] = None,
    allow_missing: Annotated[bool, typer.Option(help="Score key ids without a prediction as skipped (the official script allows it) instead of failing.")] = False,
) -> None:
    """Score answers exactly as the official SemEval-2010 Task 8 scorer v1.2 does (official: macro-F1, 9+1-way with direction)."""
    from spanbert.core.atomic import atomic_write_json
    from spanbert.tasks.relations.scoring import score_semeval_files

    result = score_semeval_files(key, predictions, allow_missing=allow_missing)
    typer.echo(json.dumps(result, indent=2, sort_keys=True))
    if output is not None:
        atomic_write_json(output, result)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``predict relations`` and ``score semeval`` to the CLI groups."""
    groups["predict"].command("relations")(wrap(predict_relations_command))
    groups["score"].command("semeval")(wrap(score_semeval_command))
