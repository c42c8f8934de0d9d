"""Classification metrics: accuracy, per-class precision/recall/F1, macro-F1, and the
majority-class baseline. Pure functions of label ids.

Macro-F1 is the unweighted mean of per-class F1 over the label set (scikit-learn's
``f1_score(average="macro")`` with ``labels`` given; a class never predicted nor present has
F1 0 there, so we average only over classes present in gold or predictions, as scikit-learn
does when ``labels`` is not given).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_metrics(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict:
    """``accuracy``, ``macro_f1`` (x100) and ``per_class`` P/R/F1/support for label ids."""
    g, p = np.asarray(gold), np.asarray(predicted)
    if len(g) != len(p) or len(g) == 0:
        raise ValueError(f"gold ({len(g)}) and predictions ({len(p)}) must be non-empty and of equal length")
    per_class, f1s = {}, []
    for k, name in enumerate(labels):
        tp = int(np.sum((g == k) & (p == k)))
        n_pred, n_gold = int(np.sum(p == k)), int(np.sum(g == k))
        if n_pred == 0 and n_gold == 0:
            continue
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[name] = {"precision": round(100 * precision, 4), "recall": round(100 * recall, 4),
                           "f1": round(100 * f1, 4), "support": n_gold}
    return {"accuracy": round(100 * float(np.mean(g == p)), 4), "macro_f1": round(100 * float(np.mean(f1s)), 4),
            "examples": int(len(g)), "per_class": per_class}


def majority_baseline(train_ids: Sequence[int], gold: Sequence[int], labels: Sequence[str]) -> dict:
    """Metrics of always predicting the most frequent training label (ties: the lowest id)."""
    majority = int(np.bincount(np.asarray(train_ids), minlength=len(labels)).argmax())
    metrics = classification_metrics(gold, [majority] * len(gold), labels)
    return {"label": labels[majority], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


__all__ = ["classification_metrics", "majority_baseline"]
