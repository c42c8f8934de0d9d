"""``spanbert finetune qa``, ``evaluate qa``, ``predict qa`` and ``score squad``.

The functions are registered on the command groups of :mod:`spanbert.cli`.
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


def _windows(max_seq_length: int, max_question_tokens: int, window_overlap: int):
    from spanbert.tasks.qa.features import WindowConfig

    return WindowConfig(max_seq_length, max_question_tokens, window_overlap)


@finetune_command("qa", epochs=2.0, batch_size=32, lr=5e-5,
                  aliases={"--max-train-questions": "max_train_examples", "--max-dev-questions": "max_dev_examples"})
def finetune_qa_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Any BERT-family folder: ours (spanbert pretrain) or plain transformers.")],
    train: Annotated[str, typer.Option(help="Training data: SQuAD JSON(.gz), MRQA JSONL(.gz), a saved dataset folder or hf:NAME.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the fine-tuned model, settings and dev results.")],
    dev: Annotated[str | None, typer.Option(help="Dev data: scored by F1 at every epoch end (the best keeps its weights, see --select-best) and evaluated after training (SQuAD 2.0: the null threshold is fitted on it).")] = None,
    max_seq_length: Annotated[int, typer.Option(min=1, help="Tokens per window, specials included.")] = 384,
    max_question_tokens: Annotated[int, typer.Option(min=1, help="Questions are truncated to this many tokens.")] = 64,
    window_overlap: Annotated[int, typer.Option(min=0, help="Context tokens shared by consecutive windows (an overlap, not a step).")] = 128,
    max_answer_tokens: Annotated[int, typer.Option(min=1)] = 30,
    n_best: Annotated[int, typer.Option(min=1, help="Start and end candidates per window.")] = 20,
    dropout: Dropout = None,
    max_train_examples: MaxTrainExamples = None,
    max_dev_examples: MaxDevExamples = None,
    args: FinetuneArguments = None,
) -> None:
    """Fine-tune a model for extractive QA (SQuAD 1.1, or 2.0 when the data has unanswerable questions)."""
    from spanbert.tasks.qa.decoding import DecodeConfig
    from spanbert.tasks.qa.run import finetune_qa

    summary = finetune_qa(
        model, train, output, dev_source=dev, windows=_windows(max_seq_length, max_question_tokens, window_overlap),
        decoding=DecodeConfig(n_best=n_best, max_answer_tokens=max_answer_tokens), args=args,
        max_train_examples=max_train_examples, max_dev_examples=max_dev_examples, eval_precision=args.mixed_precision,
        dropout=dropout,
    )
    if "train" not in summary:  # not the main process of a multi-process run
        return
    typer.echo(f"trained {summary['steps']} steps ({summary['epochs']} epochs) in {summary['train_seconds']:.0f} s; "
               f"final loss {summary['final_loss']:.4f}")
    if "dev_metrics" in summary:
        typer.echo(f"dev ({summary['dev_questions']} questions): {json.dumps(summary['dev_metrics'])}")
        if summary.get("null_threshold") is not None:
            typer.echo(f"null threshold fitted on dev: {summary['null_threshold']:.4f}")
    typer.echo(f"model: {output}")


@with_aliases({"--mixed-precision": "precision", "--max-questions": "max_examples"})
def evaluate_qa_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned QA model folder.")],
    data: Annotated[str, typer.Option(help="SQuAD JSON(.gz), MRQA JSONL(.gz), a saved dataset folder or hf:NAME.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for predictions.json, nbest_predictions.json, null_odds.json, metrics.json.")],
    fit_threshold: Annotated[bool, typer.Option(help="SQuAD 2.0: fit the null threshold on this data for best F1 (and report with it).")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 32,
    precision: Precision = "auto",
    max_examples: MaxExamples = None,
    progress: Progress = True,
) -> None:
    """Answer every question of a data set; write the official-format files and the official metrics."""
    from spanbert.core.precision import check_precision
    from spanbert.tasks.qa.model import load_qa_model, load_settings
    from spanbert.tasks.qa.run import evaluate_qa

    check_precision(precision)
    qa_model, tokenizer = load_qa_model(model, trained=True)
    result = evaluate_qa(qa_model, tokenizer, data, load_settings(model), output, fit_threshold=fit_threshold,
                         batch_size=batch_size, precision=precision, progress=progress, max_questions=max_examples)
    typer.echo(f"{result.questions} questions in {result.seconds:.1f} s (SQuAD {result.version} scoring)")
    typer.echo(json.dumps(result.metrics, indent=2))
    if result.null_threshold is not None:
        typer.echo(f"fitted null threshold: {result.null_threshold:.4f}")
    typer.echo(f"files: {output}")


@with_aliases({"--mixed-precision": "precision"})
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
    if (context is None) == (context_file is None):
        raise ConfigError("--context / --context-file: give exactly one")
    if context_file is not None:
        context = read_text_file(context_file)
    if not context.strip():
        raise ConfigError(f"{context_file or '--context'}: the context is empty")
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
    """Attach ``finetune/evaluate/predict qa`` and ``score squad`` to the CLI groups."""
    groups["finetune"].command("qa")(wrap(finetune_qa_command))
    groups["evaluate"].command("qa")(wrap(evaluate_qa_command))
    groups["predict"].command("qa")(wrap(predict_qa_command))
    groups["score"].command("squad")(wrap(score_squad_command))
    from spanbert.tasks.qa.cmrc import score_cmrc_command

    groups["score"].command("cmrc")(wrap(score_cmrc_command))
