"""Batched span NER inference: words or raw text in, typed entities with offsets out.

    ner = EntityRecognizer("runs/ner")
    ner.predict(["Empire State Building = ESB"])[0]
    # [Entity(text='Empire State Building', label='location', start_word=0, end_word=2,
    #         start_char=0, end_char=21, score=0.93), ...]

Raw text is split into words by :func:`split_words`, a regex close to the tweet tokenisation
of WNUT-17: URLs, ``@user`` and ``#tag`` stay whole, words keep inner ``'`` and ``-``
(``don't``), abbreviations their dots (``U.S.``), and every other non-space character is a
word of its own. Character offsets index the original text. Windows of many sentences are
batched by length; every span of at most ``max_span_width`` words is scored and
:func:`spanbert.tasks.ner.decoding.decode_spans` picks the entities.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from spanbert.core.batching import inference_batches
from spanbert.core.errors import ConfigError
from spanbert.core.precision import inference_autocast
from spanbert.core.text import split_words
from spanbert.tasks.ner.decoding import ScoredSpan, decode_spans
from spanbert.tasks.ner.features import EncodedCorpus, encode_sentences, pad_inputs, pad_spans, window_spans
from spanbert.tasks.ner.settings import DecodeConfig, NerSettings
from spanbert.tasks.protocol import Predictor


@dataclass(frozen=True)
class Entity:
    """An entity: words ``start_word..end_word`` (inclusive) of its sentence; characters
    ``start_char..end_char`` (end exclusive) of the text, -1 when the input was words."""

    text: str
    label: str
    start_word: int
    end_word: int
    start_char: int
    end_char: int
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def window_probabilities(model, corpus: EncodedCorpus, pad_token_id: int, max_span_width: int, batch_size: int = 32,
                         precision: str = "no") -> list[tuple[np.ndarray, np.ndarray]]:
    """Every window's ``(word_spans, probs)``: its candidate spans (window word indices) and
    their label probabilities (num_spans, labels), float32."""
    device = next(model.parameters()).device
    batches = inference_batches(corpus.lengths(), batch_size)  # similar lengths share a batch, little padding
    out: list[tuple[np.ndarray, np.ndarray]] = [None] * len(corpus)  # type: ignore[list-item]
    model.eval()
    with torch.inference_mode(), inference_autocast(device, precision):
        for batch_idx in batches:
            idx = batch_idx.tolist()
            windows = [corpus.windows[i] for i in idx]
            spans = [window_spans(w, max_span_width) for w in windows]
            batch = pad_inputs([w.input_ids for w in windows], pad_token_id)
            batch.update(pad_spans([tok for _, tok in spans]))
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # (batch, spans, labels)
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for row, i in enumerate(idx):
                words = spans[row][0]
                out[i] = (words, probs[row, : len(words)])
    return out


def sentence_probabilities(model, tokenizer, sentences: Sequence[Sequence[str]], settings: NerSettings,
                           batch_size: int = 32, precision: str = "no") -> list[tuple[np.ndarray, np.ndarray]]:
    """Each sentence's candidate ``(word_spans, probs)``, spans in sentence word indices."""
    corpus = encode_sentences(tokenizer, sentences, settings.windows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    per_window = window_probabilities(model, corpus, pad, model.config.max_span_width, batch_size, precision)
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in sentences]
    for w, (spans, probs) in zip(corpus.windows, per_window):
        parts[w.sentence].append((spans + w.first_word, probs))
    labels = model.config.num_labels
    return [(np.concatenate([s for s, _ in p]) if p else np.zeros((0, 2), dtype=np.int64),
             np.concatenate([q for _, q in p]) if p else np.zeros((0, labels), dtype=np.float32)) for p in parts]


def predict_sentences(model, tokenizer, sentences: Sequence[Sequence[str]], settings: NerSettings = NerSettings(), *,
                      batch_size: int = 32, precision: str = "no") -> list[list[ScoredSpan]]:
    """Decoded entities of each sentence (lists of words)."""
    candidates = sentence_probabilities(model, tokenizer, sentences, settings, batch_size, precision)
    return [decode_spans(s, p, settings.decoding.threshold) for s, p in candidates]


class EntityRecognizer(Predictor):
    """A fine-tuned span NER model with its settings, finding entities in batches of texts.

    ``model_dir``: a folder written by ``spanbert finetune ner``. ``threshold`` overrides the
    saved decoding threshold (``None`` keeps it). ``precision``: ``"no"`` (fp32), ``"bf16"`` or
    ``"auto"`` (bf16 where the hardware has it natively).
    """

    task_name = "ner"

    def __init__(self, model_dir: str | os.PathLike, *, device: str | None = None, batch_size: int = 32,
                 precision: str = "auto", threshold: float | None = None):
        super().__init__(model_dir, device=device, batch_size=batch_size, precision=precision)
        if threshold is not None:
            self.settings = replace(self.settings, decoding=DecodeConfig(threshold))
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}

    @property
    def labels(self) -> list[str]:
        """The entity types the model knows."""
        return [self.id2label[i] for i in sorted(self.id2label) if i > 0]

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[Entity]]:
        """Entities of sentences already split into words (character offsets are -1)."""
        for i, words in enumerate(sentences):
            if not words or any(not str(w).strip() for w in words):
                raise ConfigError(f"sentence {i}: empty, or has an empty word")
        decoded = predict_sentences(self.model, self.tokenizer, sentences, self.settings, batch_size=self.batch_size,
                                    precision=self.precision)
        return [[Entity(" ".join(words[d.start : d.end + 1]), self.id2label[d.label], d.start, d.end, -1, -1, d.score)
                 for d in found] for words, found in zip(sentences, decoded)]

    def predict(self, texts: str | Sequence[str]) -> list[list[Entity]]:
        """Entities of each raw text, with word and character offsets (see :func:`split_words`)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        split = [split_words(t) for t in texts]
        for i, words in enumerate(split):
            if not words:
                raise ConfigError(f"text {i}: no words")
        decoded = predict_sentences(self.model, self.tokenizer, [[w for w, _, _ in ws] for ws in split], self.settings,
                                    batch_size=self.batch_size, precision=self.precision)
        out = []
        for text, words, found in zip(texts, split, decoded):
            out.append([Entity(text[words[d.start][1] : words[d.end][2]], self.id2label[d.label], d.start, d.end,
                               words[d.start][1], words[d.end][2], d.score) for d in found])
        return out


__all__ = ["EntityRecognizer", "Entity", "predict_sentences", "sentence_probabilities", "window_probabilities"]
