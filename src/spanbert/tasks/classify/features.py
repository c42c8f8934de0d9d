"""Windows of a classification input, and batches of windows.

A text longer than ``max_seq_length`` is cut into overlapping windows by the fast tokenizer
(``return_overflowing_tokens`` with ``stride`` = ``window_overlap``); each window is a full
``[CLS] ... [SEP]`` input. In training every window carries its document's label; at
prediction the windows' logits are averaged per document (:func:`aggregate_logits`). Sentence
pairs are truncated to one window (longest first), as GLUE fine-tuning does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spanbert.tasks.classify.settings import ClassifySettings


@dataclass
class Windows:
    """Token windows; ``doc[i]`` is the input item window ``i`` came from."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    doc: np.ndarray  # (windows,)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def build_windows(tokenizer, texts: Sequence[str], settings: ClassifySettings,
                  text_pairs: Sequence[str] | None = None) -> Windows:
    """Tokenise ``texts`` (and pairs) into windows of at most ``settings.max_seq_length`` tokens."""
    if text_pairs is not None:
        enc = tokenizer(list(texts), list(text_pairs), truncation="longest_first", max_length=settings.max_seq_length,
                        return_token_type_ids=True)
        doc = np.arange(len(texts))
    else:
        enc = tokenizer(list(texts), truncation=True, max_length=settings.max_seq_length, stride=settings.window_overlap,
                        return_overflowing_tokens=True, return_token_type_ids=True)
        doc = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
    return Windows(enc["input_ids"], enc["token_type_ids"], doc)


def collate(windows: Windows, indices: Sequence[int], pad_id: int, labels: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """A padded batch of the windows ``indices`` (with ``labels`` per window when given)."""
    width = max(len(windows.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)  # (batch, width)
    types = torch.zeros((len(indices), width), dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(windows.input_ids[i])
        ids[row, :n] = torch.tensor(windows.input_ids[i])
        types[row, :n] = torch.tensor(windows.token_type_ids[i])
        mask[row, :n] = 1
    batch = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels[np.asarray(indices)], dtype=torch.long)
    return batch


def aggregate_logits(window_logits: np.ndarray, doc: np.ndarray, num_docs: int, how: str = "mean") -> np.ndarray:
    """Per-document logits ``(docs, labels)`` from per-window logits ``(windows, labels)``."""
    out = np.zeros((num_docs, window_logits.shape[1]), dtype=np.float64)
    if how == "first":
        first = np.full(num_docs, -1)
        for w in range(len(doc) - 1, -1, -1):
            first[doc[w]] = w
        return window_logits[first].astype(np.float64)
    if how == "max":
        out[:] = -np.inf
        np.maximum.at(out, doc, window_logits)
        return out
    np.add.at(out, doc, window_logits)
    counts = np.bincount(doc, minlength=num_docs)[:, None]
    return out / np.maximum(counts, 1)


__all__ = ["ClassifySettings", "Windows", "build_windows", "collate", "aggregate_logits"]
