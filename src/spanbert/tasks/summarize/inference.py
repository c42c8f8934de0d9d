"""Extractive summarization inference: texts in, chosen sentences with character offsets out.

    summarizer = ExtractiveSummarizer("runs/extsum")
    summary = summarizer.summarize(["A long text. With sentences. ..."], max_sentences=2)[0]
    summary.text, [(s.start, s.end, s.score) for s in summary.sentences]

Documents are scored a chunk at a time (sorted by length inside the chunk so that padding
stays small), so memory is bounded by the chunk, not by the number of documents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.core.checkpoints import read_settings
from spanbert.core.precision import inference_autocast
from spanbert.core.text import split_sentences
from spanbert.tasks.summarize.decoding import Budget, join_summary, select_sentences
from spanbert.tasks.summarize.features import collate_documents, encode_document

SETTINGS_FILE = "summarize_settings.json"


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


def settings_json(budget: Budget) -> dict:
    """The ``summarize_settings.json`` object of a model decoded with ``budget``."""
    return {"budget": asdict(budget)}


def load_budget(model_dir: str | os.PathLike) -> Budget:
    """The length budget saved beside a fine-tuned model (one sentence when there is none)."""
    data = read_settings(model_dir, SETTINGS_FILE)
    if data is None:
        return Budget()
    try:
        return Budget(**data["budget"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{Path(model_dir) / SETTINGS_FILE}: malformed settings ({e})") from None


class ExtractiveSummarizer:
    """A fine-tuned summarizer (a folder written by ``spanbert finetune summarize``).

    ``precision``: ``"no"`` (fp32), ``"bf16"`` or ``"auto"`` (bf16 where native). The default
    length budget is the one saved with the model; each call may override it.
    """

    def __init__(self, model_dir: str | os.PathLike, *, device: str | None = None, batch_size: int = 8,
                 precision: str = "auto"):
        from spanbert.tasks.summarize.model import ExtractiveSummarizerConfig, load_summarizer

        config = Path(model_dir) / "config.json"
        if not config.is_file():
            raise CheckpointError(f"{model_dir}: no config.json (not a model folder)")
        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{config}:{e.lineno}: not valid JSON ({e.msg})") from None
        if model_type != ExtractiveSummarizerConfig.model_type:
            raise CheckpointError(f"{model_dir}: model_type {model_type!r} is not a fine-tuned summarizer "
                                  "(train one with spanbert finetune summarize)")
        self.model, self.tokenizer = load_summarizer(model_dir, trained=True)
        self.budget = load_budget(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.precision = precision

    def budget_for(self, max_sentences: int | None = None, max_words: int | None = None,
                   block_trigrams: bool | None = None) -> Budget:
        """The saved budget with the given overrides (giving either length limit replaces both)."""
        sentences, words = self.budget.max_sentences, self.budget.max_words
        if max_sentences is not None or max_words is not None:
            sentences, words = max_sentences, max_words
        return Budget(sentences, words, self.budget.block_trigrams if block_trigrams is None else block_trigrams)

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


__all__ = ["ExtractiveSummarizer", "Summary", "SelectedSentence", "iter_sentence_scores", "load_budget", "settings_json", "SETTINGS_FILE"]
