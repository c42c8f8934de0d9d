"""Extractive summarization inference: texts in, chosen sentences with character offsets out.

    summarizer = ExtractiveSummarizer("runs/extsum")
    summary = summarizer.summarize(["A long text. With sentences. ..."], max_sentences=2)[0]
    summary.text, [(s.start, s.end, s.score) for s in summary.sentences]

Documents are scored a chunk at a time (sorted by length inside the chunk so that padding
stays small), so memory is bounded by the chunk, not by the number of documents.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from spanbert.core.errors import ConfigError
from spanbert.core.precision import inference_autocast
from spanbert.core.text import split_sentences
from spanbert.tasks.protocol import Predictor
from spanbert.tasks.summarize.decoding import Budget, join_summary, select_sentences
from spanbert.tasks.summarize.features import collate_documents, encode_document


def iter_sentence_scores(model, tokenizer, documents: Sequence[Sequence[str]], *, batch_size: int = 8,
                         chunk_size: int = 256, precision: str = "no", progress: bool = False) -> Iterator[np.ndarray]:
    """One float32 array of sentence scores (logits) per document, in order."""
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    seg_len = model.config.max_segment_length
    bar = tqdm(total=len(documents), disable=not progress, desc="summarize", unit="doc", dynamic_ncols=True)
    for first in range(0, len(documents), chunk_size):
        feats = [encode_document(doc, tokenizer, seg_len) for doc in documents[first : first + chunk_size]]
        scores: list[np.ndarray] = [None] * len(feats)  # type: ignore[list-item]
        order = np.argsort([-f.num_tokens for f in feats], kind="stable")
        with torch.inference_mode(), inference_autocast(device, precision):
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size].tolist()
                batch = {k: v.to(device) for k, v in collate_documents([feats[i] for i in idx], pad).items()}
                logits = model(**batch).logits.float().cpu().numpy()  # (batch, max sentences)
                for row, i in enumerate(idx):
                    scores[i] = logits[row, : len(feats[i].sentence_spans)]
        yield from scores
        bar.update(len(feats))
    bar.close()


@dataclass(frozen=True)
class SelectedSentence:
    """A chosen sentence: its index in the document, text, character offsets and score."""

    index: int
    text: str
    start: int  # character offset in the input text (-1 when the input was a list of sentences)
    end: int
    score: float


@dataclass(frozen=True)
class Summary:
    """The chosen sentences in document order, joined into ``text``; ``scores`` of all sentences."""

    text: str
    sentences: list[SelectedSentence]
    scores: list[float]

    def to_dict(self) -> dict:
        return {"summary": self.text, "sentences": [asdict(s) for s in self.sentences], "scores": self.scores}


class ExtractiveSummarizer(Predictor):
    """A fine-tuned summarizer (a folder written by ``spanbert finetune summarize``).

    ``precision``: ``"no"`` (fp32), ``"bf16"`` or ``"auto"`` (bf16 where native). The default
    length budget is the one saved with the model; each call may override it.
    """

    task_name, default_batch_size = "summarize", 8

    def budget_for(self, max_sentences: int | None = None, max_words: int | None = None,
                   block_trigrams: bool | None = None) -> Budget:
        """The saved budget with the given overrides (giving either length limit replaces both)."""
        given = {"max_sentences": max_sentences, "max_words": max_words, "block_trigrams": block_trigrams}
        return self.task.evaluation_settings(self.settings, {k: v for k, v in given.items() if v is not None})[0].budget

    def scores(self, documents: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Sentence scores (logits) of documents given as lists of sentences."""
        return list(iter_sentence_scores(self.model, self.tokenizer, documents, batch_size=self.batch_size,
                                         precision=self.precision))

    def summarize(self, texts: str | Sequence[str], *, max_sentences: int | None = None, max_words: int | None = None,
                  block_trigrams: bool | None = None) -> list[Summary]:
        """Summarise each raw text: split it into sentences, score them, choose under the budget."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        spans = []
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"text {i}: empty")
            spans.append(split_sentences(text))
        documents = [[t[s:e] for s, e in sp] for t, sp in zip(texts, spans)]
        return self._choose(documents, spans, self.budget_for(max_sentences, max_words, block_trigrams))

    def summarize_sentences(self, documents: Sequence[Sequence[str]], *, max_sentences: int | None = None,
                            max_words: int | None = None, block_trigrams: bool | None = None) -> list[Summary]:
        """Like :meth:`summarize` for documents already split into sentences (offsets are -1)."""
        for i, doc in enumerate(documents):
            if not doc or not any(s.strip() for s in doc):
                raise ConfigError(f"document {i}: no sentences")
        return self._choose([list(d) for d in documents], None, self.budget_for(max_sentences, max_words, block_trigrams))

    def _choose(self, documents: list[list[str]], spans, budget: Budget) -> list[Summary]:
        out = []
        for d, (doc, scores) in enumerate(zip(documents, self.scores(documents))):
            chosen = select_sentences(scores, doc, budget)
            picked = [SelectedSentence(i, doc[i], spans[d][i][0] if spans else -1, spans[d][i][1] if spans else -1,
                                       float(scores[i])) for i in chosen]
            out.append(Summary(join_summary(doc, chosen), picked, [float(s) for s in scores]))
        return out


__all__ = ["ExtractiveSummarizer", "Summary", "SelectedSentence", "iter_sentence_scores"]
