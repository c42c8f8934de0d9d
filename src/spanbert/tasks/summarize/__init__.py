"""Extractive summarization: sentence spans scored with span-to-document cross-attention, ROUGE scoring.

Data flows one way: :mod:`.data` reads documents (and splits raw text into sentences) ->
:mod:`.oracle` labels the sentences a greedy ROUGE oracle would pick -> :mod:`.features`
packs sentences into encoder segments -> :mod:`.model` scores each sentence as a span ->
:mod:`.decoding` picks the best sentences under a length budget -> :mod:`.scoring` computes
ROUGE through ``rouge-score``. :mod:`.task` declares the task (fine-tuning, evaluation, the options
of :mod:`.settings`); :mod:`.inference` holds the Python API.
"""

from __future__ import annotations

from spanbert.core.lazy import lazy_exports

__all__ = ["ExtractiveSummarizer", "read_summaries", "SummaryExample", "split_sentences", "greedy_oracle",
           "Budget", "select_sentences", "lead_sentences", "rouge_corpus", "score_rouge_files"]

_WHERE = {
    "ExtractiveSummarizer": "inference", "read_summaries": "data", "SummaryExample": "data", "split_sentences": "data",
    "greedy_oracle": "oracle", "Budget": "decoding", "select_sentences": "decoding", "lead_sentences": "decoding",
    "rouge_corpus": "scoring", "score_rouge_files": "scoring",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
