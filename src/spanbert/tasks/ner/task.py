"""Span NER as a :class:`~spanbert.tasks.protocol.Task`: enumerated spans, non-overlapping decoding.

``evaluate`` writes ``predictions.conll`` (``token<TAB>gold<TAB>pred``, or ``token<TAB>pred``
for untagged input; predicted tags in the model's scheme, IOB2 by default) and
``metrics.json`` (seqeval default-mode entity scores per type, micro, macro, weighted), so
``spanbert score ner --gold DATA --predictions predictions.conll`` gives the same numbers.
Fine-tuning with dev data selects on dev micro F1 at the threshold fitted there (argmax
decoding with ``--no-fit-threshold``), then fits the decoding threshold on dev and evaluates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from spanbert.core.atomic import atomic_write_json
from spanbert.core.errors import ConfigError
from spanbert.tasks.ner.data import read_ner, write_conll
from spanbert.tasks.ner.decoding import decode_spans, fit_threshold, spans_to_entities
from spanbert.tasks.ner.scoring import score_spans, score_tags
from spanbert.tasks.ner.settings import HEAD, DecodeConfig, NerOptions, NerSettings, WindowConfig
from spanbert.tasks.ner.tags import Span, check_scheme, spans_to_tags
from spanbert.tasks.protocol import Card, Task, TaskData, TrainingBatches, register_task

logger = logging.getLogger(__name__)


@dataclass
class NerOutputs:
    """Each sentence's candidate ``(word_spans, probs)`` and the model's ``id2label``."""

    candidates: list
    id2label: dict[int, str]

    def entities(self, threshold: float | None) -> list[list[Span]]:
        """Each sentence's decoded entities at ``threshold`` (None: argmax)."""
        return [spans_to_entities(decode_spans(s, p, threshold), self.id2label) for s, p in self.candidates]


@register_task
class SpanNer(Task):
    """Fine-tune a span NER model (enumerated spans, endpoint + width + cross-attention, negative sampling)."""

    name, unit, metric = "ner", "sentences", "f1"
    settings_type, options = NerSettings, NerOptions
    epochs, batch_size, lr, eval_batch_size, eval_unit = 6.0, 32, 2e-4, 32, "Sentence windows"
    evaluate_summary = "Tag every sentence of a data set; write predictions.conll (token, gold, pred) and seqeval metrics."
    data_help = "a CoNLL file (token ... tag), a saved dataset folder or hf:NAME."
    finetune_aliases = {"--max-train-sentences": "max_train_examples"}
    api_name, model_types = "entities", ("spanbert_span_ner",)
    predictor = "spanbert.tasks.ner.inference:EntityRecognizer"
    model_loader = "spanbert.tasks.ner.model:load_ner_model"
    card = Card("Span NER model fine-tuned with the `spanbert` toolkit", "token-classification", ("ner", "span-ner"),
                "`import spanbert.tasks.ner.model` registers the head; then `transformers.AutoModel.from_pretrained(dir)` "
                "loads it (`model_type: spanbert_span_ner`). `spanbert predict ner --model dir --text ...` and "
                "`spanbert.tasks.ner.EntityRecognizer(dir).predict([...])` also apply the windowing and decoding "
                "settings of `ner_settings.json`.")

    def serve(self, api, items: list[dict], options: Mapping[str, Any]) -> list[dict]:
        """Each text's ``entities``: text, label, character offsets and score."""
        return [{"entities": [{"text": e.text, "label": e.label, "start": e.start_char, "end": e.end_char,
                               "score": float(e.score)} for e in found]} for found in api.predict([it["text"] for it in items])]

    def settings_json(self, settings: NerSettings) -> dict:
        return {"windows": asdict(settings.windows), "decoding": asdict(settings.decoding), "scheme": settings.scheme}

    def settings_from_json(self, data: Mapping[str, Any]) -> NerSettings:
        return NerSettings(WindowConfig(**data.get("windows", {})), DecodeConfig(**data.get("decoding", {})),
                           check_scheme(str(data.get("scheme", "IOB2"))))

    def read(self, source, options: NerOptions | NerSettings, *, split: str, labelled: bool = True) -> TaskData:
        """Sentences of ``source`` in the options' tagging scheme; what ``evaluate`` reads may be
        untagged: it is then predicted, not scored."""
        if isinstance(options, NerSettings):  # evaluate: its --split and --scheme
            split, scheme, tagged = options.split, options.data_scheme, False
        else:
            scheme, tagged = options.scheme, True
        corpus = read_ner(source, split, scheme, require_tags=tagged)
        return TaskData(str(source), corpus.sentences, {"corpus": corpus})

    def load_for_training(self, model_path, train: TaskData, options: NerOptions):
        from spanbert.core.checkpoints import check_positions
        from spanbert.tasks.ner.model import label_maps, load_ner_model

        types = sorted({s.label for sentence in train.examples for s in sentence.spans})
        if not types:
            raise ConfigError(f"{train.source}: no entities to learn from")
        model, tokenizer = load_ner_model(model_path, **label_maps(types), **options.head())
        check_positions(model.config, options.max_seq_length)
        return model, tokenizer, NerSettings(WindowConfig(options.max_seq_length), fit_threshold=options.fit_threshold)

    def training_batches(self, train: TaskData, model, tokenizer, settings: NerSettings, args) -> TrainingBatches:
        from spanbert.tasks.ner.features import TrainingCollator, encode_sentences

        config, sentences = model.config, train.examples
        gold = [[(s.start, s.end, config.label2id[s.label]) for s in sentence.spans] for sentence in sentences]
        encoded = encode_sentences(tokenizer, [s.tokens for s in sentences], settings.windows, gold)
        too_wide = sum(1 for g in gold for a, b, _ in g if b - a + 1 > config.max_span_width)
        logger.info("%s; %d windows; %d entities wider than %d words and %d cut by windows are not trained on",
                    train.extra["corpus"].summary(), len(encoded), too_wide, config.max_span_width,
                    encoded.gold_cut_by_windows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        collate = TrainingCollator(encoded, config.max_span_width, config.negative_ratio, pad, seed=args.seed)
        return TrainingBatches(encoded.lengths(), collate, info={
            "train_entities": sum(len(g) for g in gold), "train_windows": len(encoded),
            "scheme_read": train.extra["corpus"].scheme, "labels": _labels(model)[1:],
            "not_trained_wider_than_max": too_wide, "not_trained_cut_by_windows": encoded.gold_cut_by_windows,
            "head": {k: getattr(config, k) for k in HEAD}})

    def infer(self, model, tokenizer, data: TaskData, settings: NerSettings, *, batch_size: int, precision: str,
              progress: bool) -> NerOutputs:
        from spanbert.tasks.ner.inference import sentence_probabilities

        candidates = sentence_probabilities(model, tokenizer, [s.tokens for s in data.examples], settings, batch_size,
                                            precision)
        return NerOutputs(candidates, dict(enumerate(_labels(model))))

    def tune(self, outputs: NerOutputs, data: TaskData, settings: NerSettings) -> tuple[NerSettings, dict[str, Any]]:
        """The decoding threshold with the best micro F1 on ``data`` (unless ``fit_threshold`` is off)."""
        if not settings.fit_threshold:
            return settings, {}
        threshold, _ = fit_threshold(outputs.candidates, [s.spans for s in data.examples], outputs.id2label)
        return replace(settings, decoding=DecodeConfig(threshold)), {"threshold": threshold}

    def dev_scores(self, outputs: NerOutputs, data: TaskData, settings: NerSettings) -> dict[str, float]:
        """Micro F1 on dev: at the threshold fitted there (logged too), or with argmax decoding."""
        gold = [s.spans for s in data.examples]
        if settings.fit_threshold:
            threshold, f1 = fit_threshold(outputs.candidates, gold, outputs.id2label)
            return {"f1": f1, "threshold": float("nan") if threshold is None else threshold}
        return {"f1": score_spans(gold, outputs.entities(None)).f1}

    def predicted_tags(self, outputs: NerOutputs, data: TaskData, settings: NerSettings) -> list[list[str]]:
        """Each sentence's predicted tags, in the settings' scheme."""
        return [spans_to_tags(len(s.tokens), found, settings.scheme)
                for s, found in zip(data.examples, outputs.entities(settings.decoding.threshold))]

    def score(self, outputs: NerOutputs, data: TaskData, settings: NerSettings) -> dict[str, Any]:
        if not data.extra["corpus"].tagged:
            return {}
        return score_tags([list(s.tags) for s in data.examples], self.predicted_tags(outputs, data, settings)).to_json()

    def write(self, folder: Path, outputs: NerOutputs, data: TaskData, settings: NerSettings, metrics: dict[str, Any],
              seconds: float) -> None:
        corpus = data.extra["corpus"]
        write_conll(folder / "predictions.conll", [
            list(zip(s.tokens, s.tags, tags)) if corpus.tagged else list(zip(s.tokens, tags))
            for s, tags in zip(data.examples, self.predicted_tags(outputs, data, settings))])
        atomic_write_json(folder / "metrics.json", {"data": corpus.source, "sentences": len(data), "seconds": round(seconds, 2),
                                                    "threshold": settings.decoding.threshold, "metrics": metrics})

    def evaluation_settings(self, settings: NerSettings, given: Mapping[str, Any]) -> tuple[NerSettings, bool]:
        given = dict(given)
        if "threshold" in given:
            given["decoding"] = DecodeConfig(given.pop("threshold"))
        return replace(settings, **given), False

    def evaluate_parameters(self) -> list:
        import inspect
        from typing import Annotated

        import typer

        def option(name: str, kind: Any, default: Any, *names: str, help: str) -> inspect.Parameter:
            return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                     annotation=Annotated[kind, typer.Option(*names, help=help)])

        return [option("threshold", float | None, None, help="Decoding threshold (default: the saved one)."),
                option("data_scheme", str, "auto", "--scheme", help="Tagging scheme of the data: auto, IOB2, IOB1 or IOBES."),
                option("split", str, "test", help="Split of a saved DatasetDict folder or hf: source.")]

    def dev_summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return {k: metrics[k] for k in ("precision", "recall", "f1")}

    def report(self, summary: Mapping[str, Any]) -> list[str]:
        lines = super().report(summary)
        return lines + [f"decoding threshold: {summary.get('threshold')}"] if "dev_metrics" in summary else lines

    def report_evaluation(self, result) -> list[str]:
        m, lines = result.metrics, [f"{result.examples} {self.unit} in {result.seconds:.1f} s"]
        if m:  # tagged data
            lines.append(json.dumps({**self.dev_summary(m), "per_type": {k: v["f1"] for k, v in m["per_type"].items()}},
                                    indent=2))
        return lines


def _labels(model) -> list[str]:
    """The model's labels by id: ``O``, then the entity types."""
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


__all__ = ["SpanNer", "NerOutputs"]
