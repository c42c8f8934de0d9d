"""Decoding logits into answers: candidates, limits, max-context, null scores, long documents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spanbert.tasks.qa.data import QAExample
from spanbert.tasks.qa.decoding import decode_example
from spanbert.tasks.qa.features import NOT_CONTEXT, build_features
from spanbert.tasks.qa.scoring import apply_null_threshold
from spanbert.tasks.qa.settings import DecodeConfig, WindowConfig

from .conftest import DATA


def _window(context_tokens: int, question_tokens: int = 2):
    """Offsets of a window [CLS] q q [SEP] c0..cn [SEP], context token i = chars [2i, 2i+1)."""
    n = 1 + question_tokens + 1 + context_tokens + 1
    off = np.full((n, 2), NOT_CONTEXT)
    head = 2 + question_tokens
    for i in range(context_tokens):
        off[head + i] = (2 * i, 2 * i + 1)
    return off, head


CONTEXT = "a b c d e f g h i j"  # token i is the letter at 2i


def test_best_span_and_its_characters():
    off, head = _window(10)
    s, e = np.zeros(len(off)), np.zeros(len(off))
    s[head + 3], e[head + 5] = 5.0, 4.0  # "d e f"
    s[head + 1], e[head + 1] = 2.0, 2.0
    p = decode_example("q", CONTEXT, [s], [e], [off], [np.ones(len(off), bool)])
    assert (p.text, p.start, p.end) == ("d e f", 6, 11)
    assert p.score == pytest.approx(9.0)
    assert CONTEXT[p.start : p.end] == p.text
    assert sum(c.probability for c in p.nbest) == pytest.approx(1.0)
    assert len({c.text for c in p.nbest}) == len(p.nbest)


def test_never_inside_the_question_never_reversed_never_too_long():
    off, head = _window(10)
    s, e = np.zeros(len(off)), np.zeros(len(off))
    s[1], e[2] = 50.0, 50.0  # question tokens: not answers
    s[head + 6], e[head + 2] = 9.5, 9.0  # end 2 comes before start 6
    s[head + 3], e[head + 9] = 8.0, 8.0  # 3..9 is 7 tokens: too long for max 3
    s[head + 4], e[head + 5] = 1.0, 1.0
    p = decode_example("q", CONTEXT, [s], [e], [off], [np.ones(len(off), bool)], DecodeConfig(max_answer_tokens=3))
    assert all(c.end - c.start <= 5 for c in p.nbest)  # <= 3 one-letter tokens and 2 spaces
    # allowed: start 6 (9.5) + end 6, 7 or 8 (0) = 9.5, ties broken by the shortest -> "g";
    # then 9: starts 0, 1, 2 (0) + end 2 (9) -> "a b c", "b c", "c", and start 3 (8) + end 5 (1)
    # -> "d e f", ties in text order; start 4 + end 5 = 2 comes later
    assert (p.text, p.score) == ("g", 9.5)
    assert [c.text for c in p.nbest[:7]] == ["g", "g h", "g h i", "a b c", "b c", "c", "d e f"]


def test_start_only_from_its_max_context_window():
    off, head = _window(10)
    s, e = np.zeros(len(off)), np.zeros(len(off))
    s[head + 2], e[head + 2] = 5.0, 5.0
    best = np.ones(len(off), bool)
    best[head + 2] = False  # another window owns token 2
    p = decode_example("q", CONTEXT, [s], [e], [off], [best])
    assert p.text != "c"


def test_null_score_is_the_minimum_over_windows_and_threshold_decides():
    off, head = _window(10)
    s1, e1 = np.zeros(len(off)), np.zeros(len(off))
    s2, e2 = np.zeros(len(off)), np.zeros(len(off))
    s1[0], e1[0] = 3.0, 3.0  # null 6
    s2[0], e2[0] = 1.0, 1.5  # null 2.5: the minimum
    s1[head + 4], e1[head + 4] = 1.0, 1.0  # best span 2.0
    best = np.ones(len(off), bool)
    args = ("q", CONTEXT, [s1, s2], [e1, e2], [off, off], [best, best])
    p = decode_example(*args, DecodeConfig(allow_null=True, null_threshold=0.0))
    assert p.null_score == pytest.approx(2.5) and p.null_odds == pytest.approx(0.5)
    assert (p.text, p.start, p.end) == ("", -1, -1)  # 0.5 > 0
    null = next(c for c in p.nbest if c.text == "")
    assert (null.start_logit, null.end_logit) == (1.0, 1.5)  # the [CLS] logits of the minimum window
    p = decode_example(*args, DecodeConfig(allow_null=True, null_threshold=0.6))
    assert p.text == "e"
    p = decode_example(*args, DecodeConfig(allow_null=False))
    assert p.text == "e" and "" not in [c.text for c in p.nbest]
    assert apply_null_threshold([p], 0.4) == {"q": ""} and apply_null_threshold([p], 0.5) == {"q": "e"}


def _long_document(shared) -> str:
    """A State of the Union address of 10,000+ words when the shared corpus is there, else the
    committed 1790 address repeated to that length."""
    if shared is not None:
        import gzip

        with gzip.open(shared / "corpus" / "sotu.jsonl.gz", "rt") as f:
            for line in f:
                text = json.loads(line)["text"]
                if len(text.split()) >= 10_000:
                    return text
    base = (DATA / "sotu_1790_washington.txt").read_text()
    return "\n\n".join([base] * (10_000 // len(base.split()) + 1))


@pytest.mark.parametrize("use_shared", [False, True])
def test_long_document_answer_near_the_end_has_exact_offsets(use_shared, request, minilm_dir):
    """Windowing + decoding on a 10,000-word speech: an answer in the last paragraph is found in
    whichever window owns it, with character offsets into the original text."""
    from spanbert.core.checkpoints import load_tokenizer

    shared = request.getfixturevalue("shared_data") if use_shared else None
    tok = load_tokenizer(str(minilm_dir))
    text = _long_document(shared)
    assert len(text.split()) >= 10_000
    # the answer: the last 3-word run of letters-only words near the end
    words = [(m.start(), m.end()) for m in __import__("re").finditer(r"[A-Za-z]+", text)]
    a, b = words[-40][0], words[-38][1]
    answer = text[a:b]
    feats = build_features([QAExample("q", "What was said at the end?", text)], tok, WindowConfig())
    assert len(feats) > 30  # many windows
    starts, ends = [], []
    for w in range(len(feats)):  # "model": high logits on the answer's first and last token, everywhere
        off = feats.offsets[w]
        s, e = np.zeros(len(off)), np.zeros(len(off))
        s[(off[:, 0] == a)] = 10.0
        e[(off[:, 1] == b)] = 10.0
        starts.append(s)
        ends.append(e)
    p = decode_example("q", text, starts, ends, feats.offsets, feats.max_context)
    assert (p.text, p.start, p.end) == (answer, a, b)
    owners = [w for w in range(len(feats)) if feats.max_context[w][feats.offsets[w][:, 0] == a].any()]
    assert len(owners) == 1 and owners[0] >= len(feats) - 2


def test_squad2_metrics_follow_the_threshold_even_above_one():
    """The official script forces "no answer" above na_prob_thresh (default 1.0); our metrics
    use the model's own threshold, so they agree with predictions.json whatever it is."""
    from spanbert.tasks.qa.decoding import Candidate, Prediction
    from spanbert.tasks.qa.scoring import GoldQuestion, SquadGold, evaluate_predictions

    span = Candidate("Paris", 0, 5, 1.0, 1.0)
    p = Prediction("q", "Paris", 0, 5, 2.0, 3.5, 1.5, [span], span)  # null odds 1.5
    gold = SquadGold((GoldQuestion("q", ("Paris",)),))
    metrics, _, _ = evaluate_predictions([p], gold, "2.0", fit_threshold=False, null_threshold=2.0)
    assert metrics["f1"] == 100.0  # answered, since 1.5 <= 2.0
    metrics, _, _ = evaluate_predictions([p], gold, "2.0", fit_threshold=False, null_threshold=1.0)
    assert metrics["f1"] == 0.0
