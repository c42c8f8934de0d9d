"""Coreference inference: documents or raw text in, clusters out.

    resolver = CorefResolver("runs/coref")
    resolver.resolve(["Elizabeth smiled. She knew him."])[0]
    # [[Mention(text='Elizabeth', start_char=0, end_char=9, start_word=0, end_word=0),
    #   Mention(text='She', start_char=18, ...)], ...]

Raw text is split into sentences and words by :func:`spanbert.tasks.coref.features.text_document`;
each document is one forward pass over its segments (all spans up to the model's
``max_span_width`` subwords), decoded by greedy antecedent linking
(:mod:`spanbert.tasks.coref.decoding`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from spanbert.core.precision import inference_autocast
from spanbert.tasks.coref.conll import CorefDocument, Span
from spanbert.tasks.coref.decoding import decode_clusters
from spanbert.tasks.coref.features import SegmentConfig, document_tensors, encode_document, text_document
from spanbert.tasks.protocol import Predictor


def predict_document(model, tokenizer, doc: CorefDocument, segments: SegmentConfig, precision: str = "no",
                     singleton_threshold: float | None = None) -> list[list[Span]]:
    """Word-level clusters of one document (with ``singleton_threshold``: also the unlinked
    kept spans whose mention score is above it, as one-mention clusters)."""
    encoded = encode_document(tokenizer, doc, segments)
    if len(encoded.candidate_spans) == 0:
        return []
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = {k: v.to(device) for k, v in document_tensors(encoded, pad, with_gold=False).items()}
    model.eval()
    with torch.inference_mode(), inference_autocast(device, precision):
        out = model(**batch)
    top_words = encoded.candidate_words[out.top_indices.cpu().numpy()]  # (k, 2)
    mention = out.mention_scores[out.top_indices].float().cpu().numpy()  # (k,)
    return decode_clusters(top_words, out.scores.float().cpu().numpy(), out.antecedents.cpu().numpy(),
                           mention, singleton_threshold)


@dataclass(frozen=True)
class Mention:
    """A mention: characters ``start_char..end_char`` (end exclusive) of the text, words
    ``start_word..end_word`` (inclusive)."""

    text: str
    start_char: int
    end_char: int
    start_word: int
    end_word: int

    def to_dict(self) -> dict:
        return asdict(self)


class CorefResolver(Predictor):
    """A fine-tuned coreference model resolving raw texts (each text one document).

    ``model_dir``: a folder written by ``spanbert finetune coref``; ``precision``: ``"no"``
    (fp32), ``"bf16"`` or ``"auto"``; ``singletons``: also return one-mention clusters
    (default: as the model was trained, see ``finetune coref --singletons``)."""

    task_name = "coref"

    def __init__(self, model_dir: str | os.PathLike, *, device: str | None = None, precision: str = "auto",
                 singletons: bool | None = None):
        super().__init__(model_dir, device=device, precision=precision)
        self.settings = self.settings.with_singletons(singletons)
        self.segments = SegmentConfig(self.settings.max_segment_length, self.model.config.max_span_width)

    def resolve(self, texts: str | Sequence[str]) -> list[list[list[Mention]]]:
        """For each text, its clusters (lists of mentions in text order); empty text is a ConfigError."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = []
        for i, text in enumerate(texts):
            doc = text_document(text, f"text {i + 1}")
            clusters = predict_document(self.model, self.tokenizer, doc.document, self.segments, self.precision,
                                        self.settings.singleton_threshold)
            out.append([[Mention(text[doc.offsets[s][0] : doc.offsets[e][1]], doc.offsets[s][0], doc.offsets[e][1], s, e)
                         for s, e in cluster] for cluster in clusters])
        return out


def clusters_json(texts: Sequence[str], resolved: Sequence[Sequence[Sequence[Mention]]]) -> str:
    """The JSON that ``spanbert predict coref --json`` prints."""
    return json.dumps([{"text": t, "clusters": [[m.to_dict() for m in c] for c in clusters]}
                       for t, clusters in zip(texts, resolved)], indent=2, ensure_ascii=False)


__all__ = ["CorefResolver", "Mention", "clusters_json", "predict_document"]
