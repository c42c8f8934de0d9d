"""Span NER: enumerated spans, endpoint + width (+ cross-attention) representations,
non-overlapping decoding, seqeval scoring.

Data flows one way: :mod:`.data` reads CoNLL/``datasets`` sentences (tag schemes in
:mod:`.tags`) -> :mod:`.features` cuts them into subword windows and word-boundary spans ->
:mod:`.model` scores each span's label -> :mod:`.decoding` picks non-overlapping entities ->
:mod:`.scoring` compares them with the gold ones the way ``seqeval`` does.
:mod:`.inference` (``EntityRecognizer``) and :mod:`.run` (the fine-tune / evaluate jobs)
put these together; :mod:`.baseline` is the dictionary baseline.
"""

from __future__ import annotations

__all__ = ["EntityRecognizer", "read_ner", "read_conll", "score_ner_files", "score_tags"]


def __getattr__(name: str):
    # Lazy: `import spanbert.ner` stays cheap; torch/transformers load on first use.
    if name == "EntityRecognizer":
        from .inference import EntityRecognizer

        return EntityRecognizer
    if name in ("read_ner", "read_conll"):
        from . import data

        return getattr(data, name)
    if name in ("score_ner_files", "score_tags"):
        from . import scoring

        return getattr(scoring, name)
    raise AttributeError(name)
