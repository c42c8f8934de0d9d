"""Extractive QA as a :class:`~spanbert.tasks.protocol.Task`: start/end logits over windows.

SQuAD 2.0 mode is chosen when the training data has unanswerable questions; the null
threshold is then fitted on dev (for best F1) and saved in ``qa_settings.json``. Evaluation
scores with the official semantics (SQuAD 2.0 when the model or the data has unanswerable
questions) and writes ``predictions.json``, ``nbest_predictions.json``, ``null_odds.json``
(SQuAD 2.0: the scripts' na-prob file, null score minus best span score) and ``metrics.json``.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any

from spanbert.core.atomic import atomic_write_json
from spanbert.core.errors import ConfigError
from spanbert.tasks.protocol import Card, Task, TaskData, TrainingBatches, register_task
from spanbert.tasks.qa.data import read_qa, read_with_gold
from spanbert.tasks.qa.scoring import SquadGold, apply_null_threshold, evaluate_predictions
from spanbert.tasks.qa.settings import DecodeConfig, QAOptions, QASettings, WindowConfig

logger = logging.getLogger(__name__)


@dataclass
class QAOutputs:
    """One :class:`~spanbert.tasks.qa.decoding.Prediction` per question, and the SQuAD version
    they are scored under ("2.0" when the model or the data has unanswerable questions)."""

    predictions: list
    version: str


def _gold(data: TaskData) -> SquadGold:
    """The gold answers of the questions of ``data`` (the first --max-examples, if given)."""
    gold, keep = data.extra["gold"], {ex.id for ex in data.examples}
    return SquadGold(tuple(q for q in gold.questions if q.qid in keep), gold.version, gold.source)


@register_task
class QA(Task):
    """Fine-tune a model for extractive QA (SQuAD 1.1, or 2.0 when the data has unanswerable questions)."""

    name, unit, metric = "qa", "questions", "f1"
    settings_type, options = QASettings, QAOptions
    epochs, batch_size, lr, eval_batch_size, eval_unit = 2.0, 32, 5e-5, 32, "Windows"
    evaluate_summary = "Answer every question of a data set; write the official-format files and the official metrics."
    data_help = "SQuAD JSON(.gz), MRQA JSONL(.gz), a saved dataset folder or hf:NAME."
    finetune_aliases = {"--max-train-questions": "max_train_examples", "--max-dev-questions": "max_dev_examples"}
    evaluate_aliases = {"--max-questions": "max_examples"}
    architectures, text_fields = ("ForQuestionAnswering",), ("question", "context")
    predictor, onnx_outputs = "spanbert.tasks.qa.inference:QuestionAnswerer", ("start_logits", "end_logits")
    model_loader = "spanbert.tasks.qa.inference:load_qa_model"
    card = Card("Extractive QA model fine-tuned with the `spanbert` toolkit", "question-answering", ("extractive-qa",),
                "`transformers.AutoModelForQuestionAnswering.from_pretrained(dir)` loads it; "
                "`spanbert predict qa --model dir` and `spanbert.tasks.qa.QuestionAnswerer(dir)` also apply the "
                "windowing and null-threshold settings of `qa_settings.json`.")

    def serve(self, api, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """Each question's ``answer``, its character ``start``/``end`` in the context (-1 for no
        answer), ``score`` (start + end logit of the best span; null when there is none),
        ``probability`` (of the answer among the n-best, as in the BERT scripts) and ``no_answer``."""
        def finite(x: float) -> float | None:  # JSON has no infinity
            return float(x) if math.isfinite(float(x)) else None

        out = []
        for p in api.answer([it["question"] for it in items], [it["context"] for it in items]):
            probability = next((c.probability for c in p.nbest if c.text == p.text), None)
            out.append({"answer": p.text, "start": int(p.start), "end": int(p.end), "score": finite(p.score),
                        "probability": None if probability is None else finite(probability), "no_answer": p.text == ""})
        return out

    def settings_from_json(self, data: Mapping[str, Any]) -> QASettings:
        known = lambda cls, d: {f.name: d[f.name] for f in fields(cls) if f.name in d}  # noqa: E731
        return QASettings(WindowConfig(**known(WindowConfig, data["windows"])),
                          DecodeConfig(**known(DecodeConfig, data["decoding"])), str(data.get("squad_version", "1.1")))

    def read(self, source, options, *, split: str, labelled: bool = True) -> TaskData:
        """Training data with its read report; dev and test data with the gold answers as the
        official scripts read them (a ``datasets`` source: its validation split)."""
        if split == "train":
            examples, report = read_qa(source, split="train")
            return TaskData(str(source), examples, {"report": report})
        examples, gold = read_with_gold(source)
        return TaskData(str(source), examples, {"gold": gold})

    def load_for_training(self, model_path, train: TaskData, options: QAOptions):
        from spanbert.core.checkpoints import check_positions
        from spanbert.tasks.qa.inference import load_qa_model

        settings = options.settings("2.0" if any(ex.is_impossible for ex in train.examples) else "1.1")
        model, tokenizer = load_qa_model(model_path)
        check_positions(model.config, settings.windows.max_seq_length)
        return model, tokenizer, settings

    def training_batches(self, train: TaskData, model, tokenizer, settings: QASettings, args) -> TrainingBatches:
        from spanbert.tasks.qa.features import build_features, collate_windows, span_loss

        feats = build_features(train.examples, tokenizer, settings.windows, training=True)
        if len(feats) == 0:
            raise ConfigError(f"{train.source}: no usable training questions")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        logger.info("%s; %d training windows", train.extra["report"].summary(), len(feats))
        return TrainingBatches(feats.lengths(), lambda idx: collate_windows(feats, idx, pad, labels=True), span_loss,
                               info={"train_windows": len(feats), "squad_version": settings.squad_version})

    def infer(self, model, tokenizer, data: TaskData, settings: QASettings, *, batch_size: int, precision: str,
              progress: bool) -> QAOutputs:
        from spanbert.tasks.qa.inference import predict_examples

        version = "2.0" if settings.squad_version == "2.0" or any(ex.is_impossible for ex in data.examples) else "1.1"
        if version == "2.0" and not settings.decoding.allow_null:
            settings = replace(settings, decoding=replace(settings.decoding, allow_null=True), squad_version="2.0")
        return QAOutputs(list(predict_examples(model, tokenizer, data.examples, settings, batch_size=batch_size,
                                               precision=precision, progress=progress)), version)

    def tune(self, outputs: QAOutputs, data: TaskData, settings: QASettings) -> tuple[QASettings, dict[str, Any]]:
        """SQuAD 2.0: the null threshold that maximises F1 on ``data``."""
        if outputs.version == "1.1":
            return settings, {"null_threshold": None}
        _, threshold, _ = evaluate_predictions(outputs.predictions, _gold(data), "2.0", fit_threshold=True)
        return replace(settings, decoding=replace(settings.decoding, null_threshold=threshold)), {"null_threshold": threshold}

    def score(self, outputs: QAOutputs, data: TaskData, settings: QASettings) -> dict[str, Any]:
        return evaluate_predictions(outputs.predictions, _gold(data), outputs.version, False,
                                    settings.decoding.null_threshold)[0]

    def dev_scores(self, outputs: QAOutputs, data: TaskData, settings: QASettings) -> dict[str, float]:
        """Official F1/EM on dev (SQuAD 2.0: at the threshold fitted on dev)."""
        v2 = outputs.version == "2.0"
        return {k: float(v) for k, v in evaluate_predictions(outputs.predictions, _gold(data), outputs.version, v2)[0].items()}

    def write(self, folder: Path, outputs: QAOutputs, data: TaskData, settings: QASettings, metrics: dict[str, Any],
              seconds: float) -> None:
        from spanbert.tasks.qa.decoding import nbest_json

        predictions, v2 = outputs.predictions, outputs.version == "2.0"
        used = settings.decoding.null_threshold if v2 else None
        answers = apply_null_threshold(predictions, used) if v2 else {p.id: p.text for p in predictions}
        atomic_write_json(folder / "predictions.json", answers)
        atomic_write_json(folder / "nbest_predictions.json", {p.id: nbest_json(p) for p in predictions})
        if v2:
            atomic_write_json(folder / "null_odds.json", {p.id: float(p.null_odds) for p in predictions})
        atomic_write_json(folder / "metrics.json", {"data": data.source, "squad_version": outputs.version,
                                                    "questions": len(data), "seconds": round(seconds, 1),
                                                    "null_threshold": used, "metrics": metrics})

    def evaluation_settings(self, settings: QASettings, given: Mapping[str, Any]) -> tuple[QASettings, bool]:
        return settings, bool(given.get("fit_threshold"))

    def evaluate_parameters(self) -> list:
        import typer

        return [inspect.Parameter("fit_threshold", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option(help="SQuAD 2.0: fit the null threshold on this data for best F1 (and report with it).")])]

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        lines = super().report(summary)
        if summary.get("null_threshold") is not None:
            lines.append(f"null threshold fitted on dev: {summary['null_threshold']:.4f}")
        return lines

    def report_evaluation(self, result) -> list[str]:
        version = "1.1" if "exact_match" in result.metrics else "2.0"  # the v1.1 script's keys differ
        lines = [f"{result.examples} questions in {result.seconds:.1f} s (SQuAD {version} scoring)",
                 json.dumps(result.metrics, indent=2)]
        if result.tuned.get("null_threshold") is not None:
            lines.append(f"fitted null threshold: {result.tuned['null_threshold']:.4f}")
        return lines


__all__ = ["QA", "QAOutputs"]
