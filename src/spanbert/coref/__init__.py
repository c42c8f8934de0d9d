"""Coreference resolution with the coarse-to-fine model over a BERT encoder.

Data flows one way: :mod:`.conll` reads and writes CoNLL-2012 files -> :mod:`.features` cuts
documents into independent segments and candidate spans (and raw text into words) ->
:mod:`.model` scores mentions and antecedents -> :mod:`.decoding` links them into clusters ->
:mod:`.metrics` scores them as the reference scorer does. :mod:`.inference` (``CorefResolver``)
and :mod:`.run` (fine-tune / evaluate) put these together; :mod:`.gap` evaluates on GAP;
:mod:`.html` draws the clusters; :mod:`.cli` holds the commands.
"""

from __future__ import annotations

__all__ = ["CorefResolver", "read_conll", "write_conll", "score_corpus", "read_gap", "score_gap"]


def __getattr__(name: str):
    # Lazy: `import spanbert.coref` stays cheap; torch/transformers load on first use.
    if name == "CorefResolver":
        from .inference import CorefResolver

        return CorefResolver
    if name in ("read_conll", "write_conll"):
        from . import conll

        return getattr(conll, name)
    if name == "score_corpus":
        from .metrics import score_corpus

        return score_corpus
    if name in ("read_gap", "score_gap"):
        from . import gap

        return getattr(gap, name)
    raise AttributeError(name)
