"""``spanbert predict summarize`` and ``score rouge``; :func:`register` attaches them to the CLI's groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.options import PRECISION_ALIAS, with_aliases
from spanbert.tasks.options import Precision, one_text, report_scores


@with_aliases(PRECISION_ALIAS)
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

    text = one_text(text, input, ("--text", "--input"))
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
    from spanbert.tasks.summarize.scoring import check_multi_reference, score_rouge_files

    check_multi_reference(multi_reference, "spanbert score rouge")
    result = score_rouge_files(references, predictions, multi_reference)  # type: ignore[arg-type]
    report_scores(result, output)


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """Attach ``predict summarize`` and ``score rouge`` (``finetune``/``evaluate summarize`` come from the task)."""
    groups["predict"].command("summarize")(wrap(predict_summarize_command))
    groups["score"].command("rouge")(wrap(score_rouge_command))
