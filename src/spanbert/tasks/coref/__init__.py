"""Coreference resolution with the coarse-to-fine model over a BERT encoder.

Data flows one way: :mod:`.conll` reads and writes CoNLL-2012 files -> :mod:`.features` cuts
documents into independent segments and candidate spans (and raw text into words) ->
:mod:`.model` scores mentions and antecedents -> :mod:`.decoding` links them into clusters ->
:mod:`.metrics` scores them as the reference scorer does. :mod:`.inference` (``CorefResolver``)
and :mod:`.task` (fine-tune / evaluate, with the options of :mod:`.settings`) put these together;
:mod:`.gap` evaluates on GAP; :mod:`.html` draws the clusters; :mod:`.cli` holds the commands.
"""

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "inference": ["CorefResolver"],
    "conll": ["read_conll", "write_conll"],
    "metrics": ["score_corpus"],
    "gap": ["read_gap", "score_gap"],
})
