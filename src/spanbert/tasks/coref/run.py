"""The coreference jobs behind the CLI: fine-tune, and evaluate with a CoNLL response file.

``evaluate`` writes ``response.conll`` (the key's documents with predicted clusters, readable
by the reference scorer and by ``spanbert score coref``) and ``metrics.json`` (MUC, B-cubed,
CEAF-m, CEAF-e, BLANC and the CoNLL F1, in percent). ``finetune`` trains one document per
optimizer step and saves the model, ``coref_settings.json``, ``finetune_summary.json`` and a
model card; with dev data it scores the dev CoNLL F1 at every epoch end (or every
``eval_every`` steps), keeps the best weights (``select_best``) and evaluates there.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from spanbert.core.atomic import atomic_write_json
from spanbert.core.errors import ConfigError, CorpusError
from spanbert.tasks.finetune import DevEvaluation, finetune, training_summary
from spanbert.tasks.arguments import FinetuneArguments
from spanbert.core.run_folder import staged_output
from spanbert.core.checkpoints import check_positions, model_card, save_task_model, set_dropout
from spanbert.tasks.coref.conll import CorefDocument, read_conll, write_conll
from spanbert.tasks.coref.features import SegmentConfig, TrainingCollator, encode_document
from spanbert.tasks.coref.inference import SETTINGS_FILE, predict_documents
from spanbert.tasks.coref.model import CorefConfig, load_coref_model

logger = logging.getLogger(__name__)
SUFFIXES = (".conll", ".gold_conll", ".v4_gold_conll", ".conll.gz", ".gold_conll.gz")


def read_coref_documents(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[CorefDocument]:
    """The documents of CoNLL files and folders of them (``*.conll``, ``*.gold_conll``, ``.gz``), in
    sorted file order; a folder without such files is a CorpusError."""
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    docs: list[CorefDocument] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(SUFFIXES))
            if not files:
                raise CorpusError(f"{path}: no CoNLL files ({', '.join(SUFFIXES)}) in this folder")
        else:
            files = [path]
        for f in files:
            docs.extend(read_conll(f))
    return docs


@dataclass(frozen=True)
class CorefHead:
    """Head settings of a new coreference model; the defaults are
    :class:`spanbert.tasks.coref.model.CorefConfig`'s own (one place to change them)."""

    max_span_width: int = CorefConfig.max_span_width
    top_span_ratio: float = CorefConfig.top_span_ratio
    max_top_antecedents: int = CorefConfig.max_top_antecedents
    ffnn_size: int = CorefConfig.ffnn_size
    ffnn_depth: int = CorefConfig.ffnn_depth
    feature_size: int = CorefConfig.feature_size
    coarse_to_fine: bool = CorefConfig.coarse_to_fine
    use_genre: bool = CorefConfig.use_genre
    higher_order: int = CorefConfig.higher_order
    mention_loss_weight: float = CorefConfig.mention_loss_weight
    non_crossing: bool = CorefConfig.non_crossing


@dataclass
class EvaluationResult:
    metrics: dict  # CorefScores.to_json()
    documents: int
    seconds: float
    output_dir: Path | None


def evaluate_coref(model, tokenizer, source: str | os.PathLike | Sequence | list[CorefDocument], segments: SegmentConfig,
                   output_dir: str | os.PathLike | None = None, *, precision: str = "auto",
                   singleton_threshold: float | None = None) -> EvaluationResult:
    """Predict every document of ``source``, score against its gold clusters and write
    ``response.conll`` + ``metrics.json`` into ``output_dir`` (``singleton_threshold``: see
    :func:`spanbert.tasks.coref.decoding.decode_clusters`)."""
    from spanbert.tasks.coref.metrics import score_corpus

    docs = source if isinstance(source, list) and source and isinstance(source[0], CorefDocument) else read_coref_documents(source)
    start = time.perf_counter()
    predicted = predict_documents(model, tokenizer, docs, segments, precision, singleton_threshold)
    seconds = time.perf_counter() - start
    metrics = score_corpus({d.name: d.clusters for d in docs}, {d.name: p for d, p in zip(docs, predicted)}).to_json()
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_conll(out / "response.conll", [CorefDocument(d.name, d.words, p, d.sentences, d.speakers)
                                             for d, p in zip(docs, predicted)])
        atomic_write_json(out / "metrics.json", {"documents": len(docs), "seconds": round(seconds, 2),
                                                 "singleton_threshold": singleton_threshold, "metrics": metrics})
    return EvaluationResult(metrics, len(docs), seconds, out)


def finetune_coref(model_path: str | os.PathLike, train_sources: str | os.PathLike | Sequence[str | os.PathLike],
                   output_dir: str | os.PathLike, *, dev_source=None, head: CorefHead = CorefHead(),
                   max_segment_length: int = 384, max_training_segments: int | None = None, args: FinetuneArguments | None = None,
                   max_train_examples: int | None = None, max_dev_examples: int | None = None,
                   dropout: float | None = None, eval_precision: str = "auto", singletons: bool = False) -> dict:
    """Fine-tune any BERT-family checkpoint as a coreference model (one document per step) and
    save it. Documents longer than ``max_training_segments`` segments are trained on a random
    window of that many segments per step (None: whole documents). ``singletons``: the model
    will also output unlinked spans with mention probability above 1/2 as one-mention
    clusters (needs ``head.mention_loss_weight > 0``, which trains those probabilities).
    With ``dev_source``, the dev CoNLL F1 is scored at every epoch end (or ``args.eval_every``
    steps) and the best evaluation's weights are kept when ``args.select_best``. One document is
    one micro-batch: ``args.batch_size`` documents a step must be ``args.grad_accum`` x processes.
    ``max_train_examples``/``max_dev_examples``: the first N training/dev documents only. Returns a
    summary (also ``finetune_summary.json``)."""
    from accelerate import PartialState

    args = args or FinetuneArguments(output_dir=str(output_dir), batch_size=1)
    processes = PartialState().num_processes
    if args.batch_size != args.grad_accum * processes:
        raise ConfigError(f"--batch-size {args.batch_size}: coreference trains one document per micro-batch, so it must "
                          f"be --grad-accum x processes = {args.grad_accum} x {processes}")
    if singletons and head.mention_loss_weight <= 0:
        raise ConfigError("singletons: needs mention_loss_weight > 0 (the mention scores must be trained as probabilities)")
    threshold = 0.0 if singletons else None
    out = Path(output_dir)
    docs = read_coref_documents(train_sources)
    docs = docs[:max_train_examples] if max_train_examples else docs
    segments = SegmentConfig(max_segment_length, head.max_span_width)
    torch.manual_seed(args.seed)  # the new head's initial weights
    model, tokenizer = load_coref_model(model_path, **asdict(head))
    if dropout is not None:
        set_dropout(model, dropout)
    check_positions(model.config, max_segment_length, "--max-segment-length")
    encoded = [encode_document(tokenizer, d, segments) for d in docs]
    encoded = [e for e in encoded if len(e.candidate_spans)]
    if not encoded:
        raise ConfigError(f"{train_sources}: no document with candidate spans to learn from")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    collate = TrainingCollator(encoded, pad, max_training_segments, seed=args.seed)
    dev_docs, dev = None, None
    if dev_source is not None:
        from spanbert.tasks.coref.metrics import score_corpus

        dev_docs = read_coref_documents(dev_source)[: max_dev_examples or None]
        if not dev_docs:
            raise ConfigError(f"dev: no documents in {', '.join(_names(dev_source))}")
        dev_key = {d.name: d.clusters for d in dev_docs}

        def dev_conll_f1(m: torch.nn.Module) -> dict[str, float]:
            """CoNLL F1 on dev (the mean F1 of MUC, B-cubed and CEAF-e, percent), with those three F1s."""
            predicted = predict_documents(m, tokenizer, dev_docs, segments, eval_precision, threshold)
            scores = score_corpus(dev_key, {d.name: p for d, p in zip(dev_docs, predicted)}, ("muc", "bcub", "ceafe"))
            f1s = {f"{name}_f1": 100 * float(counts.f1) for name, counts in scores.metrics.items()}
            return {"conll_f1": 100 * float(scores.conll_f1), **f1s}

        dev = DevEvaluation(dev_conll_f1, "conll_f1")
    result = finetune(model, collate.lengths(), collate, args, dev=dev,
                      data={"model": model_path, "train": _names(train_sources),
                            "dev": _names(dev_source) if dev_source is not None else None})

    if not PartialState().is_main_process:
        return {"steps": result.steps, "final_loss": result.last_loss}
    mentions = sum(d.num_mentions for d in docs)
    missed = sum(e.gold_not_candidates for e in encoded)
    summary: dict = {
        "model": str(model_path), "train": _names(train_sources),
        "train_documents": len(encoded), "train_words": sum(e.num_words for e in encoded),
        "train_mentions": mentions, "mentions_not_candidates": missed,
        "train_segments": sum(len(e.segments) for e in encoded), "max_segment_length": max_segment_length,
        "max_training_segments": max_training_segments, "head": asdict(head), "lr": args.lr, "head_lr": args.head_lr,
        "singleton_threshold": threshold, **training_summary(result),
    }
    with staged_output(out) as final:  # the model, dev results, card and summary replace the folder together
        if dev_docs is not None:
            ev = evaluate_coref(model, tokenizer, dev_docs, segments, final / "dev", precision=eval_precision,
                                singleton_threshold=threshold)
            f1s = {name: ev.metrics[name]["f1"] for name in ("muc", "bcub", "ceafe") if isinstance(ev.metrics.get(name), dict)}
            summary.update({"dev": _names(dev_source), "dev_documents": ev.documents, "dev_seconds": round(ev.seconds, 1),
                            "dev_conll_f1": ev.metrics.get("conll_f1"),
                            "dev_metrics": {"conll_f1": ev.metrics.get("conll_f1"), **{f"{k}_f1": v for k, v in f1s.items()}}})
        save_task_model(final, model, tokenizer, {SETTINGS_FILE: {"max_segment_length": max_segment_length,
                                                                  "singleton_threshold": threshold}}, _card(summary))
        atomic_write_json(final / "finetune_summary.json", summary)
    return summary


def _names(sources) -> list[str]:
    return [str(s) for s in ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]


def _card(summary: dict) -> str:
    return model_card("Coreference model (coarse-to-fine) fine-tuned with the `spanbert` toolkit", "token-classification",
                      ["coreference"], "`import spanbert.tasks.coref.model` registers the head; then "
                      "`transformers.AutoModel.from_pretrained(dir)` loads it (`model_type: spanbert_coref`). "
                      "`spanbert predict coref --model dir --text ...` and `spanbert.tasks.coref.inference.CorefResolver(dir)"
                      ".resolve([...])` resolve raw text.", summary)


__all__ = ["CorefHead", "EvaluationResult", "evaluate_coref", "finetune_coref", "read_coref_documents"]
