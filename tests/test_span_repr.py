"""Span extractors: exact values on small tensors, masks, unequal lengths, a gradient check; the
pooling extractors equal a loop over spans and their memory does not grow with spans x sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spanbert.core.errors import ConfigError
from spanbert.tasks.span_repr import (
    EndpointSpanExtractor,
    MaxPoolSpanExtractor,
    SelfAttentiveSpanExtractor,
    SpanTokenCrossAttention,
    enumerate_spans,
    sample_negative_spans,
    width_bucket,
)

# batch of 2: sequence 0 has 4 real tokens, sequence 1 has 2 (then padding)
HIDDEN = torch.tensor([
    [[1.0, 0.0], [2.0, 1.0], [3.0, -1.0], [4.0, 2.0]],
    [[5.0, 5.0], [-1.0, 6.0], [9.0, 9.0], [9.0, 9.0]],
])
TOKENS = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
SPANS = torch.tensor([[[0, 0], [1, 3]], [[0, 1], [0, 0]]])  # sequence 1's second span is padding
SPAN_MASK = torch.tensor([[1, 1], [1, 0]])


def test_endpoint_combinations_exact():
    ext = EndpointSpanExtractor(2, "x,y,x*y,y-x")
    out = ext(HIDDEN, SPANS, SPAN_MASK)
    assert ext.get_output_dim() == 8 and out.shape == (2, 2, 8)
    # span [1, 3] of sequence 0: x = (2, 1), y = (4, 2)
    assert out[0, 1].tolist() == [2, 1, 4, 2, 8, 2, 2, 1]
    # width-1 span [0, 0]: x = y = (1, 0)
    assert out[0, 0].tolist() == [1, 0, 1, 0, 1, 0, 0, 0]
    assert out[1, 0].tolist() == [5, 5, -1, 6, -5, 30, -6, 1]
    assert out[1, 1].abs().sum() == 0  # masked span


def test_width_embedding_and_buckets():
    assert width_bucket(torch.tensor([1, 2, 3, 4, 5, 8, 9, 16, 17, 1000]), 7).tolist() == [0, 1, 2, 3, 4, 4, 5, 5, 6, 6]
    ext = EndpointSpanExtractor(2, "x", width_embedding_dim=3, max_width=4)
    out = ext(HIDDEN, SPANS)
    assert ext.get_output_dim() == 5
    w = ext.width_embedding.weight
    assert torch.equal(out[0, 0, 2:], w[0]) and torch.equal(out[0, 1, 2:], w[2]) and torch.equal(out[1, 0, 2:], w[1])
    bucketed = EndpointSpanExtractor(2, "x", width_embedding_dim=3, max_width=30, bucket_widths=True)
    assert bucketed.width_embedding.num_embeddings == 7
    with pytest.raises(ConfigError, match="combination"):
        EndpointSpanExtractor(2, "x,z")


def test_self_attentive_pooling_exact():
    ext = SelfAttentiveSpanExtractor(2)
    with torch.no_grad():
        ext.scorer.weight.copy_(torch.tensor([[1.0, 0.0]]))
        ext.scorer.bias.zero_()
    out = ext(HIDDEN, SPANS, SPAN_MASK, TOKENS)
    # span [1, 3] of sequence 0: scores 2, 3, 4 -> softmax weights over rows (2,1), (3,-1), (4,2)
    w = torch.softmax(torch.tensor([2.0, 3.0, 4.0]), 0)
    expected = w @ HIDDEN[0, 1:4]
    assert torch.allclose(out[0, 1], expected)
    assert torch.equal(out[0, 0], HIDDEN[0, 0])  # width 1: the token itself
    w = torch.softmax(torch.tensor([5.0, -1.0]), 0)
    assert torch.allclose(out[1, 0], w @ HIDDEN[1, :2])
    assert out[1, 1].abs().sum() == 0


def test_max_pooling_ignores_padding_tokens():
    ext = MaxPoolSpanExtractor(2)
    spans = torch.tensor([[[1, 3]], [[0, 3]]])  # sequence 1's span runs into padding (9s)
    out = ext(HIDDEN, spans, token_mask=TOKENS)
    assert out[0, 0].tolist() == [4, 2]
    assert out[1, 0].tolist() == [5, 6]  # the padding 9s are not read


def _pooled_by_loop(kind, hidden, spans, span_mask, token_mask, scorer=None):
    """The plain definition, one span at a time: the span's real tokens, softmax-weighted
    (``sa``) or max-pooled (``mp``); zeros for a padding span or one with no real token."""
    batch, num_spans, _ = spans.shape
    out = torch.zeros(batch, num_spans, hidden.size(-1), dtype=hidden.dtype)
    for b in range(batch):
        for s in range(num_spans):
            start, end = spans[b, s].tolist()
            tokens = [t for t in range(max(start, 0), min(end, hidden.size(1) - 1) + 1)
                      if token_mask is None or token_mask[b, t]]
            if (span_mask is not None and not span_mask[b, s]) or not tokens:
                continue
            h = hidden[b, tokens]  # (n, hidden)
            if kind == "sa":
                out[b, s] = torch.softmax(scorer(h).squeeze(-1), 0) @ h
            else:
                out[b, s] = h.amax(0)
    return out


def _random_batch(seed, dtype, batch=3, seq=23, hidden=5, num_spans=12, max_width=7):
    """Random states, unequal lengths (token_mask), spans up to ``max_width`` (some running into
    padding tokens, one lying wholly on them) and padding spans ([0, 0], [-1, -1] and a
    whole-sequence one, all with span_mask 0)."""
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(batch, seq, hidden, generator=g, dtype=dtype)
    lengths = torch.tensor([seq, seq - 9, 6])
    token_mask = (torch.arange(seq) < lengths[:, None]).long()
    start = torch.randint(0, seq, (batch, num_spans), generator=g)
    end = (start + torch.randint(0, max_width, (batch, num_spans), generator=g)).clamp(max=seq - 1)
    spans = torch.stack([start, end], dim=-1)
    span_mask = torch.ones(batch, num_spans, dtype=torch.long)
    spans[2, 0] = torch.tensor([10, 12])  # real span on padding tokens only
    for b, pad in enumerate(([0, 0], [-1, -1], [0, seq - 1])):
        spans[b, -1], span_mask[b, -1] = torch.tensor(pad), 0
    return states, spans, span_mask, token_mask


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("kind", ["sa", "mp"])
def test_pooling_extractors_equal_a_loop_over_spans(kind, dtype, atol):
    for seed in range(4):
        hidden, spans, span_mask, token_mask = _random_batch(seed, dtype)
        torch.manual_seed(seed)
        ext = (SelfAttentiveSpanExtractor(5) if kind == "sa" else MaxPoolSpanExtractor(5)).to(dtype)
        scorer = getattr(ext, "scorer", None)
        for tm in (None, token_mask):
            for sm in (None, span_mask):
                with torch.no_grad():
                    out = ext(hidden, spans, sm, tm)
                    expected = _pooled_by_loop(kind, hidden, spans, sm, tm, scorer)
                assert out.shape == expected.shape and out.dtype == dtype  # without span_mask, padding spans are read as spans
                assert torch.allclose(out, expected, atol=atol, rtol=0), (seed, tm is None, sm is None)
        assert out.abs().sum() > 0


@pytest.mark.parametrize("kind", ["sa", "mp"])
def test_pooling_extractors_gradients(kind):
    hidden, spans, span_mask, token_mask = _random_batch(0, torch.float64, seq=9, num_spans=5, max_width=4)
    torch.manual_seed(0)
    ext = (SelfAttentiveSpanExtractor(5) if kind == "sa" else MaxPoolSpanExtractor(5)).double()
    hidden.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda h: ext(h, spans, span_mask, token_mask), (hidden,))


class _LargestTensor(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the largest storage (in elements) that any op returns: views count as the
    storage they read, so an ``expand`` costs nothing and a real (spans, seq) mask would show."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.untyped_storage().nbytes() // t.element_size())
        return out


@pytest.mark.parametrize("kind", ["sa", "mp"])
def test_pooling_memory_does_not_grow_with_spans_times_sequence(kind):
    """10,000 tokens, 2,000 spans of <= 10 tokens: the largest tensor of the forward and the
    backward pass is (spans, 10, hidden) = 160,000 elements, not spans x seq = 20,000,000
    (what the (spans, seq) mask the extractors used to build cost, times hidden for max-pool)."""
    seq, num_spans, width, dim = 10_000, 2_000, 10, 8
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(1, seq, dim, generator=g, requires_grad=True)
    start = torch.randint(0, seq - width, (1, num_spans), generator=g)
    spans = torch.stack([start, start + torch.randint(0, width, (1, num_spans), generator=g)], dim=-1)
    spans[0, 0, 1] = spans[0, 0, 0] + width - 1  # the widest span: W = 10
    token_mask = torch.ones(1, seq, dtype=torch.long)
    ext = SelfAttentiveSpanExtractor(dim) if kind == "sa" else MaxPoolSpanExtractor(dim)
    with _LargestTensor() as largest:
        ext(hidden, spans, torch.ones(1, num_spans), token_mask).sum().backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    print(f"{kind}: largest tensor {largest.numel:,} elements")
    assert largest.numel <= num_spans * width * dim  # 160,000
    assert largest.numel * 100 < num_spans * seq


def test_cross_attention_reads_outside_the_span_and_respects_padding():
    torch.manual_seed(0)
    layer = SpanTokenCrossAttention(4, 2, num_heads=2, dropout=0.0).double()
    spans = EndpointSpanExtractor(2, "x,y")(HIDDEN.double(), SPANS)
    out = layer(spans, HIDDEN.double(), TOKENS)
    assert out.shape == (2, 2, 4) and layer.get_output_dim() == 4
    # changing a padding token of sequence 1 changes nothing; changing a real token outside
    # sequence 0's span [0, 0] changes that span's vector
    h2 = HIDDEN.double().clone()
    h2[1, 3] = 100.0
    assert torch.allclose(layer(spans, h2, TOKENS)[1], out[1])
    h3 = HIDDEN.double().clone()
    h3[0, 3] = 100.0
    assert not torch.allclose(layer(spans, h3, TOKENS)[0, 0], out[0, 0])


def test_cross_attention_gradients():
    torch.manual_seed(0)
    layer = SpanTokenCrossAttention(4, 2, num_heads=2, dropout=0.0).double()
    spans = torch.randn(2, 3, 4, dtype=torch.double, requires_grad=True)
    hidden = torch.randn(2, 4, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, h: layer(s, h, TOKENS), (spans, hidden))


def test_enumerate_spans():
    assert enumerate_spans(3, 2).tolist() == [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2]]
    assert enumerate_spans(3, 5, offset=1).tolist() == [[1, 1], [1, 2], [1, 3], [2, 2], [2, 3], [3, 3]]
    # word starts at tokens 0, 2, 3 of 5 tokens: words [0,1], [2], [3,4]
    assert enumerate_spans(5, 2, starts=[0, 2, 3]).tolist() == [[0, 1], [0, 2], [2, 2], [2, 4], [3, 4]]
    n, w = 50, 8
    assert len(enumerate_spans(n, w)) == sum(min(w, n - s) for s in range(n))


def test_negative_sampling():
    cands = enumerate_spans(6, 3)
    gold = np.array([[0, 1], [3, 3]])
    rng = np.random.default_rng(0)
    neg = sample_negative_spans(cands, gold, rng, ratio=2.0)
    assert len(neg) == 4 and not {tuple(x) for x in neg} & {(0, 1), (3, 3)}
    assert len({tuple(x) for x in neg}) == 4
    assert len(sample_negative_spans(cands, gold, rng, count=100)) == len(cands) - 2
    again = sample_negative_spans(cands, gold, np.random.default_rng(0), ratio=2.0)
    assert np.array_equal(neg, again)
    with pytest.raises(ConfigError):
        sample_negative_spans(cands, gold, rng)


def test_width_bucket_of_matches_the_tensor_version_and_builds_on_meta():
    from spanbert.tasks.span_repr import width_bucket_of

    widths = torch.arange(1, 300)
    assert [width_bucket_of(w) for w in widths.tolist()] == width_bucket(widths, 1000).tolist()
    with torch.device("meta"):  # how from_pretrained builds models: no .item() allowed
        ext = EndpointSpanExtractor(8, width_embedding_dim=4, max_width=30, bucket_widths=True)
    assert ext.num_widths == width_bucket_of(30) + 1 == 7
