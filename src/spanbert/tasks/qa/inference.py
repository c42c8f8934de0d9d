"""Batched QA inference: questions and contexts in, answers with character offsets out.

    qa = QuestionAnswerer("runs/qa")
    qa.answer(["Who wrote it?"], ["It was written by Ann."])[0].text  # 'Ann'

Windows of many questions are batched together, sorted by length so that padding stays small;
contexts shared by several questions are tokenised once. Examples are processed a chunk at a
time, so memory is bounded by the chunk, not by the number of questions or the document size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from spanbert.core.batching import inference_batches
from spanbert.core.checkpoints import load_task_model
from spanbert.core.errors import ConfigError
from spanbert.core.precision import inference_autocast
from spanbert.tasks.protocol import Predictor
from spanbert.tasks.qa.data import QAExample
from spanbert.tasks.qa.decoding import Prediction, decode_example
from spanbert.tasks.qa.features import QAFeatures, collate_windows, iter_feature_chunks
from spanbert.tasks.qa.settings import QASettings


def load_qa_model(path: str | os.PathLike, dtype=None, *, trained: bool = False):
    """A ``(model, tokenizer)`` pair for QA from any BERT-family folder (or hub id).

    A SpanBERT pre-training folder gets a plain BERT QA model on its encoder (the MLM and SBO
    heads are dropped); other checkpoints load through ``AutoModelForQuestionAnswering``, a
    new QA head being created where the checkpoint has none. A fine-tuned model is a plain
    ``transformers`` QA model, loadable without ``spanbert``.
    ``trained``: the folder must be one fine-tuned for this task (prediction, evaluation).
    """
    from transformers import AutoModelForQuestionAnswering, BertForQuestionAnswering

    return load_task_model(path, AutoModelForQuestionAnswering, BertForQuestionAnswering, "QA", dtype=dtype,
                           trained=trained)


def window_logits(
    model, feats: QAFeatures, pad_token_id: int, batch_size: int = 32, precision: str = "no"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start and end logits of every window of ``feats`` (each ``(len,)``, float32, unpadded)."""
    device = next(model.parameters()).device
    batches = inference_batches(feats.lengths(), batch_size)  # similar lengths share a batch, little padding
    starts: list[np.ndarray] = [None] * len(feats)  # type: ignore[list-item]
    ends: list[np.ndarray] = [None] * len(feats)  # type: ignore[list-item]
    with torch.inference_mode(), inference_autocast(device, precision):
        for batch_idx in batches:
            idx = batch_idx.tolist()
            batch = {k: v.to(device) for k, v in collate_windows(feats, idx, pad_token_id).items()}
            out = model(**batch)
            s = out.start_logits.float().cpu().numpy()  # (batch, padded_len)
            e = out.end_logits.float().cpu().numpy()
            for row, i in enumerate(idx):
                n = len(feats.input_ids[i])
                starts[i], ends[i] = s[row, :n], e[row, :n]
    return starts, ends


def predict_examples(
    model, tokenizer, examples: Sequence[QAExample], settings: QASettings = QASettings(), *,
    batch_size: int = 32, chunk_size: int = 256, precision: str = "no", progress: bool = False,
) -> Iterator[Prediction]:
    """Answer ``examples`` in order, one chunk of examples at a time."""
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bar = tqdm(total=len(examples), disable=not progress, desc="predict", unit="q", dynamic_ncols=True)
    for first, feats in iter_feature_chunks(examples, tokenizer, settings.windows, chunk_size):
        starts, ends = window_logits(model, feats, pad, batch_size, precision)
        by_example: dict[int, list[int]] = {}
        for w, e in enumerate(feats.example_index):
            by_example.setdefault(e, []).append(w)
        for e in range(min(chunk_size, len(examples) - first)):
            ex = examples[first + e]
            ws = by_example.get(e, [])
            yield decode_example(
                ex.id, ex.context, [starts[w] for w in ws], [ends[w] for w in ws],
                [feats.offsets[w] for w in ws], [feats.max_context[w] for w in ws],
                settings.decoding, feats.template.null_index,
            )
            bar.update(1)
    bar.close()


class QuestionAnswerer(Predictor):
    """A fine-tuned QA model with its settings, answering batches of questions.

    ``model_dir`` is a folder written by ``spanbert finetune qa`` (or any transformers QA
    model); ``settings`` replace those saved beside it. ``precision``: ``"no"`` (fp32),
    ``"bf16"``, or ``"auto"`` (bf16 where native).
    """

    task_name = "qa"

    def __init__(self, model_dir: str | os.PathLike, *, device: str | None = None, batch_size: int = 32,
                 precision: str = "auto", settings: QASettings | None = None):
        super().__init__(model_dir, device=device, batch_size=batch_size, precision=precision)
        self.settings = settings or self.settings

    def answer(self, questions: str | Sequence[str], contexts: str | Sequence[str],
               ids: Sequence[str] | None = None) -> list[Prediction]:
        """Answer each question about its context (one context may serve all questions).

        Returns one :class:`~spanbert.tasks.qa.decoding.Prediction` per question: ``text``,
        character ``start``/``end`` into its context (-1 for no answer), ``score``,
        ``null_score``, and the n-best list.
        """
        questions = [questions] if isinstance(questions, str) else list(questions)
        contexts = [contexts] if isinstance(contexts, str) else list(contexts)
        if len(contexts) == 1 and len(questions) > 1:
            contexts = contexts * len(questions)
        if len(contexts) != len(questions):
            raise ConfigError(f"contexts: {len(contexts)} given for {len(questions)} questions")
        for i, (q, c) in enumerate(zip(questions, contexts)):
            if not q.strip():
                raise ConfigError(f"question {i}: empty")
            if not c.strip():
                raise ConfigError(f"context {i}: empty")
        ids = list(ids) if ids is not None else [str(i) for i in range(len(questions))]
        examples = [QAExample(qid, q, c) for qid, q, c in zip(ids, questions, contexts)]
        return self.predict(examples)

    def predict(self, examples: Sequence[QAExample], progress: bool = False) -> list[Prediction]:
        """Answer :class:`~spanbert.tasks.qa.data.QAExample` objects (e.g. from :func:`read_qa`)."""
        return list(predict_examples(self.model, self.tokenizer, examples, self.settings,
                                     batch_size=self.batch_size, precision=self.precision, progress=progress))


__all__ = ["QuestionAnswerer", "load_qa_model", "predict_examples", "window_logits"]
