"""The ``spanbert`` commands of this task; :func:`register` attaches them to the CLI groups.

    spanbert finetune relations --model BASE --train TRAIN_FILE.TXT --dev TEST_FILE_FULL.TXT --output re/
    spanbert evaluate relations --model re/ --data TEST_FILE_FULL.TXT --output re/test
    spanbert predict relations --model re/ --text "The <e1>author</e1> wrote the <e2>book</e2>."
    spanbert score semeval --key key.txt --predictions predictions.txt
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.tasks.options import (Dropout, MaxDevExamples, MaxExamples, MaxTrainExamples, Precision, Progress, finetune_command,
                        with_aliases)


@finetune_command("relations", epochs=3.0, batch_size=32, lr=5e-5)
def finetune_relations_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Any BERT-family folder: ours (spanbert pretrain) or plain transformers.")],
    train: Annotated[str, typer.Option(help="Training data: a SemEval-2010 Task 8 file, TACRED-style .json/.jsonl, or a saved dataset folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the fine-tuned model, its card and summary, and dev results.")],
    dev: Annotated[str | None, typer.Option(help="Dev data: scored at every epoch end (the best keeps its weights, see --select-best) and evaluated after training (written to OUTPUT/dev).")] = None,
    pooling: Annotated[str, typer.Option(help="markers: the subject-start and object-start marker states, concatenated; cls: the [CLS] state only.")] = "markers",
    marker_style: Annotated[str, typer.Option(help="wrap: markers around the entities; replace: one marker instead of each entity (as the SpanBERT paper did).")] = "wrap",
    no_relation_label: Annotated[str | None, typer.Option(help="Label left out of micro P/R/F1 (default: Other or no_relation when the data has it).")] = None,
    max_seq_length: Annotated[int, typer.Option(min=1, help="Tokens per sentence, specials included; longer ones are cut around the entities.")] = 128,
    dropout: Dropout = None,
    max_train_examples: MaxTrainExamples = None,
    max_dev_examples: MaxDevExamples = None,
    args: FinetuneArguments = None,
) -> None:
    """Fine-tune a relation classifier on sentences with a marked subject (e1) and object (e2)."""
    from spanbert.tasks.relations.run import finetune_relations

    summary = finetune_relations(
        model, train, output, dev_source=dev, pooling=pooling, marker_style=marker_style,
        no_relation_label=no_relation_label, max_seq_length=max_seq_length, args=args,
        max_train_examples=max_train_examples, max_dev_examples=max_dev_examples, eval_precision=args.mixed_precision,
        dropout=dropout,
    )
    if "train" not in summary:  # not the main process of a multi-process run
        return
    typer.echo(f"trained {summary['steps']} steps ({summary['epochs']} epochs) in {summary['train_seconds']:.0f} s; "
               f"final loss {summary['final_loss']:.4f}; {summary['labels']} labels")
    if "dev_metrics" in summary:
        typer.echo(f"dev ({summary['dev_examples']} examples): {json.dumps(_headline(summary['dev_metrics']))}")
    typer.echo(f"model: {output}")


def _headline(metrics: dict) -> dict:
    keys = ("official_macro_f1", "micro_precision", "micro_recall", "micro_f1", "accuracy")
    return {k: round(metrics[k], 2) for k in keys if k in metrics}


@with_aliases({"--mixed-precision": "precision"})
def evaluate_relations_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned relation model folder.")],
    data: Annotated[str, typer.Option(help="Labelled data: a SemEval-2010 Task 8 file, TACRED-style .json/.jsonl, or a saved dataset folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for predictions (SemEval: predictions.txt + answer_key.txt), predictions.jsonl, metrics.json.")],
    batch_size: Annotated[int, typer.Option(min=1, help="Sentences per forward pass.")] = 64,
    precision: Precision = "auto",
    max_examples: MaxExamples = None,
    progress: Progress = True,
) -> None:
    """Classify every example of a data set; write the predictions and the metrics (SemEval: the official ones)."""
    from spanbert.tasks.relations.model import load_relation_model
    from spanbert.tasks.relations.run import evaluate_relations

    rel_model, tokenizer = load_relation_model(model)
    result = evaluate_relations(rel_model, tokenizer, data, output, batch_size=batch_size, precision=precision,
                                progress=progress, max_examples=max_examples)
    typer.echo(f"{result.examples} examples in {result.seconds:.1f} s ({result.scoring} scoring)")
    typer.echo(json.dumps(_headline(result.metrics), indent=2))
    typer.echo(f"files: {output}")


@with_aliases({"--mixed-precision": "precision"})
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
    """Attach this task's commands to the ``finetune``/``evaluate``/``predict``/``score`` groups."""
    groups["finetune"].command("relations")(wrap(finetune_relations_command))
    groups["evaluate"].command("relations")(wrap(evaluate_relations_command))
    groups["predict"].command("relations")(wrap(predict_relations_command))
    groups["score"].command("semeval")(wrap(score_semeval_command))
