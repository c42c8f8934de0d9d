"""The relation jobs behind the CLI: fine-tune and evaluate.

``evaluate`` writes ``predictions.jsonl`` (id, gold, predicted label, its probability) and
``metrics.json``. For SemEval-2010 Task 8 data it also writes the official scorer's files,
``predictions.txt`` and ``answer_key.txt`` (``id<TAB>label``, directed labels), and the metrics
are the official scorer's (``spanbert score semeval`` on those two files prints the same);
for other data (TACRED style) they are accuracy and micro P/R/F1 without the no-relation label.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError
from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.core.run_folder import staged_output
from spanbert.core.checkpoints import check_positions, set_dropout
from spanbert.tasks.relations.data import check_labels, entity_types, guess_no_relation_label, is_semeval_labels, label_set, read_relations
from spanbert.tasks.relations.features import MarkerScheme, collate, encode_examples
from spanbert.tasks.relations.inference import decode, relation_logits
from spanbert.tasks.relations.model import new_relation_model, relation_card, save_relation_model
from spanbert.tasks.relations.scoring import format_answer_lines, relation_metrics, score_semeval

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    metrics: dict
    scoring: str  # "semeval" (official scorer) or "micro" (TACRED semantics)
    examples: int
    seconds: float
    output_dir: Path | None


def evaluate_relations(
    model, tokenizer, source: str | os.PathLike, output_dir: str | os.PathLike | None = None, *,
    batch_size: int = 64, precision: str = "auto", progress: bool = True, max_examples: int | None = None,
    split: str = "validation", examples: list | None = None,
) -> EvaluationResult:
    """Classify every example of ``source`` (or the given ``examples`` read from it) and score the
    predictions (see the module doc)."""
    if examples is None:
        examples = read_relations(source, split=split)
    if max_examples:
        examples = examples[:max_examples]
    config = model.config
    check_labels(examples, config.label2id)
    start = time.perf_counter()
    logits = relation_logits(model, tokenizer, examples, batch_size=batch_size, precision=precision, progress=progress)
    seconds = time.perf_counter() - start
    predictions = decode(logits, config.id2label)
    gold = [e.label for e in examples]
    predicted = [p.label for p in predictions]
    ids = [e.id for e in examples]
    semeval = is_semeval_labels(config.label2id) and all(i.isdigit() for i in ids) and len(set(ids)) == len(ids)
    if semeval:
        metrics = score_semeval(dict(zip(ids, gold)), dict(zip(ids, predicted)))
    else:
        metrics = relation_metrics(gold, predicted, config.no_relation_label)
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = [{"id": e.id, "gold": e.label, "label": p.label, "score": round(p.score, 6)} for e, p in zip(examples, predictions)]
        atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        if semeval:
            atomic_write_text(out / "predictions.txt", format_answer_lines(ids, predicted))
            atomic_write_text(out / "answer_key.txt", format_answer_lines(ids, gold))  # type: ignore[arg-type]
        atomic_write_json(out / "metrics.json", {
            "data": str(source), "examples": len(examples), "seconds": round(seconds, 1),
            "scoring": "semeval" if semeval else "micro", "metrics": metrics,
        })
    return EvaluationResult(metrics, "semeval" if semeval else "micro", len(examples), seconds, out)


def finetune_relations(
    model_path: str | os.PathLike, train_source: str | os.PathLike, output_dir: str | os.PathLike, *,
    dev_source: str | os.PathLike | None = None, pooling: str = "markers", marker_style: str = "wrap",
    no_relation_label: str | None = None, max_seq_length: int = 128, args: FinetuneArguments | None = None,
    max_train_examples: int | None = None, max_dev_examples: int | None = None, eval_precision: str = "auto",
    dropout: float | None = None,
) -> dict:
    """Fine-tune any BERT-family checkpoint as a relation classifier and save it, ready to serve.

    The labels are those of the training data (saved as ``id2label``); the entity types of the
    training data get typed markers (none for SemEval). Returns a summary (also written as
    ``finetune_summary.json``); with ``dev_source`` the dev evaluation goes to ``OUTPUT/dev``.
    """
    args = args or FinetuneArguments(output_dir=str(output_dir))
    out = Path(output_dir)
    examples = read_relations(train_source, split="train")
    if max_train_examples:
        examples = examples[:max_train_examples]
    labels = label_set(examples)
    if len(labels) < 2:
        raise ConfigError(f"{train_source}: the training data has {len(labels)} label(s); a classifier needs at least 2")
    dev_examples = None
    if dev_source is not None:  # checked before training: a dev label the model cannot predict fails now
        dev_examples = read_relations(dev_source, split="validation")[: max_dev_examples or None]
        check_labels(dev_examples, {label: i for i, label in enumerate(labels)})
    no_relation = no_relation_label or guess_no_relation_label(labels)
    if no_relation not in labels:
        logger.warning("no-relation label %r does not occur in the training data: micro P/R/F1 will exclude nothing", no_relation)
    subject_types, object_types = entity_types(examples)
    scheme = MarkerScheme(marker_style, tuple(subject_types), tuple(object_types))
    model, tokenizer = new_relation_model(model_path, labels, pooling=pooling, no_relation_label=no_relation, scheme=scheme,
                                          max_seq_length=max_seq_length, seed=args.seed)
    check_positions(model.config, max_seq_length)
    if dropout is not None:  # e.g. 0 for exact comparisons; the checkpoint's otherwise
        set_dropout(model, dropout)
    feats = encode_examples(examples, tokenizer, scheme, max_seq_length, model.config.label2id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    counts = np.bincount(np.asarray(feats.labels), minlength=len(labels))
    logger.info("%d training sentences, %d labels (most frequent %s: %d), %d cut to %d tokens", len(feats), len(labels),
                labels[int(counts.argmax())], int(counts.max()), feats.truncated, max_seq_length)
    dev = None
    if dev_examples is not None:
        def dev_scores(m) -> dict[str, float]:
            """The dev metrics (official SemEval macro-F1, or micro F1 without the no-relation label)."""
            ev = evaluate_relations(m, tokenizer, dev_source, precision=eval_precision, progress=False, examples=dev_examples)
            scores = {k: float(v) for k, v in ev.metrics.items() if isinstance(v, (int, float))}
            scores["f1"] = scores["official_macro_f1"] if ev.scoring == "semeval" else scores["micro_f1"]
            return scores

        dev = DevEvaluation(dev_scores, "f1")
    result = finetune(model, feats.lengths(), lambda idx: collate(feats, idx, pad, labels=True), args, dev=dev,
                      data={"model": model_path, "train": train_source, "dev": dev_source})
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun: one process saves and evaluates
        return {"steps": result.steps, "final_loss": result.last_loss}
    summary: dict = {
        "model": str(model_path), "train": str(train_source), "train_examples": len(examples), "labels": len(labels),
        "no_relation_label": no_relation, "pooling": pooling, "marker_style": marker_style,
        "marker_tokens": scheme.tokens(), "max_seq_length": max_seq_length, "train_truncated": feats.truncated,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "torch_threads": torch.get_num_threads(),
        **training_summary(result),
    }
    with staged_output(out) as final:  # the model, dev results, card and summary replace the folder together
        if dev_source is not None:
            ev = evaluate_relations(model, tokenizer, dev_source, final / "dev", precision=eval_precision,
                                    progress=args.progress, examples=dev_examples)
            summary.update({"dev": str(dev_source), "dev_examples": ev.examples, "dev_seconds": round(ev.seconds, 1),
                            "dev_scoring": ev.scoring, "dev_metrics": _headline(ev.metrics)})
        save_relation_model(final, model, tokenizer, relation_card(summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return summary


def _headline(metrics: dict) -> dict:
    """The top-level numbers of a metrics dict (no per-relation tables)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


__all__ = ["finetune_relations", "evaluate_relations", "EvaluationResult"]
