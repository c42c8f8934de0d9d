"""The QA jobs behind the CLI: fine-tune, evaluate (with the official-format files), predict.

``evaluate`` writes ``predictions.json``, ``nbest_predictions.json``, ``null_odds.json`` (the
SQuAD 2.0 scripts' na-prob file: null score minus best span score) and ``metrics.json``. For
SQuAD 2.0 it can fit the null threshold that maximises F1 on the data it evaluates.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from spanbert.core.atomic import atomic_write_json
from spanbert.core.errors import ConfigError
from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.core.run_folder import staged_output
from spanbert.core.checkpoints import check_positions, model_card, set_dropout
from spanbert.tasks.qa.data import QAExample, examples_from_squad, load_json_file, read_qa
from spanbert.tasks.qa.decoding import DecodeConfig, Prediction, apply_null_threshold, nbest_json
from spanbert.tasks.qa.features import WindowConfig, build_features, collate_windows, span_loss
from spanbert.tasks.qa.inference import predict_examples
from spanbert.tasks.qa.model import QASettings, load_qa_model, save_qa_model
from spanbert.tasks.qa.scoring import GoldQuestion, SquadGold, fit_null_threshold, gold_answers_from_squad, squad_v1_metrics, squad_v2_metrics

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    version: str  # "1.1" or "2.0"
    null_threshold: float | None  # the fitted one (SQuAD 2.0 with fit_threshold)
    questions: int
    seconds: float
    output_dir: Path | None


def read_with_gold(source: str | os.PathLike) -> tuple[list[QAExample], SquadGold]:
    """Examples and the gold answers as the official scripts read them, from one parse of the file.

    For a SQuAD JSON file the gold comes from the file itself (answers whose offsets we dropped
    still count as gold text); for other sources, from the examples.
    """
    path = Path(source)
    if path.is_file() and not path.name.endswith((".jsonl", ".jsonl.gz")):
        data = load_json_file(path)
        examples, _ = examples_from_squad(data, str(path))
        return examples, gold_answers_from_squad(data, source=str(path))
    examples, _ = read_qa(source)
    gold = SquadGold(tuple(GoldQuestion(ex.id, tuple(a.text for a in ex.answers), ex.is_impossible) for ex in examples), source=str(source))
    return examples, gold


def evaluate_predictions(predictions: list[Prediction], gold: SquadGold, version: str, fit_threshold: bool,
                         null_threshold: float = 0.0) -> tuple[dict[str, float], float | None, dict[str, str]]:
    """Official metrics of ``predictions`` and the final answers; for SQuAD 2.0 with
    ``null_threshold`` or, with ``fit_threshold``, the threshold that maximises F1 here (returned)."""
    if version == "1.1":
        answers = {p.id: p.text for p in predictions}
        return squad_v1_metrics(gold, answers), None, answers
    odds = {p.id: float(p.null_odds) for p in predictions}
    threshold = None
    if fit_threshold:
        spans = apply_null_threshold(predictions, float("inf"))  # best non-null answer everywhere
        threshold, _ = fit_null_threshold(gold, spans, odds)
    used = threshold if threshold is not None else null_threshold
    answers = apply_null_threshold(predictions, used)
    # The official script also forces "no answer" where na_prob > na_prob_thresh (default 1.0);
    # scoring with our own threshold keeps exact/f1 equal to what predictions.json says.
    return squad_v2_metrics(gold, answers, odds, na_prob_thresh=used), threshold, answers


def write_prediction_files(output_dir: Path, predictions: list[Prediction], answers: dict[str, str], with_null: bool) -> None:
    """``predictions.json``, ``nbest_predictions.json`` and (SQuAD 2.0) ``null_odds.json``, atomically."""
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output_dir / "predictions.json", answers)
    atomic_write_json(output_dir / "nbest_predictions.json", {p.id: nbest_json(p) for p in predictions})
    if with_null:
        atomic_write_json(output_dir / "null_odds.json", {p.id: float(p.null_odds) for p in predictions})


def evaluate_qa(
    model, tokenizer, source: str | os.PathLike, settings: QASettings, output_dir: str | os.PathLike | None = None, *,
    fit_threshold: bool = False, batch_size: int = 32, precision: str = "auto", progress: bool = True,
    max_questions: int | None = None,
) -> EvaluationResult:
    """Answer every question of ``source`` and score the answers with the official semantics."""
    examples, gold = read_with_gold(source)
    if max_questions:
        examples = examples[:max_questions]
        keep = {ex.id for ex in examples}
        gold = SquadGold(tuple(q for q in gold.questions if q.qid in keep), gold.version, gold.source)
    version = "2.0" if settings.squad_version == "2.0" or any(ex.is_impossible for ex in examples) else "1.1"
    if version == "2.0" and not settings.decoding.allow_null:
        settings = replace(settings, decoding=replace(settings.decoding, allow_null=True), squad_version="2.0")
    start = time.perf_counter()
    predictions = list(predict_examples(model, tokenizer, examples, settings, batch_size=batch_size,
                                        precision=precision, progress=progress))
    seconds = time.perf_counter() - start
    metrics, threshold, answers = evaluate_predictions(predictions, gold, version, fit_threshold,
                                                       settings.decoding.null_threshold)
    used = None if version == "1.1" else (threshold if threshold is not None else settings.decoding.null_threshold)
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        write_prediction_files(out, predictions, answers, version == "2.0")
        summary = {"data": str(source), "squad_version": version, "questions": len(examples), "seconds": round(seconds, 1),
                   "null_threshold": used, "metrics": metrics}
        atomic_write_json(out / "metrics.json", summary)
    return EvaluationResult(metrics, version, threshold, len(examples), seconds, out)


def finetune_qa(
    model_path: str | os.PathLike, train_source: str | os.PathLike, output_dir: str | os.PathLike, *,
    dev_source: str | os.PathLike | None = None, windows: WindowConfig = WindowConfig(),
    decoding: DecodeConfig = DecodeConfig(), args: FinetuneArguments | None = None,
    max_train_examples: int | None = None, max_dev_examples: int | None = None, eval_precision: str = "auto",
    dropout: float | None = None,
) -> dict:
    """Fine-tune any BERT-family checkpoint for extractive QA and save it, ready to serve.

    SQuAD 2.0 mode is chosen when the training data has unanswerable questions; then the
    null threshold is fitted on ``dev_source`` (for best F1) and saved in ``qa_settings.json``.
    Returns a summary (also written as ``finetune_summary.json``).
    """
    args = args or FinetuneArguments(output_dir=str(output_dir))
    out = Path(output_dir)
    examples, report = read_qa(train_source, split="train")
    if max_train_examples:
        examples = examples[:max_train_examples]
    version = "2.0" if any(ex.is_impossible for ex in examples) else "1.1"
    decoding = replace(decoding, allow_null=version == "2.0")
    settings = QASettings(windows, decoding, version)
    torch.manual_seed(args.seed)  # the new QA head's initial weights: the same in every process and run
    model, tokenizer = load_qa_model(model_path)
    check_positions(model.config, windows.max_seq_length)
    if dropout is not None:  # e.g. 0 for exact comparisons; the checkpoint's otherwise
        set_dropout(model, dropout)
    feats = build_features(examples, tokenizer, windows, training=True)
    if len(feats) == 0:
        raise ConfigError(f"{train_source}: no usable training questions")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logger.info("%s; %d training windows", report.summary(), len(feats))
    dev = None
    if dev_source is not None:
        dev_examples, dev_gold = read_with_gold(dev_source)
        if max_dev_examples:
            dev_examples = dev_examples[:max_dev_examples]
            keep = {ex.id for ex in dev_examples}
            dev_gold = SquadGold(tuple(q for q in dev_gold.questions if q.qid in keep), dev_gold.version, dev_gold.source)

        def dev_f1(m) -> dict[str, float]:
            """Official F1/EM on dev (SQuAD 2.0: at the threshold fitted on dev)."""
            predictions = list(predict_examples(m, tokenizer, dev_examples, settings, precision=eval_precision))
            metrics, _, _ = evaluate_predictions(predictions, dev_gold, version, fit_threshold=version == "2.0")
            return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

        dev = DevEvaluation(dev_f1, "f1")
    result = finetune(model, feats.lengths(), lambda idx: collate_windows(feats, idx, pad, labels=True), args,
                      loss_fn=span_loss, dev=dev, data={"model": model_path, "train": train_source, "dev": dev_source})
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun: one process saves and evaluates
        return {"steps": result.steps, "final_loss": result.last_loss}
    summary: dict = {
        "model": str(model_path), "train": str(train_source), "train_questions": len(examples),
        "train_windows": len(feats), "squad_version": version, **training_summary(result),
    }
    with staged_output(out) as final:  # the model, dev results, card and summary replace the folder together
        if dev_source is not None:
            ev = evaluate_qa(model, tokenizer, dev_source, settings, final / "dev", fit_threshold=version == "2.0",
                             precision=eval_precision, progress=args.progress, max_questions=max_dev_examples)
            if ev.null_threshold is not None:
                settings = replace(settings, decoding=replace(settings.decoding, null_threshold=ev.null_threshold))
            summary.update({"dev": str(dev_source), "dev_questions": ev.questions, "dev_seconds": round(ev.seconds, 1),
                            "dev_metrics": ev.metrics, "null_threshold": ev.null_threshold})
        save_qa_model(final, model, tokenizer, settings, _card(summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return summary


def _card(summary: dict) -> str:
    return model_card("Extractive QA model fine-tuned with the `spanbert` toolkit", "question-answering", ["extractive-qa"],
                      "`transformers.AutoModelForQuestionAnswering.from_pretrained(dir)` loads it; "
                      "`spanbert predict qa --model dir` and `spanbert.tasks.qa.QuestionAnswerer(dir)` also apply the "
                      "windowing and null-threshold settings of `qa_settings.json`.", summary)


__all__ = ["finetune_qa", "evaluate_qa", "evaluate_predictions", "write_prediction_files", "EvaluationResult"]
