"""Greedy extractive oracle: which sentences to label 1 for training (and the upper bound to report).

The rule (Nallapati et al.'s SummaRuNNer and Liu & Lapata's BertSum build labels this way):
start from an empty summary and repeatedly add the sentence that most increases

    gain(summary) = max over references r of (ROUGE-1 F1(summary, r) + ROUGE-2 F1(summary, r)) / 2

stopping when no sentence increases it or ``max_sentences`` are chosen. The summary is the
chosen sentences joined in document order, tokenised as ``rouge-score`` does with stemming on
(lower-case alphanumeric tokens, Porter stems), so ``gain`` equals what ``rouge-score`` computes
on the joined text. Ties go to the earlier sentence. Pure: a function of the texts only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=1)
def _tokenizer():
    from spanbert.core.extras import require

    tokenizers = require("rouge_score.tokenizers", "summarize", "the summarization oracle (ROUGE)")
    return tokenizers.DefaultTokenizer(use_stemmer=True)


def rouge_tokens(text: str) -> list[str]:
    """``text`` as ``rouge-score`` tokenises it with stemming: lower-case, alphanumeric, stemmed."""
    return _tokenizer().tokenize(text)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(pred: Counter, ref: Counter) -> float:
    """ROUGE-N F1 from n-gram counts (clipped overlap, as ROUGE counts it)."""
    overlap = sum((pred & ref).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(pred.values())
    recall = overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def oracle_gain(summary_tokens: Sequence[str], reference_tokens: Sequence[Sequence[str]]) -> float:
    """Max over references of the mean of ROUGE-1 and ROUGE-2 F1 (token lists in, 0..1 out)."""
    p1, p2 = _ngrams(summary_tokens, 1), _ngrams(summary_tokens, 2)
    return max(((_f1(p1, _ngrams(r, 1)) + _f1(p2, _ngrams(r, 2))) / 2 for r in reference_tokens), default=0.0)


def greedy_oracle(sentences: Sequence[str], references: Sequence[str], max_sentences: int | None = 3) -> list[int]:
    """Indices of the greedily chosen sentences, in the order they were chosen (see module doc).

    ``max_sentences=None`` stops only when no sentence increases the gain. Returns ``[]`` when
    no sentence shares a unigram or bigram with any reference.
    """
    tokens = [rouge_tokens(s) for s in sentences]
    refs = [rouge_tokens(r) for r in references]
    chosen: list[int] = []
    best = 0.0
    limit = len(sentences) if max_sentences is None else min(max_sentences, len(sentences))
    while len(chosen) < limit:
        pick, pick_gain = -1, best
        for i in range(len(sentences)):
            if i in chosen:
                continue
            order = sorted([*chosen, i])  # the summary reads in document order
            gain = oracle_gain([t for j in order for t in tokens[j]], refs)
            if gain > pick_gain:  # strictly better: ties keep the earlier sentence
                pick, pick_gain = i, gain
        if pick < 0:
            break
        chosen.append(pick)
        best = pick_gain
    return chosen


def oracle_labels(sentences: Sequence[str], references: Sequence[str], max_sentences: int | None = 3) -> list[int]:
    """0/1 per sentence: 1 for the sentences :func:`greedy_oracle` chooses."""
    chosen = set(greedy_oracle(sentences, references, max_sentences))
    return [int(i in chosen) for i in range(len(sentences))]


def oracle_agreement(examples) -> float | None:
    """Share of documents (:class:`~spanbert.tasks.summarize.data.SummaryExample`) whose greedy-oracle
    first choice is a sentence the file labels 1 (SciTLDR's ``source_labels``: the one sentence of
    best ROUGE-1 F1), among documents where the oracle chooses anything."""
    agree = []
    for ex in examples:
        first = greedy_oracle(ex.sentences, ex.references, 1)
        if first and ex.oracle_labels is not None:
            agree.append(ex.oracle_labels[first[0]] == 1)
    return round(sum(agree) / len(agree), 4) if agree else None


__all__ = ["greedy_oracle", "oracle_labels", "oracle_gain", "rouge_tokens", "oracle_agreement"]
