"""spanbert.pretrain.hf_trainer: SpanMaskingCollator + SpanBertForPreTraining in a transformers Trainer.

The reference is the real ``spanbert pretrain`` loop (``spanbert.pretrain.train.pretrain``) on the same
examples in the same order: per-step losses, gradient norms and the weights after training
must be the same. Dropout is off so that both loops compute the same forward passes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from transformers import BertConfig, BertForMaskedLM, Trainer, TrainerState, TrainingArguments

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.pretrain.corpus import load_corpus, pack_documents
from spanbert.core.errors import ConfigError
from spanbert.pretrain.hf_trainer import SpanBertTrainer, SpanBertTrainerCallback
from spanbert.pretrain.masking import IGNORE_INDEX, MaskingConfig
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
from spanbert.pretrain.arguments import PretrainArguments
from spanbert.pretrain.train import epoch_batches, pretrain

from .conftest import DATA

transformers.logging.set_verbosity_error()

SEED = 7  # data order and masks
# One SBO target per span: the SBO/MLM target ratio then differs between micro-batches, which
# is what separates per-step from per-micro-batch normalisation.
MASKING = MaskingConfig(max_pair_targets=1)


@pytest.fixture(scope="module")
def packed(tiny_tokenizer):
    docs = load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")])
    return pack_documents(docs, tiny_tokenizer, max_length=48)  # 109 segments with word_starts, example_id


def make_model(tokenizer) -> SpanBertForPreTraining:
    torch.manual_seed(0)
    config = SpanBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64, sbo_position_size=16,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return SpanBertForPreTraining(config)


def in_pretrain_order(packed, global_micro: int):
    """The examples of pretrain's first epoch in the order it trains on them, for global
    micro-batches (all processes) of ``global_micro`` sequences."""
    return packed.select(epoch_batches(len(packed), global_micro, SEED, 0).reshape(-1).tolist())


def read_metrics(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def trainer_args(out, micro: int, grad_accum: int, steps: int, lr: float, **extra) -> TrainingArguments:
    settings = dict(output_dir=str(out), per_device_train_batch_size=micro, gradient_accumulation_steps=grad_accum,
                    max_steps=steps, learning_rate=lr, weight_decay=0.01, warmup_steps=0, max_grad_norm=1.0,
                    logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=SEED,
                    remove_unused_columns=False, train_sampling_strategy="sequential", disable_tqdm=True)
    return TrainingArguments(**{**settings, **extra})


def step_logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "loss" in h]


@pytest.mark.parametrize("trainer_class, grad_accum", [(SpanBertTrainer, 1), (SpanBertTrainer, 2), (Trainer, 1)])
def test_trainer_trains_exactly_as_pretrain(tiny_tokenizer, packed, tmp_path, trainer_class, grad_accum):
    micro, steps, lr = 4, 4, 3e-3
    reference = make_model(tiny_tokenizer)
    args = PretrainArguments(output_dir=str(tmp_path / "pretrain"), batch_size=micro * grad_accum,
                             grad_accum=grad_accum, max_steps=steps, lr=lr, warmup_steps=0, seed=SEED,
                             hashed_dropout=False, mixed_precision="no", log_every=1, save_every=0, progress=False)
    result = pretrain(reference, tiny_tokenizer, packed, SpanMaskingCollator(tiny_tokenizer, MASKING, seed=SEED), args)
    expected = read_metrics(result.metrics_csv)

    model = make_model(tiny_tokenizer)
    collator = SpanMaskingCollator(tiny_tokenizer, MASKING, seed=SEED)
    trainer = trainer_class(model=model, args=trainer_args(tmp_path / "hf", micro, grad_accum, steps, lr),
                            train_dataset=in_pretrain_order(packed, micro), data_collator=collator,
                            callbacks=[SpanBertTrainerCallback(collator)])
    trainer.train()
    got = step_logs(trainer)
    assert len(got) == len(expected) == steps
    for row, log in zip(expected, got):
        assert log["loss"] == pytest.approx(float(row["loss"]), rel=1e-6)
        assert log["grad_norm"] == pytest.approx(float(row["grad_norm"]), rel=1e-5)  # the gradients' scale
    # ... and their direction: the same updates (clipped at 1.0, so the scale matters too)
    for (name, p), q in zip(reference.named_parameters(), model.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6, msg=name)
    assert any(not torch.equal(p, q) for p, q in zip(make_model(tiny_tokenizer).parameters(), model.parameters()))


def micro_batch_outputs(model, dataset, collator, micro: int, n: int):
    """Forward passes of the first ``n`` micro-batches of ``dataset`` in order (epoch 0)."""
    collator.set_epoch(0)
    return [model(**collator([dataset[i] for i in range(b * micro, (b + 1) * micro)])) for b in range(n)]


def test_stock_trainer_under_accumulation_gives_the_documented_loss(tiny_tokenizer, packed, tmp_path):
    """A stock Trainer passes one count: its MLM term is pretrain's, its SBO term weighs each
    micro-batch's SBO mean by its share of the step's MLM targets (as modeling documents)."""
    micro, grad_accum, steps = 4, 2, 3
    data = in_pretrain_order(packed, micro)
    model = make_model(tiny_tokenizer)
    weight = model.config.sbo_loss_weight
    documented, exact = [], []  # per step: loss, gradient norm (the stock Trainer's; pretrain's)
    for step in range(steps):
        outs = micro_batch_outputs(model, data, SpanMaskingCollator(tiny_tokenizer, MASKING, seed=SEED), micro,
                                   (step + 1) * grad_accum)[step * grad_accum:]
        n_mlm = sum(o.num_mlm_targets for o in outs)
        n_sbo = sum(o.num_sbo_targets for o in outs)
        approx = sum(o.mlm_loss_sum / n_mlm + weight * o.sbo_loss_sum / o.num_sbo_targets * o.num_mlm_targets / n_mlm
                     for o in outs)
        true = sum(o.mlm_loss_sum / n_mlm + weight * o.sbo_loss_sum / n_sbo for o in outs)
        norms = []
        for loss in (approx, true):
            grads = torch.autograd.grad(loss, [p for p in model.parameters()], retain_graph=True, allow_unused=True)
            norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads if g is not None]))))
        documented += [approx.item(), norms[0]]
        exact += [true.item(), norms[1]]
    assert max(abs(a - b) for a, b in zip(documented[::2], exact[::2])) > 1e-3  # the data tells them apart

    for trainer_class, want in ((Trainer, documented), (SpanBertTrainer, exact)):
        collator = SpanMaskingCollator(tiny_tokenizer, MASKING, seed=SEED)
        trainer = trainer_class(model=make_model(tiny_tokenizer), train_dataset=data, data_collator=collator,
                                args=trainer_args(tmp_path / trainer_class.__name__, micro, grad_accum, steps, 0.0,
                                                  max_grad_norm=1e9),
                                callbacks=[SpanBertTrainerCallback(collator)])
        trainer.train()
        got = [value for log in step_logs(trainer) for value in (log["loss"], log["grad_norm"])]
        assert got == pytest.approx(want, rel=1e-5), trainer_class.__name__


def record_batches(model) -> list[torch.Tensor]:
    """The ``labels`` of every batch the model is called with, in order."""
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw["labels"].clone()), with_kwargs=True)
    return seen


@pytest.mark.parametrize("workers", [0, 2])
def test_callback_gives_new_masks_every_epoch(tiny_tokenizer, packed, tmp_path, workers):
    micro, epochs = 4, 2
    data = packed.select(range(8))
    model = make_model(tiny_tokenizer)
    seen = record_batches(model)
    collator = SpanMaskingCollator(tiny_tokenizer, seed=SEED)
    args = trainer_args(tmp_path, micro, 1, -1, 0.0, num_train_epochs=epochs, dataloader_num_workers=workers)
    Trainer(model=model, args=args, train_dataset=data, data_collator=collator,
            callbacks=[SpanBertTrainerCallback(collator)]).train()
    per_epoch = len(data) // micro
    assert len(seen) == epochs * per_epoch
    for epoch in range(epochs):
        # the masks pretrain gives these examples in this epoch: seeded by (seed, epoch, example_id)
        reference = SpanMaskingCollator(tiny_tokenizer, seed=SEED)
        reference.set_epoch(epoch)
        for b in range(per_epoch):
            want = reference([data[i] for i in range(b * micro, (b + 1) * micro)])["labels"]
            torch.testing.assert_close(seen[epoch * per_epoch + b], want)
    for b in range(per_epoch):
        assert not torch.equal(seen[b] != IGNORE_INDEX, seen[per_epoch + b] != IGNORE_INDEX)

    if workers == 0:  # what the callback fixes: without it, every epoch repeats the first one's masks
        model = make_model(tiny_tokenizer)
        seen = record_batches(model)
        plain = SpanMaskingCollator(tiny_tokenizer, seed=SEED)
        Trainer(model=model, args=args, train_dataset=data, data_collator=plain).train()
        assert all(torch.equal(seen[b], seen[per_epoch + b]) for b in range(per_epoch))


def test_callback_continues_the_epoch_count_of_a_resumed_run(tiny_tokenizer):
    collator = SpanMaskingCollator(tiny_tokenizer, seed=SEED)
    callback = SpanBertTrainerCallback(collator)
    args = TrainingArguments(output_dir="unused", remove_unused_columns=False, report_to=[], use_cpu=True)
    callback.on_train_begin(args, TrainerState(epoch=2.5), None, model=make_model(tiny_tokenizer))
    callback.on_epoch_begin(args, TrainerState(epoch=2.5), None)
    assert collator.epoch == 2
    callback.on_epoch_begin(args, TrainerState(epoch=3.0), None)
    assert collator.epoch == 3


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_unusable_setups_fail_with_one_line_errors(tiny_tokenizer, packed, tmp_path):
    data = packed.select(range(8))
    collator = SpanMaskingCollator(tiny_tokenizer, seed=SEED)
    defaults = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, report_to=[],
                                 use_cpu=True, save_strategy="no", disable_tqdm=True)
    assert defaults.remove_unused_columns  # the Trainer's default drops word_starts and example_id
    with pytest.raises(ConfigError, match=r"remove_unused_columns=False") as caught:
        Trainer(model=make_model(tiny_tokenizer), args=defaults, train_dataset=data, data_collator=collator,
                callbacks=[SpanBertTrainerCallback(collator)]).train()
    one_line_error(caught)
    # without the callback the collator itself refuses the rows the Trainer stripped
    with pytest.raises(ConfigError, match=r"no word_starts.*remove_unused_columns=False") as caught:
        Trainer(model=make_model(tiny_tokenizer), args=defaults, train_dataset=data, data_collator=collator).train()
    one_line_error(caught)

    args = trainer_args(tmp_path, 4, 1, 2, 1e-3)
    bert = BertForMaskedLM(BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=64, max_position_embeddings=64))
    with pytest.raises(ConfigError, match=r"BertForMaskedLM.forward takes no sbo_pairs") as caught:
        Trainer(model=bert, args=args, train_dataset=data, data_collator=collator,
                callbacks=[SpanBertTrainerCallback(collator)]).train()
    one_line_error(caught)
    # span masking without SBO targets is what BertForMaskedLM can train (the callback finds the collator)
    no_sbo = SpanMaskingCollator(tiny_tokenizer, MaskingConfig(max_pair_targets=0), seed=SEED)
    trainer = Trainer(model=bert, args=args, train_dataset=data, data_collator=no_sbo,
                      callbacks=[SpanBertTrainerCallback])
    trainer.train()
    assert len(step_logs(trainer)) == 2 and np.isfinite(step_logs(trainer)[-1]["loss"])

    persistent = trainer_args(tmp_path, 4, 1, 2, 1e-3, dataloader_num_workers=1, dataloader_persistent_workers=True)
    with pytest.raises(ConfigError, match=r"dataloader_persistent_workers") as caught:
        SpanBertTrainer(model=make_model(tiny_tokenizer), args=persistent, train_dataset=data,
                        data_collator=collator).train()
    one_line_error(caught)


def _two_process_worker(out: Path) -> None:
    """One of two torchrun processes: ``pretrain`` and ``SpanBertTrainer`` on the same global
    batches (each process its share, with accumulation); rank 0 writes both runs' step logs."""
    from spanbert.core.checkpoints import load_tokenizer

    tokenizer = load_tokenizer(str(DATA / "tiny_wordpiece"))
    docs = load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")])
    data = pack_documents(docs, tokenizer, max_length=48)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    micro, grad_accum, steps, lr = 2, 2, 3, 3e-3
    reference = make_model(tokenizer)
    args = PretrainArguments(output_dir=str(out / "pretrain"), batch_size=micro * grad_accum * world,
                             grad_accum=grad_accum, max_steps=steps, lr=lr, warmup_steps=0, seed=SEED,
                             hashed_dropout=False, mixed_precision="no", log_every=1, save_every=0, progress=False)
    pretrain(reference, tokenizer, data, SpanMaskingCollator(tokenizer, MASKING, seed=SEED), args)
    # Trainer's DDP loader deals the sequential micro-batches out in turn: process r gets rows
    # r*micro.. of each global micro-batch, as pretrain's process r does.
    model = make_model(tokenizer)
    collator = SpanMaskingCollator(tokenizer, MASKING, seed=SEED)
    hf_args = trainer_args(out / "hf", micro, grad_accum, steps, lr, ddp_backend="gloo")
    trainer = SpanBertTrainer(model=model, args=hf_args, train_dataset=in_pretrain_order(data, micro * world),
                              data_collator=collator)
    trainer.train()
    weights_diff = max(float((p - q).abs().max()) for p, q in zip(reference.parameters(), model.parameters()))
    if rank == 0:
        expected = read_metrics(out / "pretrain" / "metrics.csv")
        result = {"pretrain": [[float(r["loss"]), float(r["grad_norm"])] for r in expected],
                  "trainer": [[log["loss"], log["grad_norm"]] for log in step_logs(trainer)],
                  "weights_diff": weights_diff}
        (out / "result.json").write_text(json.dumps(result))


@pytest.mark.slow
def test_two_processes_with_accumulation_train_exactly_as_pretrain(tmp_path):
    """torchrun, 2 CPU processes (gloo) x 2 micro-batches per step: SpanBertTrainer's global
    normalisation equals pretrain's (about 45 s)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "tests.test_hf_trainer", str(tmp_path)], cwd=DATA.parents[1], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert len(result["trainer"]) == len(result["pretrain"]) == 3
    assert np.array(result["trainer"]) == pytest.approx(np.array(result["pretrain"]), rel=1e-5)
    assert result["weights_diff"] < 1e-6


if __name__ == "__main__":  # the two processes of the test above
    _two_process_worker(Path(sys.argv[1]))
