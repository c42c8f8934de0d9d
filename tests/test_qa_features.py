"""Windows, offsets, max-context and training labels on real tokenizers and real SQuAD text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.core.errors import ConfigError
from spanbert.tasks.qa.data import QAExample, read_qa
from spanbert.tasks.qa.features import (
    NOT_CONTEXT,
    PairTemplate,
    answer_token_span,
    build_features,
    max_context_windows,
    window_starts,
)
from spanbert.tasks.qa.settings import WindowConfig

from .conftest import DATA

SAMPLE = DATA / "squad" / "xquad_en_sample.json"


@pytest.fixture(scope="module")
def tok(minilm_dir):
    from spanbert.core.checkpoints import load_tokenizer

    return load_tokenizer(str(minilm_dir))


def test_window_starts_cover_every_token_with_the_named_overlap():
    # 10 tokens, 4 per window, step 2 (overlap 2): [0..3] [2..5] [4..7] [6..9]
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert window_starts(4, 4, 2) == [0]
    assert window_starts(0, 4, 2) == [0]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500), st.integers(2, 60), st.data())
def test_windows_cover_and_overlap(n, per_window, data):
    step = data.draw(st.integers(1, per_window))
    starts = window_starts(n, per_window, step)
    covered = np.zeros(n, dtype=bool)
    for s in starts:
        covered[s : s + per_window] = True
    assert covered.all()
    assert all(b - a == step for a, b in zip(starts, starts[1:]))
    assert starts[-1] < max(n, 1)  # no window is empty of new tokens
    if len(starts) > 1:
        assert starts[-2] + per_window < n  # the last window is needed


def test_max_context_rule_by_hand():
    # windows [0..3], [2..5], [4..7], [6..9] of 10 tokens; score = min(left, right) + 0.04
    # token 2: w0 min(2,1)=1, w1 min(0,3)=0 -> w0; token 3: w0 0, w1 min(1,2)=1 -> w1
    # token 4: w1 min(2,1)=1, w2 0 -> w1; token 5: w1 0, w2 1 -> w2; token 6: w2 1 > w3 0 -> w2
    # token 7: w2 0, w3 1 -> w3; last window is full too. Ties go to the earlier window.
    owner = max_context_windows(10, [0, 2, 4, 6], 4)
    assert owner.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    # a shorter last window: its 0.01 * length bonus is smaller, so a tie breaks against it
    owner = max_context_windows(6, [0, 3], 4)  # w0 = [0..3], w1 = [3..5] (3 tokens)
    # token 3: w0 min(3,0)=0+0.04, w1 min(0,2)=0+0.03 -> w0
    assert owner.tolist() == [0, 0, 0, 0, 1, 1]


def test_config_names_an_overlap_and_rejects_no_step():
    cfg = WindowConfig(max_seq_length=384, max_question_tokens=64, window_overlap=128)
    assert cfg.context_tokens(10) == 384 - 10 - 3
    assert cfg.window_step(10) == 384 - 10 - 3 - 128
    with pytest.raises(ConfigError, match="window_overlap"):
        WindowConfig(max_seq_length=128, max_question_tokens=64, window_overlap=100)


def test_answer_token_span():
    offsets = np.array([[0, 3], [4, 9], [9, 10], [11, 15]])  # "The house, done"
    assert answer_token_span(offsets, 4, 9) == (1, 1)
    assert answer_token_span(offsets, 4, 10) == (1, 2)
    assert answer_token_span(offsets, 5, 7) == (1, 1)  # inside one token: that token
    assert answer_token_span(offsets, 16, 18) is None


def test_template_of_a_bert_tokenizer(tok):
    t = PairTemplate.from_tokenizer(tok)
    assert t.prefix == (tok.cls_token_id,) and t.middle == (tok.sep_token_id,) and t.suffix == (tok.sep_token_id,)
    assert (t.question_type, t.context_type, t.null_index) == (0, 1, 0)


def test_windows_equal_transformers_overflowing_windows(tok):
    """Our windows are exactly the fast tokenizer's overflow windows when its stride = our overlap."""
    examples, _ = read_qa(SAMPLE)
    long_context = " ".join(ex.context for ex in examples[::5])  # several paragraphs: many windows
    cfg = WindowConfig(max_seq_length=128, max_question_tokens=32, window_overlap=40)
    exs = [QAExample(f"q{i}", ex.question, long_context) for i, ex in enumerate(examples[:6])]
    feats = build_features(exs, tok, cfg)
    for i, ex in enumerate(exs):
        ref = tok(ex.question, ex.context, truncation="only_second", max_length=128, stride=40,
                  return_overflowing_tokens=True, return_offsets_mapping=True)
        ours = [w for w, e in enumerate(feats.example_index) if e == i]
        assert len(ours) == len(ref["input_ids"]) > 2
        for w, ref_ids, ref_types, ref_off, k in zip(ours, ref["input_ids"], ref["token_type_ids"], ref["offset_mapping"], range(len(ours))):
            assert feats.input_ids[w].tolist() == ref_ids
            assert feats.token_type_ids[w].tolist() == ref_types
            seq = ref.sequence_ids(k)
            ctx = [tuple(o) for o, s in zip(ref_off, seq) if s == 1]
            assert [tuple(o) for o in feats.offsets[w] if o[0] != NOT_CONTEXT] == ctx


def _check_every_answer(examples, feats, tok):
    """Every gold answer, in every window holding it, maps to tokens whose text is the answer."""
    checked = exact = 0
    windows_of: dict[int, list[int]] = {}
    for w, e in enumerate(feats.example_index):
        windows_of.setdefault(e, []).append(w)
    for e, ex in enumerate(examples):
        for ans in ex.answers:
            for w in windows_of[e]:
                off = feats.offsets[w]
                ctx = np.flatnonzero(off[:, 0] != NOT_CONTEXT)
                span = answer_token_span(off[ctx], ans.start, ans.end)
                if span is None or off[ctx[span[0]], 0] > ans.start or off[ctx[span[1]], 1] < ans.end:
                    continue  # this window does not hold the whole answer
                a, b = off[ctx[span[0]], 0], off[ctx[span[1]], 1]
                covered = ex.context[a:b]
                checked += 1
                # the tokens cover the answer and nothing more than the words it touches
                assert covered.find(ans.text) >= 0, (ex.id, covered, ans.text)
                if covered == ans.text:
                    exact += 1
                else:  # the answer starts or ends inside a word piece ("gold" of "golden")
                    assert not ex.context[a:ans.start].isspace() or not ex.context[ans.end:b].isspace()
                    assert tok.decode(tok(covered, add_special_tokens=False)["input_ids"]) == tok.decode(
                        feats.input_ids[w][ctx[span[0]] : ctx[span[1]] + 1])
    return checked, exact


def test_every_gold_answer_of_the_sample_maps_to_its_tokens(tok):
    examples, _ = read_qa(SAMPLE)
    feats = build_features(examples, tok, WindowConfig(max_seq_length=96, max_question_tokens=24, window_overlap=32))
    checked, exact = _check_every_answer(examples, feats, tok)
    assert checked >= sum(len(ex.answers) for ex in examples)  # overlapping windows count twice
    assert exact / checked > 0.97


def test_every_gold_answer_of_squad_dev_maps_to_its_tokens(tok, shared_data):
    examples, report = read_qa(shared_data / "squad_v1.1" / "dev-v1.1.json.gz")
    assert report.bad_offsets == 0 and len(examples) == 10570
    examples = examples[::4]  # every paragraph, a quarter of the questions: seconds, not a minute
    feats = build_features(examples, tok, WindowConfig(max_seq_length=128, max_question_tokens=32, window_overlap=48))
    checked, exact = _check_every_answer(examples, feats, tok)
    assert checked > sum(len(ex.answers) for ex in examples)
    assert exact / checked > 0.98


def test_training_labels_point_at_the_answer_or_at_cls(tok):
    examples, _ = read_qa(SAMPLE)
    cfg = WindowConfig(max_seq_length=80, max_question_tokens=24, window_overlap=24)
    feats = build_features(examples, tok, cfg, training=True)
    inside = outside = 0
    for w in range(len(feats)):
        ex = examples[feats.example_index[w]]
        s, e = feats.start_positions[w], feats.end_positions[w]
        if s == 0:
            assert e == 0
            outside += 1
            continue
        inside += 1
        a, b = feats.offsets[w][s, 0], feats.offsets[w][e, 1]
        assert a <= ex.answers[0].start and ex.answers[0].end <= b
        assert ex.context[a:b].strip().lower().find(ex.answers[0].text.strip().lower()) >= 0
    assert inside >= len({feats.example_index[w] for w in range(len(feats))}) and outside > 0


def test_unanswerable_questions_train_on_cls_and_unusable_ones_are_left_out(tok):
    ctx = "The river flows north into the sea."
    exs = [
        QAExample("no", "Where does the lake go?", ctx, (), is_impossible=True),
        QAExample("lost", "Where?", ctx, (), is_impossible=False),  # every answer had a bad offset
    ]
    feats = build_features(exs, tok, training=True)
    assert feats.example_index == [0]
    assert feats.start_positions == [0] and feats.end_positions == [0]


def test_questions_are_truncated(tok):
    q = "why " * 200
    feats = build_features([QAExample("q", q, "Because it rained all day.")], tok, WindowConfig(max_question_tokens=16))
    ids = feats.input_ids[0]
    assert ids.tolist().index(tok.sep_token_id) == 1 + 16


def test_span_loss_ignores_padding_so_batch_slices_average_to_the_batch(minilm_dir):
    """A window's loss does not depend on the other windows' lengths (padding is masked), so
    the mean of two half-batch losses is the whole batch's loss; without padding it equals
    transformers' own QA loss."""
    from spanbert.tasks.qa.data import read_qa
    from spanbert.tasks.qa.features import build_features, collate_windows, span_loss
    from spanbert.tasks.qa.inference import load_qa_model
    from spanbert.core.checkpoints import set_dropout

    examples, _ = read_qa(DATA / "squad" / "xquad_en_sample.json", split="train")
    torch.manual_seed(0)
    model, tok = load_qa_model(minilm_dir)
    set_dropout(model, 0.0)
    model.eval()
    feats = build_features(examples[:12], tok, WindowConfig(128, 32, 32), training=True)
    order = np.argsort(feats.lengths())
    idx = [int(order[0]), int(order[1]), int(order[-2]), int(order[-1])]  # two short, two long windows
    assert feats.lengths()[idx[0]] < feats.lengths()[idx[3]]
    with torch.no_grad():
        whole = span_loss(model, collate_windows(feats, idx, 0, labels=True))
        halves = [span_loss(model, collate_windows(feats, idx[i:i + 2], 0, labels=True)) for i in (0, 2)]
        assert float(whole) == pytest.approx(float(sum(halves) / 2), rel=1e-5)
        one = collate_windows(feats, idx[3:], 0, labels=True, pad_to_multiple_of=1)  # no padding at all
        assert float(span_loss(model, one)) == pytest.approx(float(model(**one).loss), rel=1e-6)
