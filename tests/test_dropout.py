"""Hashed dropout: right keep rate, independent masks, exact equivalence where no dropout applies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import transformers

from spanbert.core.dropout import (
    ATTENTION_NAME,
    HashedDropout,
    hashed_dropout,
    hashed_dropout_attention,
    hashed_keep_mask,
    use_hashed_dropout,
)
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining

transformers.logging.set_verbosity_error()


def test_keep_rate_and_independence():
    n = 1 << 20
    a = hashed_keep_mask((n,), 0.1, seed=1).float()
    b = hashed_keep_mask((n,), 0.1, seed=2).float()
    # binomial standard error at n = 2^20 is 3e-4: 5 sigma
    assert abs(a.mean().item() - 0.9) < 1.5e-3 and abs(b.mean().item() - 0.9) < 1.5e-3
    assert abs(hashed_keep_mask((n,), 0.5, seed=3).float().mean().item() - 0.5) < 2.5e-3
    corr = lambda x, y: (((x - x.mean()) * (y - y.mean())).mean() / (x.std() * y.std())).item()
    assert abs(corr(a, b)) < 5e-3  # different seeds: unrelated masks
    assert abs(corr(a[1:], a[:-1])) < 5e-3  # neighbours unrelated
    assert abs(corr(a[:-32], a[32:])) < 5e-3  # nor 32 apart (a row of attention probabilities)
    assert torch.equal(hashed_keep_mask((4, 8), 0.1, seed=7), hashed_keep_mask((4, 8), 0.1, seed=7))  # pure


def test_dropout_scales_kept_values_and_is_reproducible():
    x = torch.randn(64, 128, requires_grad=True)
    torch.manual_seed(0)
    y = hashed_dropout(x, 0.2)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.8)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.8)
    torch.manual_seed(0)
    assert torch.equal(hashed_dropout(x, 0.2), y)  # the seed comes from the global torch RNG
    assert torch.equal(hashed_dropout(x, 0.2, training=False), x)


def test_attention_matches_a_direct_computation():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8) for _ in range(3))
    mask = torch.ones(2, 1, 10, 10, dtype=torch.bool)
    mask[1, ..., 7:] = False  # padding keys
    out0, _ = hashed_dropout_attention(None, q, k, v, mask, dropout=0.0)
    ref0 = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
    torch.testing.assert_close(out0, ref0)
    torch.manual_seed(3)
    out, _ = hashed_dropout_attention(None, q, k, v, mask, dropout=0.1)
    torch.manual_seed(3)
    keep = hashed_keep_mask((2, 3, 10, 10), 0.1, int(torch.randint(0, 1 << 31, (1,))))
    probs = (q @ k.transpose(-1, -2) / 8**0.5).masked_fill(~mask, float("-inf")).softmax(-1)
    torch.testing.assert_close(out, (probs * keep / 0.9 @ v).transpose(1, 2))


def test_model_with_hashed_dropout_is_unchanged_in_eval():
    torch.manual_seed(0)
    config = SpanBertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    model = SpanBertForPreTraining(config).eval()
    ids = torch.randint(5, 99, (3, 12))
    attention = torch.ones_like(ids)
    attention[2, 8:] = 0
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=attention).last_hidden_state
        use_hashed_dropout(model)
        after = model(input_ids=ids, attention_mask=attention).last_hidden_state
    assert model.config._attn_implementation == ATTENTION_NAME
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    # embeddings + 3 per layer (attention probabilities, attention output, feed-forward output)
    assert sum(isinstance(m, HashedDropout) for m in model.modules()) == 1 + 3 * 2
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    model.train()
    a = model(input_ids=ids, attention_mask=attention).last_hidden_state
    b = model(input_ids=ids, attention_mask=attention).last_hidden_state
    assert not torch.equal(a, b)  # dropout is active in training


@pytest.mark.slow
def test_hashed_dropout_under_torch_compile_drops_what_eager_drops():
    # Under bf16 autocast torch 2.13's Inductor generated C++ that does not compile for the hash's
    # int32 shifts, so `spanbert pretrain --compile` failed on a bf16 CPU (fp32 compiled); the mask now
    # runs eagerly inside compiled code,
    # with the seed drawn from the same global generator, so compiled == eager, element for element.
    def f(x):
        return hashed_dropout(torch.softmax(x, dim=-1), 0.1, True)

    for dtype in (torch.float32, torch.bfloat16):
        torch._dynamo.reset()
        x = torch.randn(2, 3, 16, 16, dtype=dtype)
        torch.manual_seed(0)
        compiled = torch.compile(f)(x)
        torch.manual_seed(0)
        eager = f(x)
        assert torch.equal(compiled == 0, eager == 0)
        assert 0.05 < (eager == 0).float().mean() < 0.15
        torch.testing.assert_close(compiled, eager, atol=1e-2, rtol=1e-2)


def test_compiled_dropout_drops_what_the_eager_hash_drops_bit_for_bit():
    """On a CPU, dropout runs as one torch.compile'd loop; forward and backward must drop exactly
    the elements `hashed_keep_mask` (eager tensor ops) drops for the drawn seed, and scale the
    rest by 1 / (1 - p), so runs and resumes do not depend on whether the compiler was there."""
    from spanbert.core import dropout

    for shape, p in [((16, 12, 33, 33), 0.1), ((7, 129), 0.3), ((5,), 0.5)]:
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(shape).to(dtype).requires_grad_()
            torch.manual_seed(11)
            y = hashed_dropout(x, p)
            torch.manual_seed(11)
            keep = hashed_keep_mask(shape, p, dropout._next_seed())
            expected = torch.where(keep, x.detach().float() * (1.0 / (1.0 - p)), 0.0).to(dtype)
            assert y.dtype == dtype and torch.equal(y, expected), (shape, dtype)
            g = torch.randn(shape).to(dtype)
            y.backward(g)
            assert torch.equal(x.grad, torch.where(keep, g.float() * (1.0 / (1.0 - p)), 0.0).to(dtype))
    # a non-contiguous input is indexed by its logical (row-major) positions, as the mask is
    x = torch.randn(33, 12, 16, 33).transpose(0, 2)  # (16, 12, 33, 33), strided
    torch.manual_seed(3)
    y = hashed_dropout(x, 0.1)
    torch.manual_seed(3)
    keep = hashed_keep_mask(x.shape, 0.1, dropout._next_seed())
    assert torch.equal(y, torch.where(keep, x * (1.0 / 0.9), 0.0))
    for shape in [(5, 0), (0, 7), ()]:  # empty tensors and a scalar keep their shape
        x = torch.randn(shape)
        assert hashed_dropout(x, 0.5).shape == x.shape
    # the large shape ran the compiled loop, the small ones the eager ops (below min_numel)
    assert dropout._drop_rows.enabled and dropout._drop_rows.compiled is not None
    assert dropout._drop_rows.will_compile(torch.empty(16 * 12 * 33, 33)) and not dropout._drop_rows.will_compile(torch.empty(7, 129))


def test_a_failing_compiler_falls_back_to_the_same_masks(monkeypatch, caplog):
    from spanbert.core import dropout
    from spanbert.core.kernels import CpuKernel

    x = torch.randn(256, 256)
    torch.manual_seed(5)
    compiled = hashed_dropout(x, 0.1)
    kernel = CpuKernel(dropout._drop_rows.fn, min_numel=0)

    def broken(*args):
        raise RuntimeError("InductorError: no C++ compiler\nmore lines")

    kernel.compiled = broken
    monkeypatch.setattr(dropout, "_drop_rows", kernel)
    with caplog.at_level("WARNING"):
        torch.manual_seed(5)
        a = hashed_dropout(x, 0.1)
        b = hashed_dropout(x, 0.1)
    assert not kernel.enabled
    assert sum("no C++ compiler" in r.getMessage() for r in caplog.records) == 1  # warned once, first line only
    assert torch.equal(a, compiled) and not torch.equal(a, b)  # the fallback drops what the compiled loop drops
