"""Coreference resolution as a :class:`~spanbert.tasks.protocol.Task`: the coarse-to-fine model,
trained one document per micro-batch.

``evaluate`` writes ``response.conll`` (the key's documents with predicted clusters, readable
by the reference scorer and by ``spanbert score coref``) and ``metrics.json`` (MUC, B-cubed,
CEAF-m, CEAF-e, BLANC and the CoNLL F1, in percent). Fine-tuning with dev data selects on the
dev CoNLL F1 (the mean F1 of MUC, B-cubed and CEAF-e). ``--train``, ``--dev`` and ``--data``
take files or folders of them, repeatable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spanbert.core.atomic import atomic_write_json
from spanbert.core.errors import ConfigError
from spanbert.tasks.coref.conll import CorefDocument, read_coref_documents, write_conll
from spanbert.tasks.coref.settings import CorefSettings
from spanbert.tasks.protocol import Card, Task, TaskData, TrainingBatches, register_task

F1S = ("muc", "bcub", "ceafe")  # the three whose mean is the CoNLL F1


def _scores(outputs: list, data: TaskData, metrics: tuple[str, ...] | None = None):
    from spanbert.tasks.coref.metrics import METRICS, score_corpus

    return score_corpus({d.name: d.clusters for d in data.examples},
                        {d.name: p for d, p in zip(data.examples, outputs)}, metrics or METRICS)


@register_task
class Coref(Task):
    """Fine-tune a coarse-to-fine coreference model (one document per micro-batch; --head-lr for a faster head)."""

    name, unit, metric = "coref", "documents", "conll_f1"
    settings_type = options = CorefSettings
    repeatable_sources = True  # several CoNLL files or folders
    epochs, batch_size, lr, eval_batch_size, eval_unit = 20.0, 1, 1e-4, 1, "Documents"
    evaluate_summary = "Resolve every document; write response.conll and the scorer's metrics (MUC, B3, CEAF, BLANC, CoNLL F1)."
    data_help = "a CoNLL coreference file or a folder of them (.conll, .gold_conll, .gz)."
    model_types, predictor = ("spanbert_coref",), "spanbert.tasks.coref.inference:CorefResolver"
    model_loader = "spanbert.tasks.coref.model:load_coref_model"
    finetune_aliases = {"--max-train-documents": "max_train_examples"}
    card = Card("Coreference model (coarse-to-fine) fine-tuned with the `spanbert` toolkit", "token-classification",
                ("coreference",), "`import spanbert.tasks.coref.model` registers the head; then "
                "`transformers.AutoModel.from_pretrained(dir)` loads it (`model_type: spanbert_coref`). "
                "`spanbert predict coref --model dir --text ...` and `spanbert.tasks.coref.inference.CorefResolver(dir)"
                ".resolve([...])` resolve raw text.")

    def settings_json(self, settings: CorefSettings) -> dict:
        return {"max_segment_length": settings.max_segment_length, "singleton_threshold": settings.singleton_threshold}

    def serve(self, api, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """Each text's ``clusters``: lists of mentions with their text and character offsets."""
        return [{"clusters": [[{"text": m.text, "start": m.start_char, "end": m.end_char} for m in cluster]
                              for cluster in clusters]} for clusters in api.resolve([it["text"] for it in items])]

    def read(self, source, options: CorefSettings, *, split: str, labelled: bool = True) -> TaskData:
        names = [str(s) for s in ([source] if isinstance(source, (str, os.PathLike)) else source)]
        return TaskData(", ".join(names), read_coref_documents(names), {"sources": names})

    def prepare(self, options: CorefSettings, args, *, dev: bool) -> None:
        """One document per micro-batch: a step's ``--batch-size`` documents are ``--grad-accum`` x
        processes; singletons need the mention scores trained as probabilities."""
        from accelerate import PartialState

        processes = PartialState().num_processes
        if args.batch_size != args.grad_accum * processes:
            raise ConfigError(f"--batch-size {args.batch_size}: coreference trains one document per micro-batch, so it "
                              f"must be --grad-accum x processes = {args.grad_accum} x {processes}")
        if options.singletons and options.mention_loss_weight <= 0:
            raise ConfigError("singletons: needs mention_loss_weight > 0 (the mention scores must be trained as probabilities)")

    def load_for_training(self, model_path, train: TaskData, options: CorefSettings):
        from spanbert.core.checkpoints import check_positions
        from spanbert.tasks.coref.model import load_coref_model

        model, tokenizer = load_coref_model(model_path, **options.head())
        check_positions(model.config, options.max_segment_length, "--max-segment-length")
        return model, tokenizer, options.with_singletons(options.singletons)

    def training_batches(self, train: TaskData, model, tokenizer, settings: CorefSettings, args) -> TrainingBatches:
        """One document per item; longer ones cut to a random window of ``max_training_segments``."""
        from spanbert.tasks.coref.features import SegmentConfig, TrainingCollator, encode_document

        segments = SegmentConfig(settings.max_segment_length, settings.max_span_width)
        encoded = [e for e in (encode_document(tokenizer, d, segments) for d in train.examples) if len(e.candidate_spans)]
        if not encoded:
            raise ConfigError(f"{train.extra['sources']}: no document with candidate spans to learn from")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        collate = TrainingCollator(encoded, pad, settings.max_training_segments or None, seed=args.seed)
        return TrainingBatches(collate.lengths(), collate, info={
            "train_documents": len(encoded),
            "train_words": sum(e.num_words for e in encoded), "train_mentions": sum(d.num_mentions for d in train.examples),
            "mentions_not_candidates": sum(e.gold_not_candidates for e in encoded),
            "train_segments": sum(len(e.segments) for e in encoded), "max_segment_length": settings.max_segment_length,
            "max_training_segments": settings.max_training_segments or None, "head": settings.head(), "lr": args.lr,
            "head_lr": args.head_lr,
            "singleton_threshold": settings.singleton_threshold})

    def infer(self, model, tokenizer, data: TaskData, settings: CorefSettings, *, batch_size: int, precision: str,
              progress: bool) -> list:
        """Each document's predicted clusters (word spans), one forward pass per document."""
        from tqdm.auto import tqdm

        from spanbert.tasks.coref.features import SegmentConfig
        from spanbert.tasks.coref.inference import predict_document

        if batch_size != 1:
            raise ConfigError(f"--batch-size {batch_size}: coreference resolves one document per forward pass")
        segments = SegmentConfig(settings.max_segment_length, model.config.max_span_width)
        return [predict_document(model, tokenizer, d, segments, precision, settings.singleton_threshold)
                for d in tqdm(data.examples, disable=not progress, desc="coref", unit="doc", dynamic_ncols=True)]

    def tune(self, outputs: list, data: TaskData, settings: CorefSettings) -> tuple[CorefSettings, dict[str, Any]]:
        """Nothing is fitted: this gives finetune_summary.json the headline ``dev_conll_f1``."""
        return settings, {"dev_conll_f1": self.score(outputs, data, settings)["conll_f1"]}

    def score(self, outputs: list, data: TaskData, settings: CorefSettings) -> dict[str, Any]:
        return _scores(outputs, data).to_json()

    def dev_scores(self, outputs: list, data: TaskData, settings: CorefSettings) -> dict[str, float]:
        """CoNLL F1 on dev (the mean F1 of MUC, B-cubed and CEAF-e, percent), with those three F1s."""
        scores = _scores(outputs, data, F1S)
        return {"conll_f1": 100 * float(scores.conll_f1),
                **{f"{name}_f1": 100 * float(counts.f1) for name, counts in scores.metrics.items()}}

    def write(self, folder: Path, outputs: list, data: TaskData, settings: CorefSettings, metrics: dict[str, Any],
              seconds: float) -> None:
        write_conll(folder / "response.conll", [CorefDocument(d.name, d.words, p, d.sentences, d.speakers)
                                                for d, p in zip(data.examples, outputs)])
        atomic_write_json(folder / "metrics.json", {"documents": len(data), "seconds": round(seconds, 2),
                                                    "singleton_threshold": settings.singleton_threshold, "metrics": metrics})

    def evaluate_parameters(self) -> list:
        import inspect
        from typing import Annotated

        import typer

        option = typer.Option("--singletons/--no-singletons",
                              help="Output one-mention clusters (default: as the model was fine-tuned).")
        return [inspect.Parameter("singletons", inspect.Parameter.KEYWORD_ONLY, default=None,
                                  annotation=Annotated[bool | None, option])]

    def evaluation_settings(self, settings: CorefSettings, given: Mapping[str, Any]) -> tuple[CorefSettings, bool]:
        return settings.with_singletons(given.get("singletons")), False

    def dev_summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return {"conll_f1": metrics["conll_f1"], **{f"{name}_f1": metrics[name]["f1"] for name in F1S}}

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        lines = super().report(summary)[:1]
        if "dev_conll_f1" in summary:
            lines.append(f"dev ({summary['dev_documents']} documents): CoNLL F1 {summary['dev_conll_f1']:.2f}")
        return lines

    def report_evaluation(self, result) -> list[str]:
        m = result.metrics
        return [f"{result.examples} documents in {result.seconds:.1f} s",
                json.dumps({name: round(m[name]["f1"], 2) for name in F1S} | {"conll_f1": round(m["conll_f1"], 2)})]


__all__ = ["Coref"]
