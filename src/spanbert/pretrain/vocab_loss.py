"""Cross-entropy over the vocabulary for the MLM and SBO heads, fused with their output projection.

``vocab_cross_entropy(states, weight, biases, rows, targets)`` returns, for each group of rows
(the MLM rows, then the SBO rows), the sum of ``cross_entropy(states @ weight.T + bias, target)``,
exactly what ``F.linear`` + bias + ``F.cross_entropy(logits.float(), reduction="sum")`` give,
without their (K, V) intermediates: the logits GEMM runs once in the compute dtype (bf16/fp16
under autocast, else the states' dtype), then chunks of rows are turned, in fp32, into the
loss and the gradient of the logits (softmax - one-hot), which overwrites the logits in place;
on a CPU each chunk's softmax is one ``torch.compile``'d kernel (:mod:`spanbert.core.kernels`,
eager ops on cache-sized chunks where it cannot compile). Backward is then two GEMMs and a
rescale.

Why: on a CPU in bf16, the unfused path spent more time on the (K, V) tensors around the GEMM
(bias add with promotion to fp32, the fp32 copy, log-softmax and its backward, the split's
concatenating backward: ~8 passes over 75 MB) than on the GEMM itself (issue 18's profile).

Numerics: the loss is computed in fp32 from the same logits as before. The logits' gradient is
stored in the compute dtype *before* it is scaled by the incoming gradient (the unfused path
rounds after scaling); the scale is applied to the (K, H) operands of the backward GEMMs
instead, so the two differ by the compute dtype's rounding (none in fp32).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spanbert.core.kernels import cpu_kernel

# Rows of logits processed at once on a CPU: through the compiled kernel (spanbert.core.kernels),
# or else as eager ops on fp32 chunks of ~2 MB (16 x 30,522 x 4 bytes), one core's L2.
COMPILED_CHUNK_ROWS = 64
CPU_CHUNK_BYTES = 1 << 21
# On accelerators memory bandwidth is not the limit; fewer, larger kernels are better.
DEVICE_CHUNK_ROWS = 4096


def _compute_dtype(states: torch.Tensor) -> torch.dtype:
    device = states.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return states.dtype


@cpu_kernel
def _softmax_rows(logits: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(``logits`` + ``bias``) of each row (c, V) in fp32, rows whose target is -100 zeroed,
    and the rows' summed cross-entropy against ``targets`` (c,) (fp32 scalar)."""
    z = logits.float() + bias  # (c, V)
    keep = targets != -100  # (c,)
    safe = torch.where(keep, targets, 0)[:, None]  # (c, 1)
    peak = z.amax(1, keepdim=True)
    e = torch.exp(z - peak)
    norm = e.sum(1, keepdim=True)
    loss = torch.where(keep, (peak + torch.log(norm) - z.gather(1, safe)).squeeze(1), 0.0).sum()
    return e * (keep[:, None].float() / norm), loss


def _softmax_ce_chunks(grad: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor, start: int, stop: int,
                       chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``start:stop`` of ``grad`` (K, V), logits before ``bias`` (V,), with ``targets`` (K,)
    (-100: no loss): returns their summed cross-entropy (fp32 scalar) and the column sums (V,) of
    its gradient w.r.t. the logits, softmax - one-hot, which overwrites the logits in place (0 on
    rows without a target). Works ``chunk`` rows at a time so that the fp32 temporaries stay in
    cache."""
    total = torch.zeros((), dtype=torch.float32, device=grad.device)
    colsum = torch.zeros(grad.size(1), dtype=torch.float32, device=grad.device)
    for a in range(start, stop, chunk):
        b = min(a + chunk, stop)
        t = targets[a:b]
        probs, loss = _softmax_rows(grad[a:b], bias, t)  # (c, V) fp32
        rows = (t != -100).nonzero().squeeze(1)
        probs.index_put_((rows, t[rows]), torch.tensor(-1.0, device=grad.device), accumulate=True)  # - one-hot
        colsum += probs.sum(0)
        grad[a:b] = probs
        total += loss
    return total, colsum


def _chunk_rows(device: torch.device, vocab: int) -> int:
    # Measured on a 1-thread bf16 CPU, 640 x 30,522 logits: 64-row chunks through the compiled
    # kernel 28 ms; L2-sized chunks (~17 rows) of eager ops 42 ms; eager ops over all rows at once
    # ~170 ms; the whole loss as one compiled function ~48 ms per 320 rows.
    if device.type != "cpu":
        return DEVICE_CHUNK_ROWS
    if _softmax_rows.compiles(COMPILED_CHUNK_ROWS * vocab):
        return COMPILED_CHUNK_ROWS
    return max(1, CPU_CHUNK_BYTES // (4 * vocab))


class _VocabCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, states, weight, rows, targets, *biases):
        # states (K, H), weight (V, H), rows: K per group, targets (K,) with -100 = no loss, biases: (V,) per group
        dtype = _compute_dtype(states)
        with torch.autocast(states.device.type, enabled=False):
            w = weight.to(dtype)  # (V, H)
            h = states.to(dtype)  # (K, H)
            grad = h @ w.t()  # (K, V) logits, overwritten below by d loss / d logits
            chunk = _chunk_rows(states.device, grad.size(1))
            sums, bias_grads = [], []
            start = 0
            for bias, n in zip(biases, rows):
                total, colsum = _softmax_ce_chunks(grad, bias, targets, start, start + n, chunk)
                sums.append(total)
                bias_grads.append(colsum)
                start += n
        ctx.save_for_backward(grad, w, h, *bias_grads)
        ctx.rows = list(rows)
        ctx.dtypes = (states.dtype, weight.dtype)
        return tuple(sums)

    @staticmethod
    def backward(ctx, *grad_sums):
        grad, w, h, *bias_grads = ctx.saved_tensors
        # (K, 1) fp32: each row's incoming gradient, applied to the (K, H) side of the GEMMs
        scale = torch.cat([g.float().reshape(1).expand(n) for g, n in zip(grad_sums, ctx.rows)])[:, None]
        with torch.autocast(h.device.type, enabled=False):
            grad_states = (grad @ w).float() * scale if ctx.needs_input_grad[0] else None  # (K, H)
            grad_weight = grad.t() @ (h.float() * scale).to(h.dtype) if ctx.needs_input_grad[1] else None  # (V, H)
        grad_biases = [g * colsum for g, colsum in zip(grad_sums, bias_grads)]
        return (
            None if grad_states is None else grad_states.to(ctx.dtypes[0]),
            None if grad_weight is None else grad_weight.to(ctx.dtypes[1]),
            None,
            None,
            *grad_biases,
        )


def vocab_cross_entropy(
    states: torch.Tensor,
    weight: torch.Tensor,
    biases: Sequence[torch.Tensor],
    rows: Sequence[int],
    targets: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Summed cross-entropy of each row group's logits ``states @ weight.T + bias``.

    ``states`` (K, H); ``weight`` (V, H), the (tied) output embedding; ``biases`` one (V,) fp32
    bias per group; ``rows`` how many consecutive rows each group has (summing to K);
    ``targets`` (K,) target ids, -100 for rows that carry no loss (padding). Returns one fp32
    scalar per group: the sum over its rows of ``-log softmax(logits)[target]``. Gradients
    reach ``states``, ``weight`` and every bias (zeros for an empty group).
    """
    if sum(rows) != states.size(0) or targets.shape != (states.size(0),) or len(rows) != len(biases):
        raise ValueError(f"vocab_cross_entropy: rows {list(rows)} / targets {tuple(targets.shape)} / "
                         f"{len(biases)} biases do not match states {tuple(states.shape)}")
    return _VocabCrossEntropy.apply(states, weight, list(rows), targets, *biases)


__all__ = ["vocab_cross_entropy"]
