"""Held-out evaluation of the pre-training heads, and a train / held-out split by document.

:func:`evaluate_heldout` masks held-out segments exactly as training does (the collator's
span masking), but with a fixed epoch, so that two evaluations of different models (before and
after training, or every N steps) see the same masks and targets. It reports, per target:

* the mean MLM cross-entropy over masked tokens and the mean SBO cross-entropy over SBO targets
  (nats, the quantities the training loss averages);
* top-1 / top-5 accuracy of the MLM head (masked tokens), of the SBO head (SBO targets) and of
  the two combined ("joint": log-softmax(MLM) + log-softmax(SBO), at the SBO targets, which are
  all masked tokens too);
* optionally the accuracy of a unigram baseline that always guesses the corpus's most frequent
  non-special tokens, over the same masked tokens: the floor a head has to beat.

:func:`split_by_document` splits a packed dataset that has a ``doc_id`` column
(``pack_documents(..., with_doc_ids=True)``) so that no document is on both sides.

Typical use::

    packed = pack_documents(docs, tokenizer, max_length=128, with_doc_ids=True)
    train, heldout = split_by_document(packed, 0.05, seed=0)
    collator = SpanMaskingCollator(tokenizer, seed=0)
    before = evaluate_heldout(model, heldout, collator, unigram=unigram_distribution(train, V))
    ...  # train
    after = evaluate_heldout(model, heldout, collator)
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spanbert.core.errors import ConfigError
from spanbert.pretrain.masking import IGNORE_INDEX
from spanbert.pretrain.modeling import SpanBertForPreTraining

__all__ = ["HELDOUT_EPOCH", "DOC_ID_COLUMN", "HeldoutMetrics", "evaluate_heldout", "split_by_document",
           "unigram_topk_ids"]

# The collator epoch every held-out evaluation masks with: fixed, so every evaluation sees the same masks.
HELDOUT_EPOCH = 0
# Column of pack_documents(..., with_doc_ids=True): index of the source document of each segment.
DOC_ID_COLUMN = "doc_id"


@dataclass
class HeldoutMetrics:
    """Held-out metrics of the pre-training heads (means are per target; ``None`` where no target).

    ``segments``: segments evaluated; ``masked_tokens``: MLM targets (tokens the collator chose,
    whether replaced by [MASK], a random token or kept); ``sbo_targets``: SBO targets;
    ``joint_targets``: targets with both an MLM and an SBO prediction.
    Losses are in nats; accuracies are fractions in [0, 1].
    """

    segments: int
    masked_tokens: int
    sbo_targets: int
    joint_targets: int
    mlm_loss: float | None
    sbo_loss: float | None
    mlm_top1: float | None
    mlm_top5: float | None
    sbo_top1: float | None
    sbo_top5: float | None
    joint_top1: float | None
    joint_top5: float | None
    unigram_top1: float | None = None
    unigram_top5: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (plain ints, floats and ``None``)."""
        return asdict(self)

    def summary(self) -> str:
        """One line: MLM/SBO loss and top-1 accuracy (and the unigram baseline's, when known)."""

        def f(value: float | None, spec: str) -> str:
            return "n/a" if value is None else format(value, spec)

        line = (f"MLM loss {f(self.mlm_loss, '.4f')} top-1 {f(self.mlm_top1, '.2%')}, "
                f"SBO loss {f(self.sbo_loss, '.4f')} top-1 {f(self.sbo_top1, '.2%')}, "
                f"joint top-1 {f(self.joint_top1, '.2%')}")
        if self.unigram_top1 is not None:
            line += f", unigram top-1 {f(self.unigram_top1, '.2%')}"
        return line + f" ({self.masked_tokens:,} masked tokens in {self.segments:,} segments)"


def unigram_topk_ids(unigram: np.ndarray, k: int, special_ids: Sequence[int] = ()) -> np.ndarray:
    """The ``k`` most frequent token ids of ``unigram`` (V,), special ids left out; ties go to the lower id."""
    scores = np.asarray(unigram, dtype=np.float64).copy()  # (V,)
    special = [i for i in special_ids if 0 <= i < scores.shape[0]]
    scores[special] = -np.inf
    order = np.argsort(-scores, kind="stable")  # (V,) most frequent first, ties by id
    return order[:k]


def _batches(dataset: Any, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows of a ``datasets.Dataset`` (or a sequence of mappings) in order, ``batch_size`` at a time.

    Each row gets an ``example_id`` (its position, where the dataset has none), so that its mask
    never comes from the collator's shared generator (which would depend on what was drawn before).
    """
    n = len(dataset)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if hasattr(dataset, "column_names") and hasattr(dataset, "select"):
            chunk = dataset[start:stop]  # dict of columns
            rows = [{k: chunk[k][i] for k in chunk} for i in range(stop - start)]
        else:
            rows = [dict(dataset[i]) for i in range(start, stop)]
        for i, row in enumerate(rows):
            if row.get("example_id") is None:
                row["example_id"] = start + i
        yield rows


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "auto":
        from spanbert.core.precision import resolve_precision

        precision = resolve_precision("auto")
    if precision == "no":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ConfigError(f"precision: expected auto, no or bf16, got {precision!r}")


def _topk_hits(scores: torch.Tensor, targets: torch.Tensor, k: int) -> tuple[int, int]:
    """(top-1 hits, top-k hits) of ``scores`` (K, V) against ``targets`` (K,)."""
    if targets.numel() == 0:
        return 0, 0
    top = scores.topk(min(k, scores.size(-1)), dim=-1).indices  # (K, k)
    hits = top == targets[:, None]  # (K, k)
    return int(hits[:, 0].sum()), int(hits.any(dim=-1).sum())


@torch.no_grad()
def evaluate_heldout(
    model: SpanBertForPreTraining,
    dataset: Any,
    collator: Any,
    *,
    batch_size: int = 32,
    precision: str = "auto",
    unigram: np.ndarray | None = None,
    max_batches: int | None = None,
    epoch: int = HELDOUT_EPOCH,
) -> HeldoutMetrics:
    """Mask the held-out ``dataset`` with ``collator`` at a fixed ``epoch`` and score the heads.

    Args:
        model: the pre-training model (its MLM and SBO heads are scored); evaluated in eval
            mode under ``torch.no_grad`` on the device of its parameters; its train/eval mode is
            restored afterwards. No random number generator is drawn from (resume stays exact).
        dataset: packed segments (``input_ids``, ``word_starts``, ``example_id``), a
            ``datasets.Dataset`` or a sequence of mappings; read in order.
        collator: a :class:`spanbert.pretrain.collator.SpanMaskingCollator`; a copy of it is set to
            ``epoch``, the caller's collator is left untouched (its epoch drives training).
        batch_size: segments a forward pass.
        precision: "auto" (bf16 where the hardware has it natively), "no" (fp32) or "bf16".
        unigram: optional (V,) corpus unigram distribution (e.g. of the training split): adds
            the baseline that always guesses its most frequent non-special tokens.
        max_batches: evaluate only the first this many batches.
        epoch: collator epoch of the masks (keep the default to compare evaluations).

    Returns:
        :class:`HeldoutMetrics`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size: must be >= 1, got {batch_size!r}")
    if max_batches is not None and max_batches < 1:
        raise ConfigError(f"max_batches: must be >= 1, got {max_batches!r}")
    if len(dataset) == 0:
        raise ConfigError("held-out set: no segment to evaluate")
    masker = copy.copy(collator)
    masker.set_epoch(epoch)
    device = next(model.parameters()).device
    autocast = _autocast(device, precision)
    unigram_top: torch.Tensor | None = None
    if unigram is not None:
        special = getattr(collator, "special_ids", ())
        unigram_top = torch.from_numpy(unigram_topk_ids(unigram, 5, special))  # (5,)

    was_training = model.training
    model.eval()
    segments = n_mlm = n_sbo = n_joint = 0
    mlm_ce = sbo_ce = 0.0
    hits = dict.fromkeys(("mlm1", "mlm5", "sbo1", "sbo5", "joint1", "joint5", "uni1", "uni5"), 0)
    try:
        for index, rows in enumerate(_batches(dataset, batch_size)):
            if max_batches is not None and index >= max_batches:
                break
            batch = {k: v.to(device) for k, v in masker(rows).items()}
            with autocast:
                out = model(**batch, return_logits=True)
            mlm_logits = out.mlm_logits.float()  # (M, V), rows in row-major order of labels != -100
            sbo_logits = out.sbo_logits.float()  # (N, V), rows in the order of sbo_pairs
            flat_labels = batch["labels"].reshape(-1)  # (B*T,)
            masked = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)  # (M,) flat positions, ascending
            mlm_targets = flat_labels[masked]  # (M,)
            sbo_targets = batch["sbo_labels"]  # (N,)
            mlm_ce += float(F.cross_entropy(mlm_logits, mlm_targets, reduction="sum"))
            sbo_ce += float(F.cross_entropy(sbo_logits, sbo_targets, reduction="sum"))
            for name, scores, targets in (("mlm", mlm_logits, mlm_targets), ("sbo", sbo_logits, sbo_targets)):
                one, five = _topk_hits(scores, targets, 5)
                hits[name + "1"] += one
                hits[name + "5"] += five
            # Joint: the SBO target at (b, left + 1 + offset) is the MLM row of that flat position.
            pairs = batch["sbo_pairs"]  # (N, 4): batch index, left, right, offset
            width = batch["labels"].size(1)
            flat_sbo = pairs[:, 0] * width + pairs[:, 1] + 1 + pairs[:, 3]  # (N,)
            if masked.numel() and flat_sbo.numel():
                rows_of = torch.searchsorted(masked, flat_sbo).clamp(max=masked.numel() - 1)  # (N,) MLM row
                both = masked[rows_of] == flat_sbo  # (N,) always true for the collator's targets
            else:
                rows_of = both = flat_sbo.new_zeros(0, dtype=torch.bool)
            if both.any():
                joint = (F.log_softmax(mlm_logits[rows_of[both]], dim=-1)
                         + F.log_softmax(sbo_logits[both], dim=-1))  # (J, V)
                one, five = _topk_hits(joint, sbo_targets[both], 5)
                hits["joint1"] += one
                hits["joint5"] += five
                n_joint += int(both.sum())
            if unigram_top is not None and mlm_targets.numel():
                guess = unigram_top.to(mlm_targets.device)  # (5,)
                match = mlm_targets[:, None] == guess[None, :]  # (M, 5)
                hits["uni1"] += int(match[:, 0].sum())
                hits["uni5"] += int(match.any(dim=-1).sum())
            segments += len(rows)
            n_mlm += int(mlm_targets.numel())
            n_sbo += int(sbo_targets.numel())
    finally:
        model.train(was_training)

    def mean(total: float, count: int) -> float | None:
        return float(total) / count if count else None

    result = HeldoutMetrics(
        segments=segments, masked_tokens=n_mlm, sbo_targets=n_sbo, joint_targets=n_joint,
        mlm_loss=mean(mlm_ce, n_mlm), sbo_loss=mean(sbo_ce, n_sbo),
        mlm_top1=mean(hits["mlm1"], n_mlm), mlm_top5=mean(hits["mlm5"], n_mlm),
        sbo_top1=mean(hits["sbo1"], n_sbo), sbo_top5=mean(hits["sbo5"], n_sbo),
        joint_top1=mean(hits["joint1"], n_joint), joint_top5=mean(hits["joint5"], n_joint),
    )
    if unigram_top is not None:
        result.unigram_top1 = mean(hits["uni1"], n_mlm)
        result.unigram_top5 = mean(hits["uni5"], n_mlm)
    for name in ("mlm_loss", "sbo_loss"):
        value = getattr(result, name)
        if value is not None and not math.isfinite(value):
            setattr(result, name, None)  # JSON has no NaN/inf; a diverged model shows as n/a
    return result


def split_by_document(
    packed: Any,
    fraction: float,
    *,
    seed: int = 0,
    doc_column: str = DOC_ID_COLUMN,
) -> tuple[Any, Any]:
    """Split a packed ``datasets.Dataset`` into (train, held-out) by document.

    ``round(fraction x documents)`` documents (at least 1, at most all but 1), drawn with
    ``seed``, go to the held-out side with all their segments; no document is on both sides.
    Both sides keep the original row order and columns (``example_id`` included, so training
    masks do not change with the split). Needs the ``doc_id`` column of
    ``pack_documents(..., with_doc_ids=True)``.

    Raises:
        ConfigError: ``fraction`` outside (0, 1), no ``doc_id`` column, a streamed dataset,
            or fewer than 2 documents.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"--heldout-fraction: must be in (0, 1), got {fraction!r}")
    if not hasattr(packed, "__len__") or not hasattr(packed, "select"):
        raise ConfigError("--heldout-fraction: a streamed corpus cannot be split (drop --streaming)")
    if doc_column not in (packed.column_names or []):
        raise ConfigError(f"--heldout-fraction: the packed corpus has no {doc_column!r} column "
                          "(pack it with pack_documents(..., with_doc_ids=True))")
    docs = np.asarray(packed[doc_column], dtype=np.int64)  # (S,) document of each segment
    unique = np.unique(docs)  # (D,) sorted
    if unique.size < 2:
        raise ConfigError(f"--heldout-fraction: the corpus has {unique.size} document(s); need at least 2 to hold one out")
    n_held = min(max(1, round(fraction * unique.size)), unique.size - 1)
    held_docs = np.random.default_rng([seed, 0x4E1D]).permutation(unique)[:n_held]
    is_held = np.isin(docs, held_docs)  # (S,)
    return packed.select(np.flatnonzero(~is_held).tolist()), packed.select(np.flatnonzero(is_held).tolist())
