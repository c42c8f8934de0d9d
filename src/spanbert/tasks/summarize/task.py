"""Extractive summarization as a :class:`~spanbert.tasks.protocol.Task`: sentences scored as spans,
the best ones chosen under a length budget.

``evaluate`` writes ``predictions.jsonl`` (one ``{"id", "summary", "sentence_indices",
"scores"}`` line per document) and ``metrics.json``: ROUGE of the model's summaries, of the
lead-k baseline under the same budget, and of the greedy oracle choosing as many sentences
(the extractive upper bound), all under the same multi-reference rule. Fine-tuning with dev
data selects on the model's dev ROUGE-1 F1 (the headline, as SciTLDR reports it);
``finetune_summary.json`` keeps the dev lead-k and oracle ROUGE beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import CorpusError
from spanbert.tasks.protocol import Card, Task, TaskData, TrainingBatches, register_task
from spanbert.tasks.summarize.data import read_summaries
from spanbert.tasks.summarize.decoding import join_summary, lead_sentences, select_sentences
from spanbert.tasks.summarize.oracle import greedy_oracle, oracle_agreement, oracle_labels
from spanbert.tasks.summarize.scoring import check_multi_reference, require_rouge, rouge_corpus
from spanbert.tasks.summarize.settings import SummarizeSettings

logger = logging.getLogger(__name__)
HEAD_FIELDS = ("span_representation", "endpoint_combination", "use_cross_attention", "cross_attention_heads",
               "max_sentence_positions", "pos_weight")


@dataclass
class SummarizeOutputs:
    """Sentence scores (logits), chosen sentence indices and summary text of every document; the
    lead-k and oracle ROUGE ``(lead, oracle, k)`` once computed."""

    scores: list  # np.ndarray per document
    chosen: list[list[int]]
    summaries: list[str]
    baselines: tuple | None = None


@register_task
class Summarize(Task):
    """Fine-tune a model to pick summary sentences (sentences as spans, greedy ROUGE oracle labels)."""

    name, unit, metric = "summarize", "documents", "rouge1"
    settings_type = options = SummarizeSettings
    epochs, batch_size, lr, eval_batch_size, eval_unit = 3.0, 16, 5e-5, 8, "Documents"
    evaluate_summary = "Summarise every document of a data set; write predictions.jsonl and ROUGE (model, lead-k, oracle)."
    data_help = "SciTLDR-style JSONL(.gz) (source/target), generic JSONL (text/summary) or a saved dataset folder."
    model_types, predictor = ("spanbert_extsum",), "spanbert.tasks.summarize.inference:ExtractiveSummarizer"
    model_loader = "spanbert.tasks.summarize.model:load_summarizer"
    card = Card("Extractive summarizer fine-tuned with the `spanbert` toolkit", "summarization", ("extractive-summarization",),
                "Sentences are scored as spans with span-to-document cross-attention. "
                "`spanbert predict summarize --model dir --input doc.txt` and "
                "`spanbert.tasks.summarize.ExtractiveSummarizer(dir).summarize([text])` apply the length budget of "
                "`summarize_settings.json`; after `import spanbert.tasks.summarize.model`, "
                "`transformers.AutoModel.from_pretrained(dir)` loads the model.")

    def serve(self, api, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """Each text's ``summary`` and chosen ``sentences`` (document index, character offsets, score,
        text), under the request's budget (``max_sentences``/``max_words``) or the saved one."""
        summaries = api.summarize([it["text"] for it in items], max_sentences=options.get("max_sentences"),
                                  max_words=options.get("max_words"))
        return [{"summary": s.text, "sentences": [{"index": x.index, "start": x.start, "end": x.end, "score": float(x.score),
                                                   "text": x.text} for x in s.sentences]} for s in summaries]

    def settings_json(self, settings: SummarizeSettings) -> dict:
        return {"budget": asdict(settings.budget)}

    def settings_from_json(self, data: Mapping[str, Any]) -> SummarizeSettings:
        return SummarizeSettings(**data["budget"])

    def prepare(self, options: SummarizeSettings, args, *, dev: bool) -> None:
        """ROUGE (the optional extra) is named before any data is read: oracle labels and dev scores need it."""
        if options.labels == "oracle":
            require_rouge("spanbert finetune summarize (oracle labels)")
        elif dev:
            require_rouge("spanbert finetune summarize --dev (ROUGE)")

    def read(self, source, options: SummarizeSettings, *, split: str, labelled: bool = True) -> TaskData:
        return TaskData(str(source), read_summaries(source, require_references=labelled))

    def load_for_training(self, model_path, train: TaskData, options: SummarizeSettings):
        from spanbert.core.checkpoints import check_positions
        from spanbert.tasks.summarize.model import load_summarizer

        model, tokenizer = load_summarizer(model_path, max_segment_length=options.max_seq_length,
                                           span_representation=options.span_representation,
                                           use_cross_attention=options.cross_attention,
                                           cross_attention_heads=options.cross_attention_heads, pos_weight=options.pos_weight)
        check_positions(model.config, model.config.max_segment_length)
        return model, tokenizer, options

    def training_batches(self, train: TaskData, model, tokenizer, settings: SummarizeSettings, args) -> TrainingBatches:
        """Sentences labelled 0/1 by our greedy oracle (``oracle``) or the file's own (``file``)."""
        from spanbert.tasks.summarize.features import collate_documents, encode_document

        examples, oracle = train.examples, settings.labels == "oracle"
        missing = next((ex.id for ex in examples if ex.oracle_labels is None), None)
        if not oracle and missing is not None:
            raise CorpusError(f"document {missing!r} has no oracle labels in the file (source_labels); use --labels oracle")
        targets = [oracle_labels(ex.sentences, ex.references, settings.oracle_sentences) if oracle else ex.oracle_labels
                   for ex in examples]
        seg_len = model.config.max_segment_length
        feats = [encode_document(ex.sentences, tokenizer, seg_len, y) for ex, y in zip(examples, targets)]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        positives = [int(sum(y)) for y in targets]
        per_document = sum(positives) / len(positives)
        logger.info("%s: %d documents, %.2f oracle sentences each", train.source, len(examples), per_document)
        info = {"labels": settings.labels, "oracle_sentences": settings.oracle_sentences if oracle else None,
                "positive_sentences_per_document": round(per_document, 3),
                "documents_without_positive": sum(p == 0 for p in positives),
                "train_segments": sum(len(f.segments) for f in feats), "max_segment_length": seg_len,
                "head": {k: getattr(model.config, k) for k in HEAD_FIELDS}, "budget": asdict(settings.budget)}
        if oracle and missing is None:
            info["oracle_agreement_with_file_labels"] = oracle_agreement(examples)
        return TrainingBatches([f.num_tokens for f in feats],
                               lambda idx: collate_documents([feats[i] for i in idx], pad, labels=True), info=info)

    def infer(self, model, tokenizer, data: TaskData, settings: SummarizeSettings, *, batch_size: int, precision: str,
              progress: bool) -> SummarizeOutputs:
        from spanbert.tasks.summarize.inference import iter_sentence_scores

        docs = [ex.sentences for ex in data.examples]
        scores = list(iter_sentence_scores(model, tokenizer, docs, batch_size=batch_size, precision=precision,
                                           progress=progress))
        chosen = [select_sentences(s, doc, settings.budget) for s, doc in zip(scores, docs)]
        return SummarizeOutputs(scores, chosen, [join_summary(doc, c) for doc, c in zip(docs, chosen)])

    def dev_scores(self, outputs: SummarizeOutputs, data: TaskData, settings: SummarizeSettings) -> dict[str, float]:
        """The model's ROUGE-1/2/L (F1, precision, recall; percent); ROUGE-1 F1 is the headline."""
        return {k: float(v) for k, v in self._rouge(outputs.summaries, data, settings).items()}

    def tune(self, outputs: SummarizeOutputs, data: TaskData, settings: SummarizeSettings) -> tuple[Any, dict[str, Any]]:
        """Nothing is fitted; the summary records the dev lead-k and oracle ROUGE."""
        lead, oracle, _ = self._baselines(outputs, data, settings)
        return settings, {"dev_lead": lead, "dev_oracle": oracle}

    def score(self, outputs: SummarizeOutputs, data: TaskData, settings: SummarizeSettings) -> dict[str, Any]:
        lead, oracle, k = self._baselines(outputs, data, settings)
        return {"metrics": self._rouge(outputs.summaries, data, settings), "lead": lead,
                "oracle": {**oracle, "max_sentences": k}}

    def _rouge(self, summaries: list[str], data: TaskData, settings: SummarizeSettings) -> dict[str, float]:
        return rouge_corpus(summaries, [ex.references for ex in data.examples], settings.multi_reference)

    def _baselines(self, outputs: SummarizeOutputs, data: TaskData, settings: SummarizeSettings) -> tuple:
        """ROUGE of lead-k under the budget and of the greedy oracle choosing ``k`` sentences (the
        budget's, else any number), and ``k``: computed once per outputs."""
        if outputs.baselines is None:
            examples, budget = data.examples, settings.budget
            k = budget.max_sentences or max(len(ex.sentences) for ex in examples)
            lead = [join_summary(ex.sentences, lead_sentences(ex.sentences, budget)) for ex in examples]
            oracle = [join_summary(ex.sentences, sorted(greedy_oracle(ex.sentences, ex.references, k))) for ex in examples]
            outputs.baselines = self._rouge(lead, data, settings), self._rouge(oracle, data, settings), k
        return outputs.baselines

    def write(self, folder: Path, outputs: SummarizeOutputs, data: TaskData, settings: SummarizeSettings,
              metrics: dict[str, Any], seconds: float) -> None:
        lines = [json.dumps({"id": ex.id, "summary": summ, "sentence_indices": c, "scores": [round(float(x), 6) for x in s]},
                            ensure_ascii=False)
                 for ex, summ, c, s in zip(data.examples, outputs.summaries, outputs.chosen, outputs.scores)]
        atomic_write_text(folder / "predictions.jsonl", "\n".join(lines) + "\n")
        atomic_write_json(folder / "metrics.json", {
            "data": data.source, "documents": len(data), "seconds": round(seconds, 1), "budget": asdict(settings.budget),
            "multi_reference": settings.multi_reference, "stemming": True, "scale": "percent", **metrics})

    def evaluation_settings(self, settings: SummarizeSettings, given: Mapping[str, Any]) -> tuple[Any, bool]:
        """The saved budget with the options given (either length limit replaces both)."""
        if "max_sentences" in given or "max_words" in given:
            given = {"max_sentences": None, "max_words": None, **given}
        return replace(settings, **given), False

    def evaluate_parameters(self) -> list:
        import inspect
        from typing import Annotated

        import typer

        def option(name: str, kind: Any, default: Any = None, **info: Any) -> inspect.Parameter:
            return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                     annotation=Annotated[kind, typer.Option(**info)])

        # checked as the command line is parsed: a missing ROUGE extra or a bad rule is named before the model loads
        check = lambda value: check_multi_reference(value, "spanbert evaluate summarize")  # noqa: E731
        return [option("max_sentences", int | None, min=1, help="Sentences per summary (default: the model's saved budget)."),
                option("max_words", int | None, min=1, help="Words per summary."),
                option("block_trigrams", bool | None, help="Skip a sentence sharing a trigram with a chosen one."),
                option("multi_reference", str, "max", callback=check, help=(
                    "Several references: max (SciTLDR: the reference of best ROUGE-1), mean or max-per-metric."))]

    def dev_summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return metrics["metrics"]

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        lines = super().report(summary)[:1]
        if "dev_metrics" in summary:
            lines.append(f"dev ({summary['dev_documents']} documents): ROUGE-1/2/L {_slashed(summary['dev_metrics'])}"
                         f" (lead {_slashed(summary['dev_lead'])})")
        return lines

    def report_evaluation(self, result: Any) -> list[str]:
        return [f"{result.examples} documents in {result.seconds:.1f} s",
                *(f"{name:>6}: ROUGE-1 {m['rouge1']:.2f}  ROUGE-2 {m['rouge2']:.2f}  ROUGE-L {m['rougeL']:.2f}"
                  for name, m in zip(("model", "lead", "oracle"), (result.metrics[k] for k in ("metrics", "lead", "oracle"))))]


def _slashed(m: Mapping[str, float]) -> str:
    return f"{m['rouge1']:.2f}/{m['rouge2']:.2f}/{m['rougeL']:.2f}"


__all__ = ["Summarize", "SummarizeOutputs"]
