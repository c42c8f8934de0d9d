"""The fused vocabulary cross-entropy of the MLM/SBO heads against the unfused computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import spanbert.pretrain.vocab_loss as vocab_loss
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
from spanbert.pretrain.vocab_loss import vocab_cross_entropy


def _inputs(k1: int = 37, k2: int = 29, vocab: int = 211, hidden: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(k1 + k2, hidden, generator=g, requires_grad=True)
    weight = (0.3 * torch.randn(vocab, hidden, generator=g)).requires_grad_()
    b1 = (0.1 * torch.randn(vocab, generator=g)).requires_grad_()
    b2 = (0.1 * torch.randn(vocab, generator=g)).requires_grad_()
    targets = torch.randint(0, vocab, (k1 + k2,), generator=g)
    targets[k1 - 4 : k1] = -100  # padding rows at the end of each group, as the model pads
    targets[-3:] = -100
    return states, weight, b1, b2, targets, (k1, k2)


def _reference(states, weight, b1, b2, targets, rows):
    """What the model computed before: one GEMM, split, bias, fp32 cross-entropy sums."""
    k1, k2 = rows
    keep = targets != -100
    logits = F.linear(states, weight)
    l1, l2 = logits[:k1] + b1, logits[k1:] + b2
    s1 = F.cross_entropy(l1[keep[:k1]].float(), targets[:k1][keep[:k1]], reduction="sum")
    s2 = F.cross_entropy(l2[keep[k1:]].float(), targets[k1:][keep[k1:]], reduction="sum")
    return s1, s2


def _run(fn, tensors, targets, rows, autocast: bool):
    states, weight, b1, b2 = tensors
    for t in tensors:
        t.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        s1, s2 = fn(states, weight, b1, b2, targets, rows)
    (s1 / 33 + 0.7 * s2 / 26).backward()  # different weights per group, as mean MLM + w x mean SBO
    return [s1.detach(), s2.detach()] + [t.grad.clone() for t in tensors]


def _ours(states, weight, b1, b2, targets, rows):
    return vocab_cross_entropy(states, weight, (b1, b2), rows, targets)


@pytest.mark.parametrize("compiled", [True, False])  # the compiled kernel / its eager fallback
@pytest.mark.parametrize("rows", [64, 3])  # one chunk per group / 3-row chunks
def test_fp32_equals_the_unfused_loss_and_gradients(monkeypatch, compiled, rows):
    monkeypatch.setattr(vocab_loss._softmax_rows, "enabled", compiled)
    monkeypatch.setattr(vocab_loss._softmax_rows, "min_numel", 0)  # compile even these small chunks
    monkeypatch.setattr(vocab_loss, "COMPILED_CHUNK_ROWS", rows)
    monkeypatch.setattr(vocab_loss, "CPU_CHUNK_BYTES", rows * 4 * 211)
    states, weight, b1, b2, targets, groups = _inputs()
    ref = _run(_reference, (states, weight, b1, b2), targets, groups, autocast=False)
    ours = _run(_ours, (states, weight, b1, b2), targets, groups, autocast=False)
    for name, r, o in zip(["mlm sum", "sbo sum", "states", "weight", "mlm bias", "sbo bias"], ref, ours):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-6, msg=name)
    assert ours[2][37 - 4 : 37].abs().max() == 0  # padding rows get no gradient


def test_bf16_autocast_matches_within_bf16_rounding():
    states, weight, b1, b2, targets, rows = _inputs(vocab=3001, hidden=64)
    ref = _run(_reference, (states, weight, b1, b2), targets, rows, autocast=True)
    ours = _run(_ours, (states, weight, b1, b2), targets, rows, autocast=True)
    fp32 = _run(_reference, (states, weight, b1, b2), targets, rows, autocast=False)
    # the same bf16 logits: the sums agree to fp32 rounding
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-5, atol=1e-3)
    for i in range(2, 6):  # gradients: as close to the unfused bf16 ones as those are to fp32
        err_ours = (ours[i] - fp32[i]).abs().max()
        err_ref = (ref[i] - fp32[i]).abs().max()
        assert err_ours <= 2 * err_ref + 1e-7, (i, float(err_ours), float(err_ref))
        assert ours[i].dtype == torch.float32


def test_empty_group_still_reaches_its_bias():
    states, weight, b1, b2, targets, _ = _inputs(k1=12, k2=0)
    s1, s2 = vocab_cross_entropy(states, weight, (b1, b2), (12, 0), targets)
    assert float(s2) == 0.0
    (s1 + s2).backward()
    assert b2.grad is not None and b2.grad.abs().max() == 0 and b1.grad.abs().max() > 0


def test_mismatched_rows_are_refused():
    states, weight, b1, b2, targets, _ = _inputs()
    with pytest.raises(ValueError, match="rows"):
        vocab_cross_entropy(states, weight, (b1, b2), (10, 10), targets)


def test_model_loss_equals_its_unfused_path():
    """The training forward (fused) and the ``return_logits=True`` forward (logits kept) give
    the same losses and the same gradients on every parameter."""
    torch.manual_seed(0)
    config = SpanBertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=37, max_position_embeddings=64, sbo_position_size=8,
                            sbo_max_span_tokens=5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = SpanBertForPreTraining(config)
    ids = torch.randint(5, 99, (2, 16))
    labels = torch.full_like(ids, -100)
    labels[:, 3:6] = ids[:, 3:6]
    pairs = torch.tensor([[b, 2, 6, k] for b in range(2) for k in range(3)])
    sbo_labels = ids[:, 3:6].reshape(-1)
    grads = []
    for return_logits in (False, True):
        model.zero_grad()
        out = model(input_ids=ids, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels, return_logits=return_logits)
        out.loss.backward()
        grads.append((out.mlm_loss, out.sbo_loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (m1, s1, g1), (m2, s2, g2) = grads
    torch.testing.assert_close(m1, m2)
    torch.testing.assert_close(s1, s2)
    assert g1.keys() == g2.keys() and "sbo.bias" in g1 and "cls.predictions.bias" in g1
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-5, atol=1e-6, msg=name)  # fp32 rounding
