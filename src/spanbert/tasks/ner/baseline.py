"""A dictionary baseline for NER: tag every occurrence of an entity string seen in training.

The lexicon maps each training entity's words (lowercased) to its most frequent type (ties:
alphabetical). Prediction scans each sentence left to right and takes the longest lexicon
match starting at each word (case-insensitive), so it never overlaps itself. On WNUT-17,
which was built so that test entities are mostly unseen, this is a low but honest bar.

    python -m spanbert.tasks.ner.baseline --train TRAIN.conll --data TEST.conll --output DIR
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from spanbert.core.atomic import atomic_write_json
from spanbert.tasks.ner.data import NerSentence, read_ner, write_conll
from spanbert.tasks.ner.scoring import score_tags
from spanbert.tasks.ner.tags import Span, spans_to_tags


def build_lexicon(sentences: Sequence[NerSentence]) -> dict[tuple[str, ...], str]:
    """Lowercased entity word tuples -> their most frequent type in ``sentences``."""
    counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for s in sentences:
        for span in s.spans:
            counts[tuple(w.lower() for w in s.tokens[span.start : span.end + 1])][span.label] += 1
    return {words: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for words, c in counts.items()}


def dictionary_spans(tokens: Sequence[str], lexicon: dict[tuple[str, ...], str]) -> list[Span]:
    """Longest-match-first lexicon spans of one sentence, left to right."""
    longest = max((len(k) for k in lexicon), default=0)
    lowered = [t.lower() for t in tokens]
    spans, i = [], 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            label = lexicon.get(tuple(lowered[i : i + n]))
            if label is not None:
                spans.append(Span(i, i + n - 1, label))
                i += n
                break
        else:
            i += 1
    return spans


def main(argv: list[str] | None = None) -> dict:
    """Write ``predictions.conll`` and ``metrics.json`` of the dictionary baseline; print the micro scores."""
    parser = argparse.ArgumentParser(prog="python -m spanbert.tasks.ner.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="CoNLL file (or dataset folder) whose entities form the lexicon")
    parser.add_argument("--data", required=True, help="CoNLL file to tag and score")
    parser.add_argument("--output", required=True, type=Path, help="folder for predictions.conll and metrics.json")
    a = parser.parse_args(argv)
    lexicon = build_lexicon(read_ner(a.train, split="train").sentences)
    data = read_ner(a.data, split="test")
    pred = [spans_to_tags(len(s.tokens), dictionary_spans(s.tokens, lexicon)) for s in data.sentences]
    metrics = score_tags([list(s.tags) for s in data.sentences], pred).to_json()
    a.output.mkdir(parents=True, exist_ok=True)
    write_conll(a.output / "predictions.conll", [list(zip(s.tokens, s.tags, p)) for s, p in zip(data.sentences, pred)])
    atomic_write_json(a.output / "metrics.json", {"baseline": "dictionary", "train": a.train, "data": a.data,
                                                  "lexicon_entries": len(lexicon), "metrics": metrics})
    print(f"dictionary baseline ({len(lexicon)} entries): precision {metrics['precision']:.4f} "
          f"recall {metrics['recall']:.4f} f1 {metrics['f1']:.4f}")
    return metrics


if __name__ == "__main__":
    main()
