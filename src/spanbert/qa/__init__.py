"""Extractive question answering (SQuAD 1.1/2.0 style) over documents of any length.

Data flows one way: :mod:`.data` reads examples -> :mod:`.features` cuts them into windows
-> the model scores start/end positions -> :mod:`.decoding` turns logits into answers ->
:mod:`.scoring` compares them with the gold answers the way the official scripts do.
"""

from __future__ import annotations

__all__ = ["QuestionAnswerer", "read_qa", "QAExample", "WindowConfig", "DecodeConfig", "score_squad_files"]


def __getattr__(name: str):
    # Lazy: `import spanbert.qa` stays cheap; torch/transformers load on first use.
    if name == "QuestionAnswerer":
        from .inference import QuestionAnswerer

        return QuestionAnswerer
    if name in ("read_qa", "QAExample"):
        from . import data

        return getattr(data, name)
    if name == "WindowConfig":
        from .features import WindowConfig

        return WindowConfig
    if name == "DecodeConfig":
        from .decoding import DecodeConfig

        return DecodeConfig
    if name == "score_squad_files":
        from .scoring import score_squad_files

        return score_squad_files
    raise AttributeError(name)
