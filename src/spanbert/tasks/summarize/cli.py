"""``spanbert finetune summarize``, ``evaluate summarize``, ``predict summarize`` and ``score rouge``.

The functions are registered on the command groups of :mod:`spanbert.cli` by :func:`register`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.tasks.options import (Dropout, MaxDevExamples, MaxExamples, MaxTrainExamples, Precision, Progress, finetune_command,
                        read_text_file, with_aliases)


def _budget(max_sentences: int | None, max_words: int | None, block_trigrams: bool):
    from spanbert.tasks.summarize.decoding import Budget

    return Budget(max_sentences, max_words, block_trigrams)


@finetune_command("summarize", epochs=3.0, batch_size=16, lr=5e-5)
def finetune_summarize_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Any BERT-family folder: ours (spanbert pretrain) or plain transformers.")],
    train: Annotated[str, typer.Option(help="Training data: SciTLDR-style JSONL(.gz) (source/target), generic JSONL (text/summary) or a saved dataset folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the fine-tuned model, settings and dev results.")],
    dev: Annotated[str | None, typer.Option(help="Dev data: scored by ROUGE-1 F1 at every epoch end (the best keeps its weights, see --select-best) and evaluated after training (ROUGE, with lead-k and the oracle).")] = None,
    max_seq_length: Annotated[int, typer.Option(min=1, help="Tokens per encoder segment ([CLS]/[SEP] included); longer documents use several.")] = 512,
    labels: Annotated[str, typer.Option(help="Training labels: 'oracle' (our greedy ROUGE oracle) or 'file' (the data's source_labels).")] = "oracle",
    oracle_sentences: Annotated[int, typer.Option(min=1, help="The greedy oracle picks at most this many sentences per document.")] = 3,
    span_representation: Annotated[str, typer.Option(help="endpoint, self_attentive or endpoint+self_attentive.")] = "endpoint",
    cross_attention: Annotated[bool, typer.Option(help="Span-to-document cross-attention before scoring.")] = True,
    cross_attention_heads: Annotated[int, typer.Option(min=1)] = 4,
    pos_weight: Annotated[float, typer.Option(help="BCE weight of the (rare) oracle sentences.")] = 1.0,
    max_sentences: Annotated[int | None, typer.Option(min=1, help="Summary budget saved with the model: sentences.")] = 1,
    max_words: Annotated[int | None, typer.Option(min=1, help="Summary budget saved with the model: words.")] = None,
    block_trigrams: Annotated[bool, typer.Option(help="Skip a sentence sharing a trigram with a chosen one.")] = False,
    dropout: Dropout = None,
    max_train_examples: MaxTrainExamples = None,
    max_dev_examples: MaxDevExamples = None,
    args: FinetuneArguments = None,
) -> None:
    """Fine-tune a model to pick summary sentences (sentences as spans, greedy ROUGE oracle labels)."""
    from spanbert.tasks.summarize.run import finetune_summarize
    from spanbert.tasks.summarize.scoring import require_rouge

    if labels == "oracle" or dev is not None:  # oracle labels and dev ROUGE need rouge-score: say so before loading
        require_rouge("spanbert finetune summarize" + (" (oracle labels)" if labels == "oracle" else " --dev (ROUGE)"))

    summary = finetune_summarize(
        model, train, output, dev_source=dev, labels=labels, oracle_sentences=oracle_sentences,  # type: ignore[arg-type]
        budget=_budget(max_sentences, max_words, block_trigrams), args=args,
        max_train_examples=max_train_examples, max_dev_examples=max_dev_examples, dropout=dropout,
        eval_precision=args.mixed_precision, max_segment_length=max_seq_length, span_representation=span_representation,
        use_cross_attention=cross_attention, cross_attention_heads=cross_attention_heads, pos_weight=pos_weight,
    )
    if "train" not in summary:  # not the main process of a multi-process run
        return
    typer.echo(f"trained {summary['steps']} steps ({summary['epochs']} epochs) in {summary['train_seconds']:.0f} s; "
               f"final loss {summary['final_loss']:.4f}")
    if "dev_metrics" in summary:
        m, lead = summary["dev_metrics"], summary["dev_lead"]
        typer.echo(f"dev ({summary['dev_documents']} documents): ROUGE-1/2/L {m['rouge1']:.2f}/{m['rouge2']:.2f}/{m['rougeL']:.2f}"
                   f" (lead {lead['rouge1']:.2f}/{lead['rouge2']:.2f}/{lead['rougeL']:.2f})")
    typer.echo(f"model: {output}")


@with_aliases({"--mixed-precision": "precision"})
def evaluate_summarize_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned summarizer folder.")],
    data: Annotated[str, typer.Option(help="SciTLDR-style or generic JSONL(.gz), or a saved dataset folder, with reference summaries.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for predictions.jsonl and metrics.json.")],
    max_sentences: Annotated[int | None, typer.Option(min=1, help="Sentences per summary (default: the model's saved budget).")] = None,
    max_words: Annotated[int | None, typer.Option(min=1, help="Words per summary.")] = None,
    block_trigrams: Annotated[bool | None, typer.Option(help="Skip a sentence sharing a trigram with a chosen one.")] = None,
    multi_reference: Annotated[str, typer.Option(help="Several references: max (SciTLDR: the reference of best ROUGE-1), mean or max-per-metric.")] = "max",
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per forward pass.")] = 8,
    precision: Precision = "auto",
    max_examples: MaxExamples = None,
    progress: Progress = True,
) -> None:
    """Summarise every document of a data set; write predictions.jsonl and ROUGE (model, lead-k, oracle)."""
    from spanbert.tasks.summarize.inference import ExtractiveSummarizer
    from spanbert.tasks.summarize.run import evaluate_summarize
    from spanbert.tasks.summarize.scoring import MULTI_REFERENCE, require_rouge

    require_rouge("spanbert evaluate summarize")  # before summarising the whole data set
    if multi_reference not in MULTI_REFERENCE:
        raise ConfigError(f"--multi-reference: {multi_reference!r} is not one of {', '.join(MULTI_REFERENCE)}")
    summarizer = ExtractiveSummarizer(model, precision=precision, batch_size=batch_size)
    budget = summarizer.budget_for(max_sentences, max_words, block_trigrams)
    result = evaluate_summarize(summarizer.model, summarizer.tokenizer, data, output, budget=budget,
                                multi_reference=multi_reference, batch_size=batch_size,  # type: ignore[arg-type]
                                precision=precision, progress=progress, max_examples=max_examples)
    typer.echo(f"{result.documents} documents in {result.seconds:.1f} s")
    for name, m in (("model", result.metrics), ("lead", result.lead), ("oracle", result.oracle)):
        typer.echo(f"{name:>6}: ROUGE-1 {m['rouge1']:.2f}  ROUGE-2 {m['rouge2']:.2f}  ROUGE-L {m['rougeL']:.2f}")
    typer.echo(f"files: {output}")


@with_aliases({"--mixed-precision": "precision"})
def predict_summarize_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned summarizer folder.")],
    text: Annotated[str | None, typer.Option(help="The text to summarise.")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Read the text from this UTF-8 file (one document, any length).")] = None,
    max_sentences: Annotated[int | None, typer.Option(min=1, help="Sentences in the summary (default: the model's saved budget).")] = None,
    max_words: Annotated[int | None, typer.Option(min=1, help="Words in the summary.")] = None,
    block_trigrams: Annotated[bool | None, typer.Option(help="Skip a sentence sharing a trigram with a chosen one.")] = None,
    precision: Precision = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: the summary, chosen sentences with offsets and scores.")] = False,
) -> None:
    """Summarise a text given inline or as a file: the best sentences, in document order."""
    from spanbert.tasks.summarize.inference import ExtractiveSummarizer

    if (text is None) == (input is None):
        raise ConfigError("--text / --input: give exactly one")
    if input is not None:
        text = read_text_file(input)
    if not text.strip():
        raise ConfigError(f"{input or '--text'}: the text is empty")
    summarizer = ExtractiveSummarizer(model, precision=precision)
    summary = summarizer.summarize([text], max_sentences=max_sentences, max_words=max_words,
                                   block_trigrams=block_trigrams)[0]
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(summary.text)
    for s in summary.sentences:
        typer.echo(f"  [sentence {s.index}, chars {s.start}-{s.end}, score {s.score:.3f}]", err=True)


def score_rouge_command(
    references: Annotated[Path, typer.Option(help="JSONL(.gz) with id + references (or a data file: SciTLDR paper_id + target, or id + summary).")],
    predictions: Annotated[Path, typer.Option(help="JSONL {\"id\", \"summary\"}, or plain text with one summary a line in the references' order.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics here as JSON.")] = None,
    multi_reference: Annotated[str, typer.Option(help="Several references: max (SciTLDR: the reference of best ROUGE-1 gives all scores), mean or max-per-metric (rouge-score's score_multi).")] = "max",
) -> None:
    """ROUGE-1/2/L precision, recall and F1 (percent) through the rouge-score package, stemming on."""
    from spanbert.core.atomic import atomic_write_json
    from spanbert.tasks.summarize.scoring import MULTI_REFERENCE, score_rouge_files

    if multi_reference not in MULTI_REFERENCE:
        raise ConfigError(f"--multi-reference: {multi_reference!r} is not one of {', '.join(MULTI_REFERENCE)}")
    result = score_rouge_files(references, predictions, multi_reference)  # type: ignore[arg-type]
    typer.echo(json.dumps(result, indent=2))
    if output is not None:
        atomic_write_json(output, result)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach this task's commands to the ``finetune``/``evaluate``/``predict``/``score`` groups."""
    groups["finetune"].command("summarize")(wrap(finetune_summarize_command))
    groups["evaluate"].command("summarize")(wrap(evaluate_summarize_command))
    groups["predict"].command("summarize")(wrap(predict_summarize_command))
    groups["score"].command("rouge")(wrap(score_rouge_command))
