"""The span NER jobs behind the CLI: fine-tune, and evaluate with a CoNLL prediction file.

``evaluate`` writes ``predictions.conll`` (``token<TAB>gold<TAB>pred``, or ``token<TAB>pred``
for untagged input; predicted tags in the model's scheme, IOB2 by default) and
``metrics.json`` (seqeval default-mode entity scores per type, micro, macro, weighted), so
``spanbert score ner --gold DATA --predictions predictions.conll`` gives the same numbers.
``finetune`` saves the model, ``ner_settings.json``, ``finetune_summary.json`` and a model
card; with dev data it fits the decoding threshold on dev (best micro F1) and evaluates there.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from spanbert.core.atomic import atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError
from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.core.run_folder import staged_output
from spanbert.core.checkpoints import check_positions, model_card, set_dropout
from spanbert.tasks.ner.data import NerCorpus, read_ner, write_conll
from spanbert.tasks.ner.decoding import DecodeConfig, decode_spans, fit_threshold, spans_to_entities
from spanbert.tasks.ner.features import TrainingCollator, WindowConfig, encode_sentences
from spanbert.tasks.ner.inference import sentence_probabilities
from spanbert.tasks.ner.model import NerSettings, label_maps, load_ner_model, save_ner_model
from spanbert.tasks.ner.scoring import score_spans, score_tags
from spanbert.tasks.ner.tags import spans_to_tags

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    metrics: dict  # NerScore.to_json(), or {} for untagged data
    sentences: int
    seconds: float
    output_dir: Path | None


@dataclass(frozen=True)
class SpanNerHead:
    """Head settings of a new span NER model (see :class:`spanbert.tasks.ner.model.SpanNerConfig`)."""

    max_span_width: int = 8
    span_combination: str = "x,y"
    width_embedding_dim: int = 32
    use_cross_attention: bool = True
    cross_attention_heads: int = 4
    negative_ratio: float = 1.0
    classifier_hidden_size: int = 256


def evaluate_ner(model, tokenizer, source: str | os.PathLike | NerCorpus, settings: NerSettings,
                 output_dir: str | os.PathLike | None = None, *, batch_size: int = 32, precision: str = "no",
                 scheme: str = "auto", split: str = "test", max_sentences: int | None = None) -> EvaluationResult:
    """Predict every sentence of ``source``; score against its tags when it has them (seqeval
    default mode) and write ``predictions.conll`` + ``metrics.json`` into ``output_dir``."""
    corpus = source if isinstance(source, NerCorpus) else read_ner(source, split=split, scheme=scheme, require_tags=False)
    sentences = corpus.sentences[:max_sentences] if max_sentences else corpus.sentences
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    start = time.perf_counter()
    candidates = sentence_probabilities(model, tokenizer, [s.tokens for s in sentences], settings, batch_size, precision)
    predicted = [spans_to_entities(decode_spans(sp, pr, settings.decoding.threshold), id2label) for sp, pr in candidates]
    seconds = time.perf_counter() - start
    pred_tags = [spans_to_tags(len(s.tokens), p, settings.scheme) for s, p in zip(sentences, predicted)]
    metrics = score_tags([list(s.tags) for s in sentences], pred_tags).to_json() if corpus.tagged else {}
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = [[(tok, gold, pred) for tok, gold, pred in zip(s.tokens, s.tags, tags)] if corpus.tagged
                else [(tok, pred) for tok, pred in zip(s.tokens, tags)] for s, tags in zip(sentences, pred_tags)]
        write_conll(out / "predictions.conll", rows)
        atomic_write_json(out / "metrics.json", {
            "data": corpus.source, "sentences": len(sentences), "seconds": round(seconds, 2),
            "threshold": settings.decoding.threshold, "metrics": metrics})
    return EvaluationResult(metrics, len(sentences), seconds, out)


def finetune_ner(
    model_path: str | os.PathLike, train_source: str | os.PathLike, output_dir: str | os.PathLike, *,
    dev_source: str | os.PathLike | None = None, head: SpanNerHead = SpanNerHead(), windows: WindowConfig = WindowConfig(),
    args: FinetuneArguments | None = None, scheme: str = "auto", fit_dev_threshold: bool = True,
    max_train_examples: int | None = None, max_dev_examples: int | None = None, dropout: float | None = None,
    eval_precision: str = "auto",
) -> dict:
    """Fine-tune any BERT-family checkpoint as a span NER model and save it, ready to serve.

    Entity types come from the training data (its first ``max_train_examples`` sentences); dev
    is its first ``max_dev_examples`` sentences. Returns a summary (also ``finetune_summary.json``).
    """
    args = args or FinetuneArguments(output_dir=str(output_dir))
    out = Path(output_dir)
    train = read_ner(train_source, split="train", scheme=scheme)
    sentences = train.sentences[:max_train_examples] if max_train_examples else train.sentences
    types = sorted({s.label for sent in sentences for s in sent.spans})
    if not types:
        raise ConfigError(f"{train_source}: no entities to learn from")
    labels = label_maps(types)
    torch.manual_seed(args.seed)  # the new head's initial weights: the same in every process and run
    fields = {**labels, "max_span_width": head.max_span_width, "span_combination": head.span_combination,
              "width_embedding_dim": head.width_embedding_dim, "use_cross_attention": head.use_cross_attention,
              "cross_attention_heads": head.cross_attention_heads, "negative_ratio": head.negative_ratio,
              "classifier_hidden_size": head.classifier_hidden_size}
    model, tokenizer = load_ner_model(model_path, **fields)
    check_positions(model.config, windows.max_seq_length)
    if dropout is not None:
        set_dropout(model, dropout)
    label2id = labels["label2id"]
    gold = [[(s.start, s.end, label2id[s.label]) for s in sent.spans] for sent in sentences]
    encoded = encode_sentences(tokenizer, [s.tokens for s in sentences], windows, gold)
    too_wide = sum(1 for g in gold for a, b, _ in g if b - a + 1 > head.max_span_width)
    logger.info("%s; %d windows; %d entities wider than %d words and %d cut by windows are not trained on",
                train.summary(), len(encoded), too_wide, head.max_span_width, encoded.gold_cut_by_windows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    collate = TrainingCollator(encoded, head.max_span_width, head.negative_ratio, pad, seed=args.seed)
    settings = NerSettings(windows, DecodeConfig(), "IOB2")
    dev_data, dev = None, None
    if dev_source is not None:
        dev_data = read_ner(dev_source, split="validation", scheme=scheme)
        if max_dev_examples:
            dev_data = replace(dev_data, sentences=dev_data.sentences[:max_dev_examples])
        id2label = {int(k): v for k, v in model.config.id2label.items()}

        def dev_f1(m) -> dict[str, float]:
            """Micro F1 on dev: at the threshold fitted there (``fit_dev_threshold``) or argmax decoding."""
            candidates = sentence_probabilities(m, tokenizer, [s.tokens for s in dev_data.sentences], settings,
                                                precision=eval_precision)
            gold_spans = [s.spans for s in dev_data.sentences]
            if fit_dev_threshold:
                threshold, f1 = fit_threshold(candidates, gold_spans, id2label)
                return {"f1": f1, "threshold": float("nan") if threshold is None else threshold}
            predicted = [spans_to_entities(decode_spans(sp, pr, None), id2label) for sp, pr in candidates]
            return {"f1": score_spans(gold_spans, predicted).f1}

        dev = DevEvaluation(dev_f1, "f1")
    result = finetune(model, encoded.lengths(), collate, args, dev=dev,
                      data={"model": model_path, "train": train_source, "dev": dev_source})
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun: one process saves and evaluates
        return {"steps": result.steps, "final_loss": result.last_loss}
    summary: dict = {
        "model": str(model_path), "train": str(train_source), "train_sentences": len(sentences),
        "train_entities": sum(len(g) for g in gold), "train_windows": len(encoded), "scheme_read": train.scheme,
        "labels": types, "not_trained_wider_than_max": too_wide, "not_trained_cut_by_windows": encoded.gold_cut_by_windows,
        "head": {k: v for k, v in fields.items() if k not in ("id2label", "label2id")},
        **training_summary(result),
    }
    with staged_output(out) as final:  # the model, dev results, card and summary replace the folder together
        if dev_data is not None and fit_dev_threshold:
            id2label = {int(k): v for k, v in model.config.id2label.items()}
            candidates = sentence_probabilities(model, tokenizer, [s.tokens for s in dev_data.sentences], settings,
                                                precision=eval_precision)
            threshold, f1 = fit_threshold(candidates, [s.spans for s in dev_data.sentences], id2label)
            settings = replace(settings, decoding=DecodeConfig(threshold))
            summary["threshold"] = threshold
        save_ner_model(final, model, tokenizer, settings)
        if dev_data is not None:
            ev = evaluate_ner(model, tokenizer, dev_data, settings, final / "dev", precision=eval_precision)
            summary.update({"dev": str(dev_source), "dev_sentences": ev.sentences, "dev_seconds": round(ev.seconds, 1),
                            "dev_metrics": {k: ev.metrics[k] for k in ("precision", "recall", "f1")}})
        atomic_write_text(final / "README.md", _card(summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return summary


def _card(summary: dict) -> str:
    return model_card("Span NER model fine-tuned with the `spanbert` toolkit", "token-classification", ["ner", "span-ner"],
                      "`import spanbert.tasks.ner.model` registers the head; then `transformers.AutoModel.from_pretrained(dir)` "
                      "loads it (`model_type: spanbert_span_ner`). `spanbert predict ner --model dir --text ...` and "
                      "`spanbert.tasks.ner.EntityRecognizer(dir).predict([...])` also apply the windowing and decoding "
                      "settings of `ner_settings.json`.", summary)


__all__ = ["finetune_ner", "evaluate_ner", "EvaluationResult", "SpanNerHead"]
