"""Coreference metrics with the semantics of the CoNLL reference scorer v8.01.

Input: per document, the key (gold) and response (system) clusters, each a sequence of
clusters, each a sequence of inclusive token spans ``(start, end)`` -- what
:func:`spanbert.tasks.coref.conll.read_conll_clusters` returns. Mentions match only on the exact
span. Before scoring, every mention is given an integer id as the reference scorer
(``lib/CorScorer.pm``, ``IdentifMentions``) does, which fixes its handling of odd input:

- key mentions are numbered in file order; a span repeated in the key keeps the id of its
  last occurrence (both occurrences then carry that id);
- response clusters are visited in order (of first appearance of their id in the file): a
  span that is a key mention and was already seen in the response is dropped (a repeated
  mention), clusters left empty are dropped; response spans not in the key ("twinless") get
  fresh ids, a repeated twinless span keeps one id and is *not* dropped.

Then, on those id chains (all metrics use the chains as they are; singletons count):

- MUC (Vilain et al. 1995): recall = sum_k (|k| - p(k)) / sum_k (|k| - 1) as link counts.
- B-cubed (Bagga & Baldwin 1998): per response mention, |r ∩ k| / |r| (precision) and
  |r ∩ k| / |k| (recall) with k the key cluster of the mention (empty if twinless);
  denominators are the numbers of key and response mentions.
- CEAF (Luo 2005): the best one-to-one alignment of key and response clusters
  (:func:`max_weight_assignment`, an exact Hungarian solver; the reference scorer uses
  Munkres' algorithm) under phi3 = |k ∩ r| (CEAF-m, denominators = mentions) or
  phi4 = 2 |k ∩ r| / (|k| + |r|) (CEAF-e, denominators = clusters).
- BLANC (Recasens & Hovy 2011, extended to system mentions by Luo et al. 2014): coreference
  and non-coreference links as sets of mention-id pairs; R, P and F are the means of the
  coreference-link and non-coreference-link values (F is not the harmonic mean of R and P),
  or those of the one kind alone when the key has no link of the other kind.

Over a corpus the scorer sums numerators and denominators over documents and divides once
(BLANC: sums its eight link counts); :func:`score_corpus` does the same. A key document
absent from the response is scored against an empty response. The CoNLL score is the mean
of the MUC, B-cubed and CEAF-e F1. Upstream's "too many repeated mentions (> 10)" abort is
not reproduced (we score such input). tests/test_coref_metrics.py checks all 36 of the
scorer's own test cases against its published and its actual numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from spanbert.core.errors import ConfigError

Span = tuple[int, int]
Clusters = Sequence[Sequence[Span]]
Chains = list[list[int]]

METRICS = ("muc", "bcub", "ceafm", "ceafe", "blanc")


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _number(x: float) -> int | float:
    """Whole counts as ints in JSON (3, not 3.0); fractional ones (B-cubed, CEAF-e) as they are."""
    return int(x) if float(x).is_integer() else float(x)


def _f1(recall: float, precision: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(frozen=True)
class Counts:
    """Numerators and denominators of recall and precision, as the scorer returns them.

    ``recall = recall_num / recall_den`` (0 when the denominator is 0), likewise precision;
    ``f1`` is their harmonic mean (0 when both are 0). Counts add (corpus totals)."""

    recall_num: float = 0.0
    recall_den: float = 0.0
    precision_num: float = 0.0
    precision_den: float = 0.0

    @property
    def recall(self) -> float:
        return _ratio(self.recall_num, self.recall_den)

    @property
    def precision(self) -> float:
        return _ratio(self.precision_num, self.precision_den)

    @property
    def f1(self) -> float:
        return _f1(self.recall, self.precision)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.recall_num + other.recall_num, self.recall_den + other.recall_den,
                      self.precision_num + other.precision_num, self.precision_den + other.precision_den)

    def to_json(self) -> dict:
        """Recall, precision and F1 in percent (as the scorer prints them, unrounded) and the counts."""
        return {"recall": 100 * self.recall, "precision": 100 * self.precision, "f1": 100 * self.f1,
                "recall_num_den": [_number(self.recall_num), _number(self.recall_den)],
                "precision_num_den": [_number(self.precision_num), _number(self.precision_den)]}


@dataclass(frozen=True)
class BlancCounts:
    """BLANC's link counts: ``coref`` (coreference links) and ``noncoref`` (non-coreference
    links), each as :class:`Counts` (correct / key links, correct / response links)."""

    coref: Counts = field(default_factory=Counts)
    noncoref: Counts = field(default_factory=Counts)

    def _kinds(self) -> list[Counts]:
        # The scorer averages the two kinds, or uses the one kind the key has (none: all 0).
        return [c for c in (self.coref, self.noncoref) if c.recall_den]

    @property
    def recall(self) -> float:
        kinds = self._kinds()
        return sum(c.recall for c in kinds) / len(kinds) if kinds else 0.0

    @property
    def precision(self) -> float:
        kinds = self._kinds()
        return sum(c.precision for c in kinds) / len(kinds) if kinds else 0.0

    @property
    def f1(self) -> float:
        kinds = self._kinds()
        return sum(c.f1 for c in kinds) / len(kinds) if kinds else 0.0

    def __add__(self, other: BlancCounts) -> BlancCounts:
        return BlancCounts(self.coref + other.coref, self.noncoref + other.noncoref)

    def to_json(self) -> dict:
        """BLANC recall, precision, F1 in percent and the link counts of both kinds."""
        return {"recall": 100 * self.recall, "precision": 100 * self.precision, "f1": 100 * self.f1,
                "coref_links": self.coref.to_json(), "noncoref_links": self.noncoref.to_json()}


# ---------------------------------------------------------------------------------------------
# Mention ids (the scorer's IdentifMentions)


@dataclass(frozen=True)
class AlignedDocument:
    """One document's key and response clusters as chains of mention ids (see module doc)."""

    key: Chains
    response: Chains
    mentions: Counts  # mention identification: exact matches / unique key spans, / unique response spans


def align_mentions(key: Clusters, response: Clusters) -> AlignedDocument:
    """Give every mention an id as the reference scorer does, dropping repeated response mentions."""
    key_id: dict[Span, int] = {}
    next_id = 0
    for cluster in key:
        for mention in cluster:
            key_id[tuple(mention)] = next_id  # a repeated key span keeps its last id
            next_id += 1
    response_id: dict[Span, int] = {}
    exact = 0
    kept: list[list[Span]] = []
    for cluster in response:
        spans = []
        for mention in cluster:
            span = tuple(mention)
            if span in response_id:  # only key spans are in response_id yet: a repeated key mention
                continue
            if span in key_id:
                response_id[span] = key_id[span]
                exact += 1
            spans.append(span)
        if spans:
            kept.append(spans)
    for spans in kept:
        for span in spans:
            if span not in response_id:  # twinless: a fresh id, shared by its repeats
                response_id[span] = next_id
                next_id += 1
    key_chains = [[key_id[tuple(m)] for m in cluster] for cluster in key]
    response_chains = [[response_id[s] for s in spans] for spans in kept]
    return AlignedDocument(key_chains, response_chains, Counts(exact, len(key_id), exact, len(response_id)))


def _last_index(chains: Chains) -> dict[int, int]:
    """Mention id -> index of the (last) chain holding it, as the scorer's ``Indexa``."""
    return {m: i for i, chain in enumerate(chains) for m in chain}


# ---------------------------------------------------------------------------------------------
# The metrics on id chains


def _muc(key: Chains, response: Chains) -> Counts:
    key_index = _last_index(key)
    correct = 0
    for chain in response:
        # A mention is a correct link when a later mention of its chain is in the same key chain:
        # sum over response chains of (|r ∩ key mentions| - number of key chains they fall in).
        seen: set[int] = set()
        for m in reversed(chain):
            k = key_index.get(m)
            if k is not None:
                correct += k in seen
                seen.add(k)
    key_links = sum(len(c) - 1 for c in key if c)
    response_links = sum(len(c) - 1 for c in response if c)
    return Counts(correct, key_links, correct, response_links)


def _b_cubed(key: Chains, response: Chains) -> Counts:
    key_index = _last_index(key)
    key_sets = [set(c) for c in key]
    recall = precision = 0.0
    for chain in response:
        for m in chain:
            k = key_index.get(m)
            if k is None:  # twinless response mention: no overlap
                continue
            common = sum(1 for r in chain if r in key_sets[k])
            precision += common / len(chain)
            recall += common / len(key[k])
    return Counts(recall, sum(map(len, key)), precision, sum(map(len, response)))


def _overlaps(key: Chains, response: Chains) -> np.ndarray:
    """(num key chains, num response chains): how many members of key chain i are in response chain j."""
    where: dict[int, set[int]] = defaultdict(set)
    for j, chain in enumerate(response):
        for m in chain:
            where[m].add(j)
    overlap = np.zeros((len(key), len(response)))
    for i, chain in enumerate(key):
        for m in chain:
            for j in where.get(m, ()):
                overlap[i, j] += 1
    return overlap


def max_weight_assignment(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one assignment of rows to columns of largest total weight, exactly.

    ``weights``: (R, C), finite. Returns ``(rows, cols)``, each of length min(R, C), rows in
    increasing order, so that ``weights[rows, cols].sum()`` is the maximum over all
    assignments of min(R, C) pairs -- what ``scipy.optimize.linear_sum_assignment(weights,
    maximize=True)`` returns (tests/test_extras.py compares the two on random matrices; on
    ties the chosen pairs may differ, the total does not).

    The Hungarian method in its shortest-augmenting-path form (Kuhn 1955, Munkres 1957;
    O(R^2 C) for R <= C): rows join one at a time, each along the cheapest path of
    alternating edges under the dual potentials ``u`` (rows) and ``v`` (columns), which keeps
    every reduced cost ``cost[i, j] - u[i] - v[j]`` >= 0 and the matched ones at 0.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a matrix, got shape {weights.shape}")
    if weights.shape[0] > weights.shape[1]:  # the algorithm wants rows <= columns
        cols, rows = max_weight_assignment(weights.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    n, m = weights.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cost = -weights  # maximise weight = minimise cost
    # 1-based as in the textbook form: column 0 is a virtual column where each new row starts
    u = np.zeros(n + 1)  # row potentials
    v = np.zeros(m + 1)  # column potentials
    row_of = np.zeros(m + 1, dtype=np.int64)  # row_of[j]: the row matched to column j (0: none)
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0  # the column whose row is extended next
        min_reduced = np.full(m + 1, np.inf)  # cheapest reduced cost of reaching each column so far
        came_from = np.zeros(m + 1, dtype=np.int64)  # the previous column on that cheapest path
        used = np.zeros(m + 1, dtype=bool)  # columns in the alternating tree
        while True:
            used[j0] = True
            i0 = row_of[j0]
            reduced = cost[i0 - 1] - u[i0] - v[1:]  # (m,)
            better = ~used[1:] & (reduced < min_reduced[1:])
            min_reduced[1:][better] = reduced[better]
            came_from[1:][better] = j0
            j1 = 1 + int(np.argmin(np.where(used[1:], np.inf, min_reduced[1:])))
            delta = min_reduced[j1]
            u[row_of[used]] += delta  # rows in the tree (each once: a row is matched to one column)
            v[used] -= delta
            min_reduced[~used] -= delta
            j0 = j1
            if row_of[j0] == 0:  # a free column: augment along the path back to column 0
                break
        while j0:
            j1 = came_from[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    matched = np.nonzero(row_of[1:])[0]  # columns (0-based) with a row
    rows = row_of[1:][matched] - 1
    order = np.argsort(rows)
    return rows[order], matched[order]


def _ceaf(key: Chains, response: Chains, entity_based: bool) -> Counts:
    overlap = _overlaps(key, response)  # (K, R)
    if entity_based:  # phi4 = 2 |k ∩ r| / (|k| + |r|)
        key_sizes = np.array([len(c) for c in key], dtype=float)
        response_sizes = np.array([len(c) for c in response], dtype=float)
        sizes = key_sizes[:, None] + response_sizes[None, :]  # (K, R)
        similarity = 2 * overlap / np.where(sizes == 0, 1, sizes)
        recall_den, precision_den = sum(1 for c in key if c), sum(1 for c in response if c)
    else:  # phi3 = |k ∩ r|
        similarity = overlap
        recall_den, precision_den = sum(map(len, key)), sum(map(len, response))
    total = 0.0
    if similarity.size:
        rows, cols = max_weight_assignment(similarity)
        total = float(similarity[rows, cols].sum())
    return Counts(total, recall_den, total, precision_den)


def _link_sets(chains: Chains) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Coreference and non-coreference links as sets of sorted id pairs (pairs of positions,
    so a repeated id gives a self-pair, as the scorer's Math::Combinatorics does)."""
    coref = {(min(a, b), max(a, b)) for chain in chains for a, b in combinations(chain, 2)}
    noncoref = {(min(a, b), max(a, b)) for c1, c2 in combinations(chains, 2) for a in c1 for b in c2}
    return coref, noncoref


def _pairs(n: int | np.ndarray):
    return n * (n - 1) // 2


def _blanc(key: Chains, response: Chains) -> BlancCounts:
    key_ids = [m for c in key for m in c]
    response_ids = [m for c in response for m in c]
    if len(set(key_ids)) < len(key_ids) or len(set(response_ids)) < len(response_ids):
        # Repeated ids (repeated spans): count the link sets themselves, as the scorer does.
        key_coref, key_non = _link_sets(key)
        response_coref, response_non = _link_sets(response)
        return BlancCounts(
            Counts(len(key_coref & response_coref), len(key_coref), len(key_coref & response_coref), len(response_coref)),
            Counts(len(key_non & response_non), len(key_non), len(key_non & response_non), len(response_non)))
    # Every id is in one chain per side: the link counts follow from the cluster overlaps.
    overlap = _overlaps(key, response).astype(np.int64)  # (K, R)
    key_coref = sum(_pairs(len(c)) for c in key)
    response_coref = sum(_pairs(len(c)) for c in response)
    key_non = _pairs(len(key_ids)) - key_coref
    response_non = _pairs(len(response_ids)) - response_coref
    both_coref = int(_pairs(overlap).sum())  # same key chain and same response chain
    common = int(overlap.sum())  # mentions in both
    # pairs of common mentions, less those in one key chain or in one response chain (inclusion-exclusion)
    both_non = (_pairs(common) - int(_pairs(overlap.sum(axis=1)).sum()) - int(_pairs(overlap.sum(axis=0)).sum())
                + both_coref)
    return BlancCounts(Counts(both_coref, key_coref, both_coref, response_coref),
                       Counts(both_non, key_non, both_non, response_non))


_ON_CHAINS = {
    "muc": _muc,
    "bcub": _b_cubed,
    "ceafm": lambda k, r: _ceaf(k, r, entity_based=False),
    "ceafe": lambda k, r: _ceaf(k, r, entity_based=True),
    "blanc": _blanc,
}


def check_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """Metric names from ``"all"``, one name or a comma-separated list; a bad name is a ConfigError."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [n.strip().lower() for n in names if n.strip()]
    if names == ["all"]:
        return METRICS
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise ConfigError(f"metric: {','.join(bad) or repr(metrics)} is not one of all, {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------
# Public API on span clusters


def muc(key: Clusters, response: Clusters) -> Counts:
    """MUC link-based counts of one document."""
    aligned = align_mentions(key, response)
    return _muc(aligned.key, aligned.response)


def b_cubed(key: Clusters, response: Clusters) -> Counts:
    """B-cubed mention-based counts of one document."""
    aligned = align_mentions(key, response)
    return _b_cubed(aligned.key, aligned.response)


def ceaf_m(key: Clusters, response: Clusters) -> Counts:
    """CEAF with the mention-based similarity phi3 of one document."""
    aligned = align_mentions(key, response)
    return _ceaf(aligned.key, aligned.response, entity_based=False)


def ceaf_e(key: Clusters, response: Clusters) -> Counts:
    """CEAF with the entity-based similarity phi4 of one document."""
    aligned = align_mentions(key, response)
    return _ceaf(aligned.key, aligned.response, entity_based=True)


def blanc(key: Clusters, response: Clusters) -> BlancCounts:
    """BLANC link counts of one document (system-mention extension of Luo et al. 2014)."""
    aligned = align_mentions(key, response)
    return _blanc(aligned.key, aligned.response)


def mention_identification(key: Clusters, response: Clusters) -> Counts:
    """Exact-span mention detection counts of one document, as the scorer prints them."""
    return align_mentions(key, response).mentions


@dataclass(frozen=True)
class CorefScores:
    """Corpus totals: ``metrics`` maps a metric name to its summed counts; ``mentions`` is
    mention identification; ``documents`` the number of key documents scored."""

    metrics: dict[str, Counts | BlancCounts]
    mentions: Counts
    documents: int

    @property
    def conll_f1(self) -> float | None:
        """Mean of the MUC, B-cubed and CEAF-e F1 (a fraction); None unless all three were computed."""
        if not all(name in self.metrics for name in ("muc", "bcub", "ceafe")):
            return None
        return (self.metrics["muc"].f1 + self.metrics["bcub"].f1 + self.metrics["ceafe"].f1) / 3

    def to_json(self) -> dict:
        """Everything in percent, as the scorer prints it (unrounded), plus the raw counts."""
        out: dict = {"documents": self.documents, "mentions": self.mentions.to_json()}
        for name, counts in self.metrics.items():
            out[name] = counts.to_json()
        if self.conll_f1 is not None:
            out["conll_f1"] = 100 * self.conll_f1
        return out


def score_document(key: Clusters, response: Clusters, metrics: str | Sequence[str] = METRICS) -> CorefScores:
    """All requested metrics of one document."""
    names = check_metrics(metrics)
    aligned = align_mentions(key, response)
    return CorefScores({name: _ON_CHAINS[name](aligned.key, aligned.response) for name in names}, aligned.mentions, 1)


def score_corpus(key: Mapping[str, Clusters], response: Mapping[str, Clusters],
                 metrics: str | Sequence[str] = METRICS) -> CorefScores:
    """Sum each metric's counts over the key documents (a document missing from ``response``
    is scored against no response mentions), as the reference scorer does. Response documents
    that are not in the key are ignored here (the CLI refuses them)."""
    names = check_metrics(metrics)
    totals: dict[str, Counts | BlancCounts] = {name: BlancCounts() if name == "blanc" else Counts() for name in names}
    mentions = Counts()
    for name, key_clusters in key.items():
        aligned = align_mentions(key_clusters, response.get(name, []))
        mentions = mentions + aligned.mentions
        for metric in names:
            totals[metric] = totals[metric] + _ON_CHAINS[metric](aligned.key, aligned.response)
    return CorefScores(totals, mentions, len(key))


def conll_f1(key: Mapping[str, Clusters], response: Mapping[str, Clusters]) -> float:
    """The CoNLL-2012 score (a fraction): mean F1 of MUC, B-cubed and CEAF-e over the corpus."""
    return score_corpus(key, response, ("muc", "bcub", "ceafe")).conll_f1


__all__ = ["METRICS", "AlignedDocument", "BlancCounts", "Counts", "CorefScores", "align_mentions", "b_cubed",
           "blanc", "ceaf_e", "ceaf_m", "check_metrics", "conll_f1", "max_weight_assignment", "mention_identification", "muc",
           "score_corpus", "score_document"]
