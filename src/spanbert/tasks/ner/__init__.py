"""Span NER: enumerated spans, endpoint + width (+ cross-attention) representations,
non-overlapping decoding, seqeval scoring.

Data flows one way: :mod:`.data` reads CoNLL/``datasets`` sentences (tag schemes in
:mod:`.tags`) -> :mod:`.features` cuts them into subword windows and word-boundary spans ->
:mod:`.model` scores each span's label -> :mod:`.decoding` picks non-overlapping entities ->
:mod:`.scoring` compares them with the gold ones the way ``seqeval`` does.
:mod:`.inference` (``EntityRecognizer``) and :mod:`.task` (the task behind ``spanbert finetune``
and ``evaluate ner``, settings in :mod:`.settings`) put these together; :mod:`.baseline` is the
dictionary baseline.
"""

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "inference": ["EntityRecognizer"],
    "data": ["read_ner", "read_conll"],
    "scoring": ["score_ner_files", "score_tags"],
})
