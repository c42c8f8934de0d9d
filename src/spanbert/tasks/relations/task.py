"""Relation extraction as a :class:`~spanbert.tasks.protocol.Task`: entity markers added to the
tokenizer, a head over the subject/object marker states (or [CLS]).

``evaluate`` writes ``predictions.jsonl`` (id, gold, predicted label, its probability) and
``metrics.json``. For SemEval-2010 Task 8 data it also writes the official scorer's files,
``predictions.txt`` and ``answer_key.txt`` (``id<TAB>label``, directed labels), and the metrics
are the official scorer's (``spanbert score semeval`` on those two files prints the same);
for other data (TACRED style) they are accuracy and micro P/R/F1 without the no-relation label.
Fine-tuning with dev data selects on ``f1``: the official macro-F1, or that micro-F1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError
from spanbert.tasks.protocol import Card, Task, TaskData, TrainingBatches, register_task
from spanbert.tasks.relations.data import (check_labels, entity_types, guess_no_relation_label, is_semeval_labels,
                                           label_set, read_relations)
from spanbert.tasks.relations.scoring import format_answer_lines, relation_metrics, score_semeval
from spanbert.tasks.relations.settings import RelationSettings

logger = logging.getLogger(__name__)
HEADLINE = ("official_macro_f1", "micro_precision", "micro_recall", "micro_f1", "accuracy")  # what the commands print


class RelationOutputs(NamedTuple):
    """One :class:`~spanbert.tasks.relations.inference.RelationPrediction` per example, and whether
    they are scored as SemEval-2010 Task 8 (the model's labels are SemEval's and the ids unique numbers)."""

    predictions: list
    semeval: bool


def _headline(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: round(metrics[k], 2) for k in HEADLINE if k in metrics}


@register_task
class Relations(Task):
    """Fine-tune a relation classifier on sentences with a marked subject (e1) and object (e2)."""

    name, unit, metric = "relations", "examples", "f1"
    settings_type = options = RelationSettings
    epochs, batch_size, lr, eval_batch_size, eval_unit = 3.0, 32, 5e-5, 64, "Sentences"
    evaluate_summary = "Classify every example of a data set; write the predictions and the metrics (SemEval: the official ones)."
    data_help = "a SemEval-2010 Task 8 file, TACRED-style .json/.jsonl, or a saved dataset folder."
    model_types, predictor = ("spanbert_relation",), "spanbert.tasks.relations.inference:RelationClassifier"
    card = Card("Relation classifier fine-tuned with the `spanbert` toolkit", "text-classification",
                ("relation-extraction", "entity-markers"),
                "`spanbert predict relations --model DIR --text 'The <e1>author</e1> wrote the <e2>book</e2>.'`, or "
                "`spanbert.tasks.relations.RelationClassifier(DIR).predict([...])`, marks the entities and classifies. "
                "After `import spanbert.tasks.relations.model`, `transformers.AutoModelForSequenceClassification."
                "from_pretrained(DIR)` loads the head; given marked text (marker tokens such as `[S] .. [/S]`, "
                "`[O] .. [/O]`, saved with the tokenizer) it finds the markers itself.")

    def serve(self, api, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """``label``, ``score`` and every label's ``probabilities`` of each marked sentence."""
        return [{"label": p.label, "score": float(p.score), "probabilities": {k: float(v) for k, v in p.probabilities.items()}}
                for p in api.predict([it["text"] for it in items])]

    def read(self, source, options: RelationSettings, *, split: str, labelled: bool = True) -> TaskData:
        split = "validation" if split == "test" else split  # evaluate has always read a DatasetDict's validation split
        return TaskData(str(source), read_relations(source, split=split, labeled=labelled))

    def load_for_training(self, model_path, train: TaskData, options: RelationSettings):
        """The labels are those of the training data (saved as ``id2label``); its entity types get
        typed markers (none for SemEval)."""
        from spanbert.core.checkpoints import check_positions
        from spanbert.tasks.relations.features import MarkerScheme
        from spanbert.tasks.relations.model import new_relation_model

        labels = label_set(train.examples)
        if len(labels) < 2:
            raise ConfigError(f"{train.source}: the training data has {len(labels)} label(s); a classifier needs at least 2")
        no_relation = options.no_relation_label or guess_no_relation_label(labels)
        if no_relation not in labels:
            logger.warning("no-relation label %r does not occur in the training data: micro P/R/F1 will exclude nothing",
                           no_relation)
        subject_types, object_types = entity_types(train.examples)
        scheme = MarkerScheme(options.marker_style, tuple(subject_types), tuple(object_types))
        model, tokenizer = new_relation_model(model_path, labels, pooling=options.pooling, no_relation_label=no_relation,
                                              scheme=scheme, max_seq_length=options.max_seq_length, seed=None)
        check_positions(model.config, options.max_seq_length)
        return model, tokenizer, replace(options, no_relation_label=no_relation)

    def load_trained(self, model_dir, dtype=None):
        """A folder saved as this head, whose tokenizer carries the markers; the settings from its config."""
        from spanbert.core.checkpoints import load_head_model
        from spanbert.tasks.relations.features import marker_ids
        from spanbert.tasks.relations.model import BertForRelationExtraction, scheme_of

        model, tokenizer = load_head_model(model_dir, BertForRelationExtraction, "relation extraction", dtype, trained=True)
        marker_ids(tokenizer, scheme_of(model.config).tokens())
        c = model.config
        return model, tokenizer, RelationSettings(c.pooling, c.marker_style, c.no_relation_label, c.max_seq_length)

    def save(self, folder, model, tokenizer, settings: RelationSettings) -> Path:
        """Weights, config (labels and marker settings: no settings file) and tokenizer (with its markers)."""
        from spanbert.core.checkpoints import save_task_model

        return save_task_model(folder, model, tokenizer)

    def check(self, data: TaskData, model, settings: RelationSettings) -> None:
        check_labels(data.examples, model.config.label2id)

    def training_batches(self, train: TaskData, model, tokenizer, settings: RelationSettings, args) -> TrainingBatches:
        import numpy as np
        import torch

        from spanbert.tasks.relations.features import collate, encode_examples
        from spanbert.tasks.relations.model import scheme_of

        config, scheme = model.config, scheme_of(model.config)
        feats = encode_examples(train.examples, tokenizer, scheme, settings.max_seq_length, config.label2id)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        counts = np.bincount(np.asarray(feats.labels), minlength=config.num_labels)
        logger.info("%d training sentences, %d labels (most frequent %s: %d), %d cut to %d tokens", len(feats),
                    config.num_labels, config.id2label[int(counts.argmax())], int(counts.max()), feats.truncated,
                    settings.max_seq_length)
        return TrainingBatches(feats.lengths(), lambda idx: collate(feats, idx, pad, labels=True), info={
            "labels": config.num_labels, "no_relation_label": settings.no_relation_label, "pooling": settings.pooling,
            "marker_style": settings.marker_style, "marker_tokens": scheme.tokens(),
            "max_seq_length": settings.max_seq_length, "train_truncated": feats.truncated,
            "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
            "torch_threads": torch.get_num_threads()})

    def infer(self, model, tokenizer, data: TaskData, settings: RelationSettings, *, batch_size: int, precision: str,
              progress: bool) -> RelationOutputs:
        from spanbert.tasks.relations.inference import decode, relation_logits

        logits = relation_logits(model, tokenizer, data.examples, batch_size=batch_size, precision=precision,
                                 progress=progress)
        ids = [e.id for e in data.examples]
        semeval = is_semeval_labels(model.config.label2id) and all(i.isdigit() for i in ids) and len(set(ids)) == len(ids)
        return RelationOutputs(decode(logits, model.config.id2label), semeval)

    def tune(self, outputs: RelationOutputs, data: TaskData, settings: RelationSettings):
        """Nothing is fitted; the run summary records which scorer dev used (``dev_scoring``)."""
        return settings, {"dev_scoring": "semeval" if outputs.semeval else "micro"}

    def score(self, outputs: RelationOutputs, data: TaskData, settings: RelationSettings) -> dict[str, Any]:
        gold, predicted = [e.label for e in data.examples], [p.label for p in outputs.predictions]
        if outputs.semeval:
            ids = [e.id for e in data.examples]
            return score_semeval(dict(zip(ids, gold)), dict(zip(ids, predicted)))
        return relation_metrics(gold, predicted, settings.no_relation_label)

    def dev_scores(self, outputs: RelationOutputs, data: TaskData, settings: RelationSettings) -> dict[str, float]:
        """Every number of :meth:`score`, and ``f1``: the official SemEval macro-F1, or micro-F1 without the no-relation label."""
        scores = super().dev_scores(outputs, data, settings)
        scores["f1"] = scores["official_macro_f1"] if outputs.semeval else scores["micro_f1"]
        return scores

    def write(self, folder: Path, outputs: RelationOutputs, data: TaskData, settings: RelationSettings,
              metrics: dict[str, Any], seconds: float) -> None:
        examples, predictions = data.examples, outputs.predictions
        rows = [{"id": e.id, "gold": e.label, "label": p.label, "score": round(p.score, 6)} for e, p in zip(examples, predictions)]
        atomic_write_text(folder / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        if outputs.semeval:
            ids = [e.id for e in examples]
            atomic_write_text(folder / "predictions.txt", format_answer_lines(ids, [p.label for p in predictions]))
            atomic_write_text(folder / "answer_key.txt", format_answer_lines(ids, [e.label for e in examples]))
        atomic_write_json(folder / "metrics.json", {"data": data.source, "examples": len(data), "seconds": round(seconds, 1),
                                                    "scoring": "semeval" if outputs.semeval else "micro", "metrics": metrics})

    def dev_summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The top-level numbers (no per-relation tables)."""
        return {k: v for k, v in metrics.items() if not isinstance(v, dict)}

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        if "dev_metrics" in summary:
            summary = {**summary, "dev_metrics": _headline(summary["dev_metrics"])}
        lines = super().report(summary)
        lines[0] += f"; {summary['labels']} labels"
        return lines

    def report_evaluation(self, result) -> list[str]:
        scoring = "semeval" if "official_macro_f1" in result.metrics else "micro"
        return [f"{result.examples} examples in {result.seconds:.1f} s ({scoring} scoring)",
                json.dumps(_headline(result.metrics), indent=2)]


__all__ = ["Relations", "RelationOutputs"]
