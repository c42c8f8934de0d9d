"""``spanbert finetune classify``, ``evaluate classify`` and ``predict classify``; :func:`register`
attaches them to the CLI groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.tasks.arguments import FinetuneArguments
from spanbert.tasks.options import (Dropout, MaxDevExamples, MaxExamples, MaxTrainExamples, Precision, Progress, finetune_command,
                        texts_to_predict, with_aliases)

TEXT_FIELD = typer.Option(help="Column holding the text.")
LABEL_FIELD = typer.Option(help="Column holding the label.")
PAIR_FIELD = typer.Option(help="Column of a second text (sentence-pair tasks).")


@finetune_command("classify", epochs=2.0, batch_size=32, lr=5e-5)
def finetune_classify_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Any BERT-family folder: ours (spanbert pretrain) or plain transformers.")],
    train: Annotated[str, typer.Option(help="Training data: .tsv/.csv with a header, .jsonl(.gz), a saved dataset folder or hf:NAME[:CONFIG][@SPLIT].")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the fine-tuned model, settings and dev results.")],
    dev: Annotated[str | None, typer.Option(help="Dev data: scored by accuracy at every epoch end (the best keeps its weights, see --select-best) and evaluated after training.")] = None,
    text_field: Annotated[str, TEXT_FIELD] = "sentence",
    label_field: Annotated[str, LABEL_FIELD] = "label",
    text_pair_field: Annotated[str | None, PAIR_FIELD] = None,
    max_seq_length: Annotated[int, typer.Option(min=1, help="Tokens per window, specials included.")] = 128,
    window_overlap: Annotated[int, typer.Option(min=0, help="Tokens shared by consecutive windows of a long text.")] = 32,
    aggregation: Annotated[str, typer.Option(help="How window logits combine: mean, max or first.")] = "mean",
    dropout: Dropout = None,
    max_train_examples: MaxTrainExamples = None,
    max_dev_examples: MaxDevExamples = None,
    args: FinetuneArguments = None,
) -> None:
    """Fine-tune a [CLS] text classifier (sentiment, topic, ...); long texts are split into windows."""
    from spanbert.tasks.classify.features import ClassifySettings
    from spanbert.tasks.classify.run import Fields, finetune_classify

    summary = finetune_classify(
        model, train, output, dev_source=dev, settings=ClassifySettings(max_seq_length, window_overlap, aggregation),
        fields=Fields(text_field, label_field, text_pair_field), args=args, max_train_examples=max_train_examples,
        max_dev_examples=max_dev_examples, eval_precision=args.mixed_precision, dropout=dropout,
    )
    if "train" not in summary:  # not the main process of a multi-process run
        return
    typer.echo(f"trained {summary['steps']} steps ({summary['epochs']} epochs) in {summary['train_seconds']:.0f} s; "
               f"final loss {summary['final_loss']:.4f}; labels {summary['labels']}")
    if "dev_metrics" in summary:
        typer.echo(f"dev ({summary['dev_examples']} examples): {json.dumps(summary['dev_metrics'])}")
    typer.echo(f"model: {output}")


@with_aliases({"--mixed-precision": "precision"})
def evaluate_classify_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned classifier folder.")],
    data: Annotated[str, typer.Option(help="Labelled data: .tsv/.csv, .jsonl(.gz), a saved dataset folder or hf:NAME.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for predictions.jsonl and metrics.json.")],
    text_field: Annotated[str | None, typer.Option(help="Column holding the text (default: the one trained on).")] = None,
    label_field: Annotated[str | None, typer.Option(help="Column holding the label (default: the one trained on).")] = None,
    text_pair_field: Annotated[str | None, PAIR_FIELD] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 64,
    precision: Precision = "auto",
    max_examples: MaxExamples = None,
    progress: Progress = True,
) -> None:
    """Classify a labelled data set; write predictions and accuracy / macro-F1 / per-class scores."""
    from spanbert.core.checkpoints import read_settings
    from spanbert.core.precision import check_precision
    from spanbert.tasks.classify.inference import SETTINGS_FILE, load_classifier, load_settings
    from spanbert.tasks.classify.run import Fields, evaluate_classify

    check_precision(precision)
    saved = read_settings(model, SETTINGS_FILE) or {}
    fields = Fields(text_field or saved.get("text_field", "sentence"), label_field or saved.get("label_field", "label"),
                    text_pair_field or saved.get("text_pair_field"))
    clf, tokenizer = load_classifier(model, trained=True)
    result = evaluate_classify(clf, tokenizer, data, load_settings(model), output, fields=fields, batch_size=batch_size,
                               precision=precision, progress=progress, max_examples=max_examples,
                               majority_label=saved.get("majority_label"))
    typer.echo(f"{result.examples} examples in {result.seconds:.1f} s")
    typer.echo(json.dumps({k: v for k, v in result.metrics.items() if k != "per_class"}, indent=2))
    typer.echo(f"files: {output}")


@with_aliases({"--mixed-precision": "precision"})
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
    """Attach ``finetune/evaluate/predict classify`` to the CLI groups."""
    groups["finetune"].command("classify")(wrap(finetune_classify_command))
    groups["evaluate"].command("classify")(wrap(evaluate_classify_command))
    groups["predict"].command("classify")(wrap(predict_classify_command))
