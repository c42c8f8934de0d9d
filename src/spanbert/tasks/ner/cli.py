"""``spanbert finetune ner``, ``evaluate ner``, ``predict ner`` and ``score ner``.

The functions are registered on the command groups of :mod:`spanbert.cli` by :func:`register`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.tasks.options import (Dropout, MaxDevExamples, MaxTrainExamples, Precision, finetune_command, read_text_file,
                        with_aliases)


@finetune_command("ner", epochs=6.0, batch_size=32, lr=2e-4, aliases={"--max-train-sentences": "max_train_examples"})
def finetune_ner_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Any BERT-family folder: ours (spanbert pretrain) or plain transformers.")],
    train: Annotated[str, typer.Option(help="Training data: a CoNLL file (token ... tag), a saved dataset folder or hf:NAME.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the fine-tuned model, settings and dev results.")],
    dev: Annotated[str | None, typer.Option(help="Dev data: scored by entity F1 at every epoch end (the best keeps its weights, see --select-best); the decoding threshold is fitted on it, then it is evaluated.")] = None,
    max_span_width: Annotated[int, typer.Option(min=1, help="Longest candidate entity, in words.")] = 8,
    cross_attention: Annotated[bool, typer.Option("--cross-attention/--no-cross-attention", help="Let spans attend over all tokens.")] = True,
    negative_ratio: Annotated[float, typer.Option(min=0.0, help="Negative spans sampled per window = ceil(ratio x words); 0 = all spans.")] = 1.0,
    span_combination: Annotated[str, typer.Option(help="Endpoint combination: x,y or x,y,x*y (x start, y end).")] = "x,y",
    width_embedding_dim: Annotated[int, typer.Option(min=0, help="Span width embedding size (0: none).")] = 32,
    classifier_hidden_size: Annotated[int, typer.Option(min=1, help="Hidden layer of the span classifier.")] = 256,
    max_seq_length: Annotated[int, typer.Option(min=1, help="Subword tokens per window; longer sentences are cut into windows of whole words.")] = 128,
    scheme: Annotated[str, typer.Option(help="Tagging scheme of the data: auto, IOB2 (BIO), IOB1 or IOBES (BIOES).")] = "auto",
    fit_threshold: Annotated[bool, typer.Option(help="Fit the decoding threshold on --dev for best F1.")] = True,
    dropout: Dropout = None,
    max_train_examples: MaxTrainExamples = None,
    max_dev_examples: MaxDevExamples = None,
    args: FinetuneArguments = None,
) -> None:
    """Fine-tune a span NER model (enumerated spans, endpoint + width + cross-attention, negative sampling)."""
    from spanbert.tasks.ner.features import WindowConfig
    from spanbert.tasks.ner.run import SpanNerHead, finetune_ner

    summary = finetune_ner(
        model, train, output, dev_source=dev,
        head=SpanNerHead(max_span_width=max_span_width, span_combination=span_combination,
                         width_embedding_dim=width_embedding_dim, use_cross_attention=cross_attention,
                         negative_ratio=negative_ratio, classifier_hidden_size=classifier_hidden_size),
        windows=WindowConfig(max_seq_length), args=args, scheme=scheme, fit_dev_threshold=fit_threshold,
        max_train_examples=max_train_examples, max_dev_examples=max_dev_examples, dropout=dropout,
        eval_precision=args.mixed_precision,
    )
    if "train" not in summary:  # not the main process of a multi-process run
        return
    typer.echo(f"trained {summary['steps']} steps ({summary['epochs']} epochs) in {summary['train_seconds']:.0f} s; "
               f"final loss {summary['final_loss']:.4f}")
    if "dev_metrics" in summary:
        typer.echo(f"dev ({summary['dev_sentences']} sentences): {json.dumps(summary['dev_metrics'])}")
        typer.echo(f"decoding threshold: {summary.get('threshold')}")
    typer.echo(f"model: {output}")


@with_aliases({"--mixed-precision": "precision"})
def evaluate_ner_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned span NER model folder.")],
    data: Annotated[str, typer.Option(help="A CoNLL file (tagged: scored too), a saved dataset folder or hf:NAME.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for predictions.conll and metrics.json.")],
    threshold: Annotated[float | None, typer.Option(help="Decoding threshold (default: the saved one).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Sentence windows per forward pass.")] = 32,
    precision: Precision = "auto",
    scheme: Annotated[str, typer.Option(help="Tagging scheme of the data: auto, IOB2, IOB1 or IOBES.")] = "auto",
    split: Annotated[str, typer.Option(help="Split of a saved DatasetDict folder or hf: source.")] = "test",
) -> None:
    """Tag every sentence of a data set; write predictions.conll (token, gold, pred) and seqeval metrics."""
    from dataclasses import replace

    from spanbert.tasks.ner.decoding import DecodeConfig
    from spanbert.tasks.ner.model import load_ner_model, load_settings
    from spanbert.tasks.ner.run import evaluate_ner

    ner_model, tokenizer = load_ner_model(model, trained=True)
    settings = load_settings(model)
    if threshold is not None:
        settings = replace(settings, decoding=DecodeConfig(threshold))
    result = evaluate_ner(ner_model, tokenizer, data, settings, output, batch_size=batch_size, precision=precision,
                          scheme=scheme, split=split)
    typer.echo(f"{result.sentences} sentences in {result.seconds:.1f} s")
    if result.metrics:
        m = result.metrics
        typer.echo(json.dumps({"precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                               "per_type": {k: v["f1"] for k, v in m["per_type"].items()}}, indent=2))
    typer.echo(f"files: {output}")


@with_aliases({"--mixed-precision": "precision"})
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
    from spanbert.core.atomic import atomic_write_json
    from spanbert.tasks.ner.scoring import score_ner_files

    metrics = score_ner_files(gold, predictions, mode, scheme).to_json()
    typer.echo(json.dumps(metrics, indent=2))
    if output is not None:
        atomic_write_json(output, metrics)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``finetune/evaluate/predict ner`` and ``score ner`` to the CLI groups."""
    groups["finetune"].command("ner")(wrap(finetune_ner_command))
    groups["evaluate"].command("ner")(wrap(evaluate_ner_command))
    groups["predict"].command("ner")(wrap(predict_ner_command))
    groups["score"].command("ner")(wrap(score_ner_command))
