"""Antecedent scores -> clusters (pure functions).

Greedy linking as in Lee et al.: every kept span takes its best-scoring antecedent; when
that is the dummy the span starts no link; the clusters are the transitive closure of the
links. Spans never linked, and never linked to, are not mentions, unless a singleton
threshold is given: then each such span whose mention score is above it is a cluster of its
own (for data that annotates singletons, such as LitBank; the mention scores must have been
trained for it, with a mention loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Span = tuple[int, int]


def predicted_antecedents(scores: np.ndarray, antecedents: np.ndarray) -> list[int]:
    """For each top span, the index (into the top spans) of its best antecedent, -1 for the
    dummy. ``scores`` (k, c + 1) with the dummy in column 0; ``antecedents`` (k, c).
    Impossible antecedents carry a very negative score, so the dummy (0) beats them."""
    best = np.asarray(scores).argmax(axis=1)
    return [int(antecedents[i, b - 1]) if b > 0 else -1 for i, b in enumerate(best)]


def clusters_from_antecedents(spans: Sequence[Span], antecedents: Sequence[int],
                              singletons: Sequence[bool] | None = None) -> list[list[Span]]:
    """Clusters (lists of spans, sorted) of the links ``i -> antecedents[i]`` (-1: none), merged
    transitively, plus ``[spans[i]]`` for each unlinked span with ``singletons[i]`` true;
    clusters ordered by their first mention."""
    parent = list(range(len(spans)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    linked = set()
    for i, j in enumerate(antecedents):
        if j >= 0:
            parent[root(i)] = root(j)
            linked.update((i, j))
    if singletons is not None:
        linked.update(i for i, keep in enumerate(singletons) if keep)
    groups: dict[int, set[Span]] = {}
    for i in sorted(linked):
        groups.setdefault(root(i), set()).add(tuple(map(int, spans[i])))
    clusters = [sorted(g) for g in groups.values()]
    return sorted(clusters, key=lambda c: c[0])


def decode_clusters(top_words: np.ndarray, scores: np.ndarray, antecedents: np.ndarray,
                    mention_scores: np.ndarray | None = None, singleton_threshold: float | None = None) -> list[list[Span]]:
    """Word-level clusters from the model's output: ``top_words`` (k, 2) word spans of the
    kept spans, ``scores`` (k, c + 1), ``antecedents`` (k, c); with ``singleton_threshold``,
    unlinked spans whose ``mention_scores`` (k,) exceed it are singleton clusters."""
    singletons = None
    if singleton_threshold is not None:
        if mention_scores is None:
            raise ValueError("singleton_threshold needs the top spans' mention_scores")
        singletons = (np.asarray(mention_scores) > singleton_threshold).tolist()
    return clusters_from_antecedents([tuple(s) for s in np.asarray(top_words).tolist()],
                                     predicted_antecedents(scores, antecedents), singletons)


__all__ = ["clusters_from_antecedents", "decode_clusters", "predicted_antecedents"]
