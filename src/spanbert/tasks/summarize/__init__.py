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

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "inference": ["ExtractiveSummarizer"],
    "data": ["read_summaries", "SummaryExample", "split_sentences"],
    "oracle": ["greedy_oracle"],
    "decoding": ["Budget", "select_sentences", "lead_sentences"],
    "scoring": ["rouge_corpus", "score_rouge_files"],
})
