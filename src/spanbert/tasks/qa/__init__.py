"""Extractive question answering (SQuAD 1.1/2.0 style) over documents of any length.

Data flows one way: :mod:`.data` reads examples -> :mod:`.features` cuts them into windows
-> the model scores start/end positions -> :mod:`.decoding` turns logits into answers ->
:mod:`.scoring` compares them with the gold answers the way the official scripts do.
"""

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "inference": ["QuestionAnswerer"],
    "data": ["read_qa", "QAExample"],
    "settings": ["WindowConfig", "DecodeConfig"],
    "scoring": ["score_squad_files"],
})
