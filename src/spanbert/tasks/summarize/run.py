"""The summarization jobs behind the CLI: fine-tune and evaluate.

``evaluate`` writes ``predictions.jsonl`` (one ``{"id", "summary", "sentence_indices",
"scores"}`` line per document) and ``metrics.json``: ROUGE of the model's summaries, of the
lead-k baseline under the same budget, and of the greedy oracle choosing as many sentences
(the extractive upper bound), all under the same multi-reference rule. ``finetune`` with dev
data scores the model's dev ROUGE-1 F1 (the headline, as SciTLDR reports it) at every epoch end
and keeps the best weights.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError, CorpusError
from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.core.run_folder import staged_output
from spanbert.core.checkpoints import check_positions, model_card, save_task_model, set_dropout
from spanbert.tasks.summarize.data import SummaryExample, read_summaries
from spanbert.tasks.summarize.decoding import Budget, join_summary, lead_sentences, select_sentences
from spanbert.tasks.summarize.features import collate_documents, encode_document
from spanbert.tasks.summarize.inference import SETTINGS_FILE, iter_sentence_scores, settings_json
from spanbert.tasks.summarize.oracle import greedy_oracle, oracle_labels
from spanbert.tasks.summarize.scoring import MultiReference, rouge_corpus

logger = logging.getLogger(__name__)
LabelSource = Literal["oracle", "file"]


@dataclass
class EvaluationResult:
    metrics: dict[str, float]  # the model's ROUGE
    lead: dict[str, float]  # lead-k under the same budget
    oracle: dict[str, float]  # greedy oracle with as many sentences
    documents: int
    seconds: float
    output_dir: Path | None


def training_labels(examples: list[SummaryExample], source: LabelSource = "oracle",
                    oracle_sentences: int | None = 3) -> list[list[int]]:
    """0/1 labels per sentence: our greedy oracle (``oracle``) or the file's own (``file``)."""
    if source == "file":
        missing = next((ex.id for ex in examples if ex.oracle_labels is None), None)
        if missing is not None:
            raise CorpusError(f"document {missing!r} has no oracle labels in the file (source_labels); use --labels oracle")
        return [list(ex.oracle_labels) for ex in examples]  # type: ignore[arg-type]
    if source != "oracle":
        raise ConfigError(f"labels: {source!r} is not one of oracle, file")
    return [oracle_labels(ex.sentences, ex.references, oracle_sentences) for ex in examples]


def oracle_agreement(examples: list[SummaryExample]) -> float | None:
    """Share of documents whose greedy-oracle first choice is a sentence the file labels 1
    (SciTLDR's ``source_labels``: the one sentence of best ROUGE-1 F1), among documents
    where the oracle chooses anything."""
    agree = []
    for ex in examples:
        first = greedy_oracle(ex.sentences, ex.references, 1)
        if first and ex.oracle_labels is not None:
            agree.append(ex.oracle_labels[first[0]] == 1)
    return round(float(np.mean(agree)), 4) if agree else None


def summarize_examples(model, tokenizer, examples: list[SummaryExample], budget: Budget = Budget(), *,
                       batch_size: int = 8, precision: str = "auto", progress: bool = False
                       ) -> tuple[list[np.ndarray], list[list[int]], list[str]]:
    """The model's sentence scores, chosen sentence indices and summary text of every document."""
    scores = list(iter_sentence_scores(model, tokenizer, [ex.sentences for ex in examples], batch_size=batch_size,
                                       precision=precision, progress=progress))
    chosen = [select_sentences(s, ex.sentences, budget) for s, ex in zip(scores, examples)]
    return scores, chosen, [join_summary(ex.sentences, c) for ex, c in zip(examples, chosen)]


def evaluate_summarize(model, tokenizer, source: str | os.PathLike, output_dir: str | os.PathLike | None = None, *,
                       budget: Budget = Budget(), multi_reference: MultiReference = "max", batch_size: int = 8,
                       precision: str = "auto", progress: bool = True, max_examples: int | None = None,
                       examples: list[SummaryExample] | None = None) -> EvaluationResult:
    """Summarise every document of ``source`` and score the summaries, lead-k and the oracle."""
    examples = examples if examples is not None else read_summaries(source, max_examples=max_examples)
    start = time.perf_counter()
    scores, chosen, summaries = summarize_examples(model, tokenizer, examples, budget, batch_size=batch_size,
                                                   precision=precision, progress=progress)
    seconds = time.perf_counter() - start
    references = [ex.references for ex in examples]
    metrics = rouge_corpus(summaries, references, multi_reference)
    lead = rouge_corpus([join_summary(ex.sentences, lead_sentences(ex.sentences, budget)) for ex in examples],
                        references, multi_reference)
    k = budget.max_sentences or max(len(ex.sentences) for ex in examples)
    oracle = rouge_corpus([join_summary(ex.sentences, sorted(greedy_oracle(ex.sentences, ex.references, k)))
                           for ex in examples], references, multi_reference)
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        lines = [json.dumps({"id": ex.id, "summary": summ, "sentence_indices": c,
                             "scores": [round(float(x), 6) for x in s]}, ensure_ascii=False)
                 for ex, summ, c, s in zip(examples, summaries, chosen, scores)]
        atomic_write_text(out / "predictions.jsonl", "\n".join(lines) + "\n")
        atomic_write_json(out / "metrics.json", {
            "data": str(source), "documents": len(examples), "seconds": round(seconds, 1), "budget": asdict(budget),
            "multi_reference": multi_reference, "stemming": True, "scale": "percent",
            "metrics": metrics, "lead": lead, "oracle": {**oracle, "max_sentences": k},
        })
    return EvaluationResult(metrics, lead, oracle, len(examples), seconds, out)


def finetune_summarize(
    model_path: str | os.PathLike, train_source: str | os.PathLike, output_dir: str | os.PathLike, *,
    dev_source: str | os.PathLike | None = None, args: FinetuneArguments | None = None,
    labels: LabelSource = "oracle", oracle_sentences: int | None = 3, budget: Budget = Budget(),
    max_train_examples: int | None = None, max_dev_examples: int | None = None, dropout: float | None = None,
    eval_precision: str = "auto", multi_reference: MultiReference = "max", **head_fields,
) -> dict:
    """Fine-tune any BERT-family checkpoint as an extractive summarizer and save it.

    ``head_fields`` set :class:`~spanbert.tasks.summarize.model.ExtractiveSummarizerConfig` fields of
    a new head (``max_segment_length``, ``span_representation``, ``use_cross_attention``,
    ``cross_attention_heads``, ``pos_weight``, ...). Returns a summary, also written as
    ``finetune_summary.json``. With ``dev_source``, the model's dev ROUGE-1 F1 under ``budget`` is
    scored at every epoch end (or ``args.eval_every`` steps) and the best evaluation's weights are
    kept when ``args.select_best``.
    """
    from spanbert.tasks.summarize.model import load_summarizer

    args = args or FinetuneArguments(output_dir=str(output_dir))
    out = Path(output_dir)
    examples = read_summaries(train_source, max_examples=max_train_examples)
    targets = training_labels(examples, labels, oracle_sentences)
    torch.manual_seed(args.seed)  # the new head's initial weights: the same in every process and run
    model, tokenizer = load_summarizer(model_path, **head_fields)
    seg_len = model.config.max_segment_length
    check_positions(model.config, seg_len)
    if dropout is not None:
        set_dropout(model, dropout)
    feats = [encode_document(ex.sentences, tokenizer, seg_len, y) for ex, y in zip(examples, targets)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    positives = [int(sum(y)) for y in targets]
    logger.info("%s: %d documents, %.2f oracle sentences each", train_source, len(examples), float(np.mean(positives)))
    dev_examples, dev = None, None
    if dev_source is not None:
        dev_examples = read_summaries(dev_source, max_examples=max_dev_examples)
        dev_references = [ex.references for ex in dev_examples]

        def dev_rouge(m: torch.nn.Module) -> dict[str, float]:
            """The model's ROUGE-1/2/L (F1, precision, recall; percent) on dev; ROUGE-1 F1 is the headline."""
            _, _, summaries = summarize_examples(m, tokenizer, dev_examples, budget, precision=eval_precision)
            return {k: float(v) for k, v in rouge_corpus(summaries, dev_references, multi_reference).items()}

        dev = DevEvaluation(dev_rouge, "rouge1")
    result = finetune(model, [f.num_tokens for f in feats],
                      lambda idx: collate_documents([feats[i] for i in idx], pad, labels=True), args, dev=dev,
                      data={"model": model_path, "train": train_source, "dev": dev_source})
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun: one process saves and evaluates
        return {"steps": result.steps, "final_loss": result.last_loss}
    summary: dict = {
        "model": str(model_path), "train": str(train_source), "train_documents": len(examples),
        "labels": labels, "oracle_sentences": oracle_sentences if labels == "oracle" else None,
        "positive_sentences_per_document": round(float(np.mean(positives)), 3),
        "documents_without_positive": sum(p == 0 for p in positives),
        "train_segments": sum(len(f.segments) for f in feats), "max_segment_length": seg_len,
        "head": {k: getattr(model.config, k) for k in ("span_representation", "endpoint_combination", "use_cross_attention",
                                                        "cross_attention_heads", "max_sentence_positions", "pos_weight")},
        "budget": asdict(budget), **training_summary(result),
    }
    if labels == "oracle" and all(ex.oracle_labels is not None for ex in examples):
        summary["oracle_agreement_with_file_labels"] = oracle_agreement(examples)
    with staged_output(out) as final:  # the model, dev results, card and summary replace the folder together
        if dev_examples is not None:
            ev = evaluate_summarize(model, tokenizer, dev_source, final / "dev", budget=budget,
                                    multi_reference=multi_reference, precision=eval_precision, progress=args.progress,
                                    examples=dev_examples)
            summary.update({"dev": str(dev_source), "dev_documents": ev.documents, "dev_seconds": round(ev.seconds, 1),
                            "dev_metrics": ev.metrics, "dev_lead": ev.lead, "dev_oracle": ev.oracle})
        save_task_model(final, model, tokenizer, {SETTINGS_FILE: settings_json(budget)}, _card(summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return summary


def _card(summary: dict) -> str:
    return model_card(
        "Extractive summarizer fine-tuned with the `spanbert` toolkit", "summarization", ["extractive-summarization"],
        "Sentences are scored as spans with span-to-document cross-attention. "
        "`spanbert predict summarize --model dir --input doc.txt` and "
        "`spanbert.tasks.summarize.ExtractiveSummarizer(dir).summarize([text])` apply the length budget of "
        "`summarize_settings.json`; after `import spanbert.tasks.summarize.model`, "
        "`transformers.AutoModel.from_pretrained(dir)` loads the model.", summary)


__all__ = ["finetune_summarize", "evaluate_summarize", "summarize_examples", "training_labels", "oracle_agreement",
           "EvaluationResult"]
