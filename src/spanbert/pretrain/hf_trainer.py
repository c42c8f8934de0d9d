"""Pre-training SpanBERT with a ``transformers.Trainer`` instead of ``spanbert pretrain``.

A stock ``Trainer`` and :class:`spanbert.pretrain.collator.SpanMaskingCollator` need three things from
each other that neither does by itself; :class:`SpanBertTrainerCallback` provides them:

* a new mask every epoch: the callback calls the collator's ``set_epoch`` at each epoch begin
  (without it every epoch repeats the masks of the first);
* the ``word_starts`` and ``example_id`` columns: the Trainer drops every column the model's
  ``forward`` does not take unless ``TrainingArguments(remove_unused_columns=False)``; the
  callback refuses to start otherwise (and the collator refuses rows without ``word_starts``);
* a model that uses the SBO targets: ``BertForMaskedLM`` (what ``run_mlm.py`` trains) would
  swallow ``sbo_pairs``/``sbo_labels`` in its ``**kwargs`` and never train the span boundary
  objective; the callback refuses a model whose ``forward`` has no ``sbo_pairs`` parameter
  while the collator makes SBO targets.

The loss. ``spanbert pretrain`` normalises the MLM and SBO sums of an optimizer step each by its
own target count over the whole step (all micro-batches, all processes). A ``Trainer`` passes
:class:`~spanbert.pretrain.modeling.SpanBertForPreTraining` one count, ``num_items_in_batch`` (the
``labels != -100`` of the step), so:

* :class:`SpanBertTrainer` (a ``Trainer`` that passes both counts, and adds the callback)
  computes exactly the loss and gradients of ``spanbert pretrain``, with or without gradient
  accumulation and across processes;
* a stock ``Trainer`` computes them exactly without gradient accumulation on one process;
  with accumulation or several processes its MLM term is still exact, but its SBO term is
  the sum over micro-batches of (SBO mean x n_mlm / N_mlm) instead of SBO sum / N_sbo: equal
  when every micro-batch has the same SBO/MLM target ratio, slightly different otherwise.

Both log the loss on the scale of ``spanbert pretrain``'s ``loss`` column (MLM + w x SBO), not
multiplied by the accumulation steps. Example (tiny scale)::

    from transformers import TrainingArguments
    from spanbert.pretrain.hf_trainer import SpanBertTrainer

    args = TrainingArguments("out", per_device_train_batch_size=8, gradient_accumulation_steps=2,
                             remove_unused_columns=False, report_to=[])
    SpanBertTrainer(model=model, args=args, train_dataset=packed, data_collator=collator).train()
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.core.errors import ConfigError
from spanbert.pretrain.masking import IGNORE_INDEX

__all__ = ["SpanBertTrainer", "SpanBertTrainerCallback", "check_trainer_setup", "find_collator"]


def find_collator(train_dataloader: Any) -> SpanMaskingCollator | None:
    """The :class:`SpanMaskingCollator` a (Trainer-prepared) DataLoader collates with, or None.

    Looks through the wrappers the Trainer may put around it (``RemoveColumnsCollator``'s
    ``data_collator``).
    """
    collate = getattr(train_dataloader, "collate_fn", None)
    for _ in range(4):
        if isinstance(collate, SpanMaskingCollator):
            return collate
        collate = getattr(collate, "data_collator", None)
    return None


def _forward_parameters(model: torch.nn.Module) -> set[str]:
    """Named parameters of the ``forward`` of ``model`` under its DDP/compile wrappers."""
    inner = model
    for _ in range(4):  # DistributedDataParallel.module, torch.compile's _orig_mod
        inner = getattr(inner, "module", None) or getattr(inner, "_orig_mod", None) or inner
    return set(inspect.signature(inner.forward).parameters)


def check_trainer_setup(args: TrainingArguments, model: torch.nn.Module | None, collator: SpanMaskingCollator) -> None:
    """Refuse Trainer settings under which ``collator`` would silently mask or train wrongly.

    Raises:
        ConfigError: one line naming the setting: ``remove_unused_columns=True`` (the
            ``word_starts``/``example_id`` columns would be dropped), a model whose ``forward``
            has no ``sbo_pairs`` parameter while the collator makes SBO targets, or persistent
            DataLoader workers (they would keep the first epoch's masks).
    """
    if args.remove_unused_columns:
        raise ConfigError("TrainingArguments.remove_unused_columns=True drops the word_starts and example_id columns "
                          "that SpanMaskingCollator reads; set remove_unused_columns=False")
    if model is not None and collator.config.max_pair_targets > 0 and "sbo_pairs" not in _forward_parameters(model):
        name = type(model).__name__
        raise ConfigError(f"{name}.forward takes no sbo_pairs: the collator's span boundary objective targets would be "
                          "dropped and the SBO never trained; train spanbert's SpanBertForPreTraining, or make no SBO "
                          "targets with MaskingConfig(max_pair_targets=0)")
    if args.dataloader_num_workers > 0 and args.dataloader_persistent_workers:
        raise ConfigError("TrainingArguments.dataloader_persistent_workers=True keeps the collator copies of the first "
                          "epoch in the workers, so every epoch would repeat its masks; set it to False")


class SpanBertTrainerCallback(TrainerCallback):
    """Makes a stock ``transformers.Trainer`` drive a :class:`SpanMaskingCollator` correctly.

    At train begin it runs :func:`check_trainer_setup`; at each epoch begin it calls the
    collator's ``set_epoch`` with the Trainer's epoch (0, 1, ...; a run resumed from a
    checkpoint continues the count), so that masks change every epoch and an example's mask
    depends only on (seed, epoch, example_id), as under ``spanbert pretrain``.

    Args:
        collator: the collator given to the Trainer; None: the one found in its train
            DataLoader at train begin (:func:`find_collator`).
    """

    def __init__(self, collator: SpanMaskingCollator | None = None) -> None:
        self.collator = collator
        self._next_epoch = 0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: torch.nn.Module | None = None, train_dataloader: Any = None, **kwargs: Any) -> None:
        if self.collator is None:
            self.collator = find_collator(train_dataloader)
            if self.collator is None:
                raise ConfigError("SpanBertTrainerCallback: the Trainer's data_collator is not a SpanMaskingCollator; "
                                  "pass the collator: SpanBertTrainerCallback(collator)")
        check_trainer_setup(args, model, self.collator)
        # A resumed run's state holds the epoch it stopped in; the tolerance absorbs float sums.
        self._next_epoch = math.floor(state.epoch + 1e-6) if state.epoch else 0

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        # Called before the Trainer iterates the epoch's DataLoader, so workers (not persistent)
        # copy the collator with the new epoch.
        self.collator.set_epoch(self._next_epoch)
        self._next_epoch += 1


class SpanBertTrainer(Trainer):
    """A ``transformers.Trainer`` whose loss and gradients equal ``spanbert pretrain``'s.

    It passes ``SpanBertForPreTraining.forward`` the MLM and the SBO target counts of each whole
    optimizer step (all micro-batches; all processes when ``average_tokens_across_devices``, the
    default), so each term is normalised by its own count as ``spanbert pretrain`` does. A
    :class:`SpanBertTrainerCallback` is added unless ``callbacks`` holds one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(isinstance(cb, SpanBertTrainerCallback) for cb in self.callback_handler.callbacks):
            collator = self.data_collator if isinstance(self.data_collator, SpanMaskingCollator) else None
            self.add_callback(SpanBertTrainerCallback(collator))

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device) -> tuple[list, Any]:
        """The next ``num_batches`` micro-batches and their (N_mlm, N_sbo) target counts, a (2,) tensor.

        Falls back to the Trainer's own count (or None) where it would not pass one to the
        model, or for batches without ``sbo_labels``, or under ``DataParallel`` (``n_gpu`` > 1).
        """
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if num_items is None or self.args.n_gpu > 1 or not all("sbo_labels" in b for b in batches):
            return batches, num_items
        # The batches may already be on the device (accelerate's loader moves them): count there, no sync.
        n_mlm = sum((b["labels"] != IGNORE_INDEX).sum().to(device) for b in batches)
        n_sbo = torch.tensor(sum(b["sbo_labels"].numel() for b in batches), device=device)
        counts = torch.stack([n_mlm, n_sbo])  # (2,) int64
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            counts = self.accelerator.gather(counts[None]).sum(0)  # (processes, 2) -> (2,)
        return batches, counts
