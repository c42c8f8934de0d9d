"""Tests for spanbert.tasks.ner.scoring: the same numbers as the ``seqeval`` package, in its default
(conlleval-like) mode and its strict IOB2 / IOBES modes, on hand-made tricky sequences,
hypothesis-generated tag sequences and real WNUT-17 gold against perturbed predictions; hand
computations; and ``spanbert score ner`` on files (alignment errors name file and line)."""

from __future__ import annotations

import json
import random
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.cli import main
from spanbert.core.errors import ConfigError
from spanbert.tasks.ner.data import read_conll
from spanbert.tasks.ner.scoring import score_tags
from spanbert.tasks.ner.tags import Span, spans_to_tags

from .conftest import DATA

seqeval = pytest.importorskip("seqeval", reason="seqeval (a test extra) is the reference scorer")
from seqeval.metrics import classification_report  # noqa: E402
from seqeval.scheme import IOB2, IOBES  # noqa: E402

SAMPLE = DATA / "ner" / "wnut17_train_sample.conll"


def reference(gold, pred, mode="default", scheme="IOB2") -> dict:
    """seqeval's classification report as a dict (zero_division=0, as ours)."""
    kwargs = {"mode": "strict", "scheme": {"IOB2": IOB2, "IOBES": IOBES}[scheme]} if mode == "strict" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return classification_report(gold, pred, output_dict=True, zero_division=0, **kwargs)


def assert_same_as_seqeval(gold, pred, mode="default", scheme="IOB2") -> None:
    ours = score_tags(gold, pred, mode, scheme)
    ref = reference(gold, pred, mode, scheme)
    averages = {"micro avg": ours.micro, "macro avg": ours.macro, "weighted avg": ours.weighted}
    assert set(ref) - set(averages) == set(ours.per_type)
    if not ours.per_type:  # no entity anywhere: seqeval's macro average is nan, ours 0
        return
    for name, row in [*ours.per_type.items(), *averages.items()]:
        r = ref[name]
        assert (row.precision, row.recall, row.f1, row.support) == (r["precision"], r["recall"], r["f1-score"], r["support"]), name


TRICKY = [
    # (gold, prediction): one sentence each unless nested
    (["O", "I-PER", "I-PER", "O"], ["O", "B-PER", "I-PER", "O"]),  # I- after O starts a chunk by default
    (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),  # a type change splits a chunk
    (["B-PER", "B-PER", "I-PER"], ["B-PER", "I-PER", "I-PER"]),  # adjacent chunks of one type
    (["B-LOC", "I-LOC", "O", "I-LOC"], ["I-LOC", "I-LOC", "O", "B-LOC"]),
    (["I-ORG", "B-ORG", "I-ORG"], ["B-ORG", "I-ORG", "I-ORG"]),  # IOB1-style gold
    (["B-MISC", "I-MISC", "I-PER", "I-PER", "O"], ["B-MISC", "I-MISC", "B-PER", "I-PER", "O"]),
    (["O", "O", "O"], ["B-PER", "O", "I-LOC"]),  # no gold entity: recall undefined -> 0
    (["B-PER", "I-PER", "O"], ["O", "O", "O"]),  # no prediction: precision undefined -> 0
    (["B-creative-work", "I-creative-work"], ["B-creative-work", "I-creative-work"]),  # a type containing '-'
]
TRICKY_IOBES = [
    (["B-PER", "I-PER", "E-PER", "S-LOC"], ["B-PER", "I-PER", "I-PER", "S-LOC"]),  # unfinished chunk (strict drops it)
    (["S-PER", "E-PER", "O"], ["B-PER", "E-PER", "O"]),
    (["B-PER", "E-PER", "E-PER"], ["B-PER", "E-PER", "S-PER"]),
    (["O", "I-LOC", "E-LOC"], ["B-LOC", "I-LOC", "E-LOC"]),  # chunk without B: default keeps it, strict not
    (["B-LOC", "B-LOC", "E-LOC"], ["B-LOC", "I-LOC", "E-LOC"]),
]


@pytest.mark.parametrize("gold, pred", TRICKY)
def test_tricky_iob2_sequences_match_seqeval(gold, pred):
    assert_same_as_seqeval([gold], [pred])
    assert_same_as_seqeval([gold], [pred], "strict", "IOB2")


@pytest.mark.parametrize("gold, pred", TRICKY_IOBES)
def test_tricky_iobes_sequences_match_seqeval(gold, pred):
    assert_same_as_seqeval([gold], [pred])
    assert_same_as_seqeval([gold], [pred], "strict", "IOBES")


def test_all_tricky_cases_together_match_seqeval():
    gold, pred = [g for g, _ in TRICKY], [p for _, p in TRICKY]
    assert_same_as_seqeval(gold, pred)
    assert_same_as_seqeval(gold, pred, "strict", "IOB2")


def test_hand_computed_example():
    # seqeval's own docstring example: MISC predicted one word too early, PER right.
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    s = score_tags(gold, pred)
    # 1 correct of 2 predicted, of 2 gold: P = R = F1 = 0.5; MISC 0/1, PER 1/1
    assert (s.micro.precision, s.micro.recall, s.micro.f1) == (0.5, 0.5, 0.5)
    assert s.per_type["MISC"].f1 == 0.0 and s.per_type["PER"].f1 == 1.0
    assert (s.macro.f1, s.weighted.f1) == (0.5, 0.5)
    # three gold LOC, two predicted, one right: P 1/2, R 1/3, F1 = 2*(1/2)(1/3)/(5/6) = 0.4
    g = [["B-LOC", "O", "B-LOC", "O", "B-LOC"]]
    p = [["B-LOC", "O", "O", "B-LOC", "I-LOC"]]
    loc = score_tags(g, p).per_type["LOC"]
    assert (loc.precision, loc.recall, loc.correct, loc.predicted, loc.support) == (0.5, 1 / 3, 1, 2, 3)
    assert loc.f1 == pytest.approx(0.4, abs=1e-15)


def test_strict_mode_rejects_tags_outside_the_scheme():
    with pytest.raises(ConfigError, match="not part of the IOB2 scheme"):
        score_tags([["S-PER"]], [["O"]], "strict", "IOB2")
    with pytest.raises(ConfigError, match="2 gold tags but 1 predicted"):
        score_tags([["O", "O"]], [["O"]])


TAGS = {scheme: ["O", *[f"{p}-{t}" for p in prefixes for t in ("PER", "LOC", "creative-work")]]
        for scheme, prefixes in (("IOB2", "BI"), ("IOBES", "BIES"))}


@st.composite
def tag_sequences(draw):
    """A scheme and gold/predicted sentences of random (often invalid) tags of that scheme."""
    scheme = draw(st.sampled_from(["IOB2", "IOBES"]))
    lengths = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4))
    tag = st.sampled_from(TAGS[scheme])
    gold = [draw(st.lists(tag, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(tag, min_size=n, max_size=n)) for n in lengths]
    return scheme, gold, pred


@settings(max_examples=400, deadline=None)
@given(tag_sequences())
def test_random_sequences_match_seqeval_in_both_modes(case):
    scheme, gold, pred = case
    assert_same_as_seqeval(gold, pred)
    assert_same_as_seqeval(gold, pred, "strict", scheme)


def perturb(sentences, seed: int, rate: float = 0.15):
    """Predictions made from gold: drop, shift, retype or invent entities, and flip single tags
    (so invalid sequences such as O I-X appear too)."""
    rng = random.Random(seed)
    types = sorted({s.label for sent in sentences for s in sent.spans}) or ["X"]
    out = []
    for sent in sentences:
        n, spans = len(sent.tokens), []
        for s in sent.spans:
            r = rng.random()
            if r < rate:
                continue  # missed
            if r < 2 * rate:
                s = Span(s.start, min(n - 1, s.end + 1), s.label)  # one word too long
            elif r < 3 * rate:
                s = Span(s.start, s.end, rng.choice(types))  # wrong type
            spans.append(s)
        if rng.random() < rate and n > 2:
            start = rng.randrange(n - 1)
            spans.append(Span(start, start + rng.randrange(2), rng.choice(types)))  # invented
        kept, last = [], -1
        for s in sorted(spans):
            if s.start > last:
                kept.append(s)
                last = s.end
        tags = spans_to_tags(n, kept)
        for i in range(n):
            if rng.random() < rate / 5:
                tags[i] = rng.choice(["O", f"I-{rng.choice(types)}", f"B-{rng.choice(types)}"])
        out.append(tags)
    return out


def test_committed_wnut_sample_against_perturbed_predictions():
    sentences = read_conll(SAMPLE).sentences
    gold = [list(s.tags) for s in sentences]
    for seed in range(5):
        pred = perturb(sentences, seed)
        assert_same_as_seqeval(gold, pred)
        assert_same_as_seqeval(gold, pred, "strict", "IOB2")


def test_full_wnut_test_set_against_perturbed_predictions(shared_data):
    sentences = read_conll(shared_data / "wnut17" / "emerging.test.annotated").sentences
    gold = [list(s.tags) for s in sentences]
    for seed in range(3):
        pred = perturb(sentences, seed, rate=0.2)
        assert_same_as_seqeval(gold, pred)
        assert_same_as_seqeval(gold, pred, "strict", "IOB2")


# ----- spanbert score ner --------------------------------------------------------------------

def write(path, sentences):
    path.write_text("\n\n".join("\n".join("\t".join(row) for row in s) for s in sentences) + "\n")
    return path


def test_score_ner_command_prints_and_writes_seqeval_numbers(tmp_path, capsys):
    sentences = read_conll(SAMPLE).sentences
    pred = perturb(sentences, 7)
    pred_file = write(tmp_path / "pred.conll", [list(zip(s.tokens, s.tags, p)) for s, p in zip(sentences, pred)])
    assert main(["score", "ner", "--gold", str(SAMPLE), "--predictions", str(pred_file), "--output", str(tmp_path / "m.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "m.json").read_text())
    ref = reference([list(s.tags) for s in sentences], pred)
    assert printed["f1"] == ref["micro avg"]["f1-score"] and printed["mode"] == "default"
    assert {k: v["f1"] for k, v in printed["per_type"].items()} == {
        k: v["f1-score"] for k, v in ref.items() if not k.endswith(" avg")}
    assert main(["score", "ner", "--gold", str(SAMPLE), "--predictions", str(pred_file), "--mode", "strict"]) == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["f1"] == reference([list(s.tags) for s in sentences], pred, "strict")["micro avg"]["f1-score"]


@pytest.mark.parametrize("change, message", [
    (lambda s: s[:1] + [[("It", "O")] + s[1][1:]] + s[2:], "pred.conll:4: token 'It' does not match gold.conll:4 'b'"),
    (lambda s: [s[0][:1]] + s[1:], "pred.conll:1: sentence ends here, but gold.conll:2 continues it"),
    (lambda s: s[:2], "pred.conll: 2 sentences, but gold.conll has 3 (first missing at gold.conll:7)"),
    (lambda s: s + [[("z", "O")]], "pred.conll:9: extra sentence"),
])
def test_misaligned_files_name_file_and_line(tmp_path, capsys, change, message):
    gold = [[("a", "B-PER"), ("x", "O")], [("b", "O"), ("c", "B-LOC")], [("d", "O")]]  # lines 1-2, 4-5, 7
    write(tmp_path / "gold.conll", gold)
    write(tmp_path / "pred.conll", change([list(s) for s in gold]))
    rc = main(["score", "ner", "--gold", str(tmp_path / "gold.conll"), "--predictions", str(tmp_path / "pred.conll")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err.replace(str(tmp_path) + "/", "")


def test_score_ner_bad_tags_exit_2_with_file_and_line(tmp_path, capsys):
    write(tmp_path / "gold.conll", [[("a", "B-PER"), ("b", "E-PER")]])
    write(tmp_path / "pred.conll", [[("a", "B-PER"), ("b", "X-PER")]])
    rc = main(["score", "ner", "--gold", str(tmp_path / "gold.conll"), "--predictions", str(tmp_path / "pred.conll")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tmp_path / 'pred.conll'}:2: tag 'X-PER' has an unknown prefix" in err and err.count("\n") == 1
    write(tmp_path / "pred.conll", [[("a", "B-PER"), ("b", "I-PER")]])
    rc = main(["score", "ner", "--gold", str(tmp_path / "gold.conll"), "--predictions", str(tmp_path / "pred.conll"),
               "--mode", "strict", "--scheme", "IOB2"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tmp_path / 'gold.conll'}:2: tag 'E-PER': prefix E- is not part of the IOB2 scheme" in err
