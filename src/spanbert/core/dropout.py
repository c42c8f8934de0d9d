"""Cheaper dropout for CPU training, plugged into the stock ``BertModel`` without changing it.

On a CPU, PyTorch draws dropout masks from one sequential Mersenne-Twister stream at ~5 ns an
element; for BERT's attention probabilities (batch x heads x T x T) that costs more than the
attention itself, and ``scaled_dot_product_attention`` with dropout falls back to its slow
math path. Here a mask is a pure function of a 31-bit seed and the element index (a
multiply-xorshift integer hash: ~3x faster as vectorised tensor ops, far faster as the one
``torch.compile``'d loop that dropout runs on a CPU, :mod:`spanbert.core.kernels`), and the
seed is drawn from the global torch RNG at each call, so runs stay reproducible and
``--resume`` stays exact.

``use_hashed_dropout(model)`` swaps every ``nn.Dropout`` of a model for :class:`HashedDropout`
and registers attention ("spanbert_sdpa") that applies the same hashed dropout to attention
probabilities. Weights, checkpoints and evaluation (no dropout) are unchanged: it only changes
which random numbers drop which activations during training. GPUs draw masks cheaply
(Philox), so the trainer uses this on CPU only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from spanbert.core.kernels import cpu_kernel

ATTENTION_NAME = "spanbert_sdpa"
_INDEX_CACHE: dict[torch.device, torch.Tensor] = {}
_M1, _M2, _M3 = -1640531535, 0x2C1B3C6D, 0x297A2D39  # odd 32-bit multipliers (0x9E3779B1 as int32)


def _indices(n: int, device: torch.device) -> torch.Tensor:
    cached = _INDEX_CACHE.get(device)
    if cached is None or cached.numel() < n:
        cached = torch.arange(max(n, 1 << 20), dtype=torch.int32, device=device)
        _INDEX_CACHE[device] = cached
    return cached[:n]


def _hash(index: torch.Tensor, seed: torch.Tensor | int) -> torch.Tensor:
    """The 32-bit hash of (``index``, ``seed``), int32 arithmetic wrapping around (pure tensor ops)."""
    h = index * _M1 + seed
    h = (h ^ (h >> 15)) * _M2
    h = (h ^ (h >> 12)) * _M3
    return h ^ (h >> 15)


@torch.compiler.disable
def hashed_keep_mask(shape: torch.Size | tuple[int, ...], p: float, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool mask of ``shape``: True (keep) with probability 1 - ``p``, a pure function of ``seed``.

    Each element's 32-bit hash of (index, seed) is mixed by three multiply/xorshift rounds; its
    low 24 bits are compared with ``p`` x 2^24, so ``p`` is honoured to 6e-8. Always run eagerly,
    also inside a ``torch.compile``'d model: under bf16 autocast, torch 2.13's Inductor turned these
    int32 shifts into C++ that does not compile (a shift of float vectors), which made ``spanbert
    pretrain --compile`` fail on a bf16 CPU (training compiles them on their own, outside
    autocast: see ``_drop``).
    """
    n = 1
    for s in shape:
        n *= s
    h = _hash(_indices(n, torch.device(device)), int(seed) & 0x7FFFFFFF)
    return (h.bitwise_and_(0xFFFFFF) >= int(round(p * (1 << 24)))).view(shape)


@torch.compiler.disable
def _next_seed() -> int:
    # from the global generator: seeded runs repeat, and checkpoints capture it (eager under
    # torch.compile too, so a compiled model draws the same seeds as the eager one)
    return int(torch.randint(0, 1 << 31, (1,)).item())


@cpu_kernel
def _drop_rows(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, seed: torch.Tensor, threshold: int,
               scale: float) -> torch.Tensor:
    """``x`` (R, C) times the dropout multiplier of each element's row-major index ``rows * C +
    cols`` (``rows`` (R, 1) and ``cols`` (C,) int32 aranges): ``x * scale`` where the hash's low 24
    bits reach ``threshold``, else 0. Compiled, one pass that reads ``x`` and writes the result (no
    mask in memory). The index comes in as two small aranges because Inductor builds an in-kernel
    ``arange`` one lane at a time, which made the loop 2.3x slower than this (2.5 vs 1.1 ms for
    3.1M fp32 elements on one core)."""
    keep = (_hash(rows * x.size(1) + cols, seed) & 0xFFFFFF) >= threshold
    return torch.where(keep, x * scale, 0.0).to(x.dtype)


def _drop(x: torch.Tensor, seed: torch.Tensor, threshold: int, scale: float) -> torch.Tensor:
    """``x`` times the dropout multiplier of each element's (row-major) index, as ``_drop_rows``
    computes it over ``x`` viewed as rows of its last dimension."""
    width = x.size(-1) if x.dim() else 1
    flat = x.reshape(x.numel() // width if width else 0, width)  # (R, C); also for empty tensors
    rows, cols = _indices(flat.size(0), x.device)[:, None], _indices(width, x.device)
    return _drop_rows(flat, rows, cols, seed, threshold, scale).view(x.shape)


class _HashedDropoutFunction(torch.autograd.Function):
    # y = x * m and dy/dx = m for the hashed multiplier m: backward recomputes m from the seed
    # instead of keeping it (no mask saved; one pass each way).

    @staticmethod
    def forward(ctx, x: torch.Tensor, seed: torch.Tensor, threshold: int, scale: float) -> torch.Tensor:
        ctx.save_for_backward(seed)
        ctx.mask_args = (threshold, scale)
        return _drop(x, seed, threshold, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (seed,) = ctx.saved_tensors
        return _drop(grad, seed, *ctx.mask_args), None, None, None


@torch.compiler.disable
def _hashed_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    # eager also inside a torch.compile'd model (see hashed_keep_mask)
    seed = torch.tensor(_next_seed() & 0x7FFFFFFF, dtype=torch.int32, device=x.device)
    return _HashedDropoutFunction.apply(x, seed, int(round(p * (1 << 24))), 1.0 / (1.0 - p))


def hashed_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout`` with a hashed mask: zero each element with probability ``p``, scale the rest by
    1/(1-p); the elements dropped are those :func:`hashed_keep_mask` drops for a seed drawn from
    the global torch generator."""
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    return _hashed_dropout(x, p)


class HashedDropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` drawing its mask with :func:`hashed_keep_mask`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hashed_dropout(x, self.p, self.training)


def hashed_dropout_attention(
    module: nn.Module,
    query: torch.Tensor,  # (B, heads, T, d)
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,  # bool (B, 1, T, T) / additive float, or None
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention with hashed dropout on the probabilities; plain SDPA when no dropout applies."""
    if dropout == 0.0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=scaling, **kwargs)
    scale = scaling if scaling is not None else query.size(-1) ** -0.5
    scores = torch.matmul(query * scale, key.transpose(-1, -2))  # (B, heads, T, T); scaling q is d/T times cheaper
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = hashed_dropout(F.softmax(scores, dim=-1), dropout, True)
    out = torch.matmul(probs, value)  # (B, heads, T, d)
    return out.transpose(1, 2).contiguous(), None  # (B, T, heads, d), as transformers expects


AttentionInterface.register(ATTENTION_NAME, hashed_dropout_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


def use_hashed_dropout(model: nn.Module) -> nn.Module:
    """Swap ``model``'s dropout layers and attention for the hashed versions, in place."""
    for name, child in list(model.named_modules()):
        for attr, sub in list(child.named_children()):
            if type(sub) is nn.Dropout:
                replacement = HashedDropout(sub.p)
                replacement.train(sub.training)
                setattr(child, attr, replacement)
    model.set_attn_implementation(ATTENTION_NAME)
    return model
