"""Floating-point operation counts of pre-training, for throughput and utilisation (MFU).

Counted as 2 FLOPs per multiply-add of the matrix products only (elementwise work, softmax
and LayerNorm are left out, as is usual for MFU); backward = 2 x forward.
"""

from __future__ import annotations

from transformers import BertConfig


def encoder_forward_flops(config: BertConfig, batch: int, seq_len: int) -> float:
    """Forward FLOPs of the BERT encoder on a (batch, seq_len) input.

    Per token and layer: Q, K, V and output projections (4 H^2 multiply-adds), the feed-forward
    block (2 H I), and attention scores plus the weighted sum over ``seq_len`` keys (2 T H).
    """
    h, i = config.hidden_size, config.intermediate_size
    per_token_layer = 4 * h * h + 2 * h * i + 2 * seq_len * h
    return 2.0 * batch * seq_len * config.num_hidden_layers * per_token_layer


def heads_forward_flops(config: BertConfig, num_mlm: int, num_sbo: int, sbo_position_size: int = 200) -> float:
    """Forward FLOPs of the MLM head on ``num_mlm`` positions and the SBO head on ``num_sbo`` targets."""
    h, v = config.hidden_size, config.vocab_size
    mlm = num_mlm * (h * h + h * v)
    sbo = num_sbo * ((2 * h + sbo_position_size) * h + h * h + h * v)
    return 2.0 * (mlm + sbo)


def pretraining_step_flops(config: BertConfig, input_shape: tuple[int, int], num_mlm: int, num_sbo: int,
                           encoder_backward: bool = True) -> float:
    """Forward + backward FLOPs of one pre-training micro-batch (heads on masked positions only).

    ``encoder_backward=False``: the encoder is frozen without gradients (a head warm-up), so it
    runs forward only while the heads still run forward and backward.
    """
    batch, seq_len = input_shape
    position = getattr(config, "sbo_position_size", 200)
    encoder = encoder_forward_flops(config, batch, seq_len) * (3.0 if encoder_backward else 1.0)
    return encoder + 3.0 * heads_forward_flops(config, num_mlm, num_sbo, position)


def dense_mlm_step_flops(config: BertConfig, input_shape: tuple[int, int]) -> float:
    """Forward + backward FLOPs of ``BertForMaskedLM``, which decodes every position."""
    batch, seq_len = input_shape
    return 3.0 * (encoder_forward_flops(config, batch, seq_len) + heads_forward_flops(config, batch * seq_len, 0))
