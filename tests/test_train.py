"""The pre-training loop: exact resume, global loss normalisation, checkpoints, budget, outputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.pretrain.corpus import load_corpus, pack_documents
from spanbert.core.errors import ConfigError
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
from spanbert.pretrain.arguments import PretrainArguments
from spanbert.pretrain.train import (COMPILE_MIN_STEPS, GPU_LOADER_WORKERS, compile_choice, epoch_batches,
                                     loader_workers, pretrain)
from spanbert.core.run_folder import latest_checkpoint

from .conftest import DATA

transformers.logging.set_verbosity_error()


@pytest.fixture(scope="module")
def packed(tiny_tokenizer):
    docs = load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")])
    return pack_documents(docs, tiny_tokenizer, max_length=48)


def make_model(tokenizer, dropout: float = 0.1, seed: int = 0) -> SpanBertForPreTraining:
    torch.manual_seed(seed)
    config = SpanBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64, sbo_position_size=16,
                            hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return SpanBertForPreTraining(config)


def run(tokenizer, packed, out, *, resume=False, stop_at_step=None, dropout=0.1, **kw):
    # fp32 and seed 0 unless a test says otherwise (the defaults are auto and 42)
    args = PretrainArguments(output_dir=str(out), progress=False, **{"batch_size": 4, "max_steps": 6, "lr": 3e-3,
                                                                     "save_every": 2, "log_every": 1,
                                                                     "mixed_precision": "no", "seed": 0, **kw})
    collator = SpanMaskingCollator(tokenizer, seed=1)
    return pretrain(make_model(tokenizer, dropout), tokenizer, packed, collator, args, resume=resume, stop_at_step=stop_at_step)


def read_metrics(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_resume_after_interruption_matches_uninterrupted_run(tiny_tokenizer, packed, tmp_path):
    full = run(tiny_tokenizer, packed, tmp_path / "full")
    first = run(tiny_tokenizer, packed, tmp_path / "split", stop_at_step=3)
    assert first.state.step == 3 and latest_checkpoint(tmp_path / "split").name == "step-00000003"
    # the resumed session starts from a differently initialised model: the checkpoint must win
    second = run(tiny_tokenizer, packed, tmp_path / "split", resume=True)
    assert second.state.step == 6
    a, b = read_metrics(full.metrics_csv), read_metrics(second.metrics_csv)
    assert [r["step"] for r in b] == [str(i) for i in range(1, 7)]
    for ra, rb in zip(a, b):
        for key in ("loss", "mlm_loss", "sbo_loss", "lr", "tokens"):
            assert float(ra[key]) == float(rb[key]), (ra["step"], key)
    wa = load_file(str(tmp_path / "full" / "model.safetensors"))
    wb = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_checkpoints_are_complete_and_pruned(tiny_tokenizer, packed, tmp_path):
    run(tiny_tokenizer, packed, tmp_path, keep_checkpoints=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-00000004", "step-00000006"]  # pruned to 2, no temporary leftovers
    ckpt = tmp_path / "checkpoints" / "step-00000006"
    assert {p.name for p in ckpt.iterdir()} == {"config.json", "model.safetensors", "optimizer.safetensors",
                                                "rng.safetensors", "trainer_state.json"}
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["state"]["step"] == 6 and state["args"]["batch_size"] == 4
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    # outputs: final model + tokenizer, metrics and a real PNG
    for name in ("model.safetensors", "config.json", "tokenizer.json", "metrics.csv", "training_args.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loss_falls_and_metrics_are_consistent(tiny_tokenizer, packed, tmp_path):
    result = run(tiny_tokenizer, packed, tmp_path, max_steps=60, batch_size=8, save_every=0, lr=1e-2)
    rows = read_metrics(result.metrics_csv)
    assert len(rows) == 60
    for r in rows:
        assert float(r["loss"]) == pytest.approx(float(r["mlm_loss"]) + float(r["sbo_loss"]), rel=1e-9)
    first, last = np.mean([float(r["loss"]) for r in rows[:5]]), np.mean([float(r["loss"]) for r in rows[-5:]])
    assert float(rows[0]["loss"]) == pytest.approx(2 * np.log(len(tiny_tokenizer)), abs=0.5)  # ~ln V per head
    assert last < first - 1.0, (first, last)
    lrs = [float(r["lr"]) for r in rows]
    assert max(lrs) == pytest.approx(1e-2) and lrs[-1] < lrs[len(lrs) // 2]  # warm-up, then decay
    seen = np.concatenate([epoch_batches(len(packed), 8, 0, e).ravel() for e in range(5)])[: 60 * 8]
    assert int(rows[-1]["tokens"]) == sum(len(packed[int(i)]["input_ids"]) for i in seen)


def test_gradient_accumulation_equals_one_big_batch(tiny_tokenizer, packed, tmp_path):
    # Global batches are consecutive slices of one per-epoch permutation, and the loss is
    # normalised over every masked token of the optimizer step: batch 4 in 2 micro-batches of 2
    # == batch 4 at once (batch_size is the global batch, grad_accum splits it).
    big = run(tiny_tokenizer, packed, tmp_path / "big", dropout=0.0, batch_size=4, grad_accum=1, max_steps=2, save_every=0)
    acc = run(tiny_tokenizer, packed, tmp_path / "acc", dropout=0.0, batch_size=4, grad_accum=2, max_steps=2, save_every=0)
    a, b = read_metrics(big.metrics_csv), read_metrics(acc.metrics_csv)
    for ra, rb in zip(a, b):
        # grad_norm is taken before clipping: equal norms mean equally normalised gradients
        for key in ("loss", "mlm_loss", "sbo_loss", "tokens", "grad_norm"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-5), (ra["step"], key)
    wa = load_file(str(tmp_path / "big" / "model.safetensors"))
    wb = load_file(str(tmp_path / "acc" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4)


def test_time_budget_stops_early_and_saves(tiny_tokenizer, packed, tmp_path):
    result = run(tiny_tokenizer, packed, tmp_path, max_steps=10_000, time_budget_s=3.0, save_every=0)
    assert result.stopped_by_budget and 0 < result.state.step < 10_000
    assert (tmp_path / "model.safetensors").is_file()
    assert latest_checkpoint(tmp_path).name == f"step-{result.state.step:08d}"


def test_epoch_order_is_seeded_and_changes_per_epoch():
    a, b = epoch_batches(103, 8, seed=3, epoch=0), epoch_batches(103, 8, seed=3, epoch=0)
    assert a.shape == (12, 8) and np.array_equal(a, b)
    assert len(set(a.ravel().tolist())) == 96
    assert not np.array_equal(a, epoch_batches(103, 8, seed=3, epoch=1))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="batch_size"):
        PretrainArguments(output_dir="x", batch_size=0)
    with pytest.raises(ConfigError, match="mixed_precision"):
        PretrainArguments(output_dir="x", mixed_precision="fp8")


def test_too_small_corpus_for_a_batch(tiny_tokenizer, packed, tmp_path):
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        run(tiny_tokenizer, packed, tmp_path, batch_size=len(packed) + 1)


def test_streaming_corpus_trains_and_resumes_exactly(tiny_tokenizer, tmp_path):
    docs = load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")], streaming=True)
    stream = pack_documents(docs, tiny_tokenizer, max_length=48)
    assert not hasattr(stream, "__len__")
    full = run(tiny_tokenizer, stream, tmp_path / "full", max_steps=5, stream_shuffle_buffer=16)
    run(tiny_tokenizer, stream, tmp_path / "split", max_steps=5, stream_shuffle_buffer=16, stop_at_step=2)
    resumed = run(tiny_tokenizer, stream, tmp_path / "split", max_steps=5, stream_shuffle_buffer=16, resume=True)
    a, b = read_metrics(full.metrics_csv), read_metrics(resumed.metrics_csv)
    assert len(a) == len(b) == 5
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    with pytest.raises(ConfigError, match="--max-steps is required"):
        run(tiny_tokenizer, stream, tmp_path / "nosteps", max_steps=None)


def test_shuffled_stream_of_several_files_keeps_every_segment_once(tiny_tokenizer, tmp_path):
    """The training shuffle of a multi-file stream yields each packed segment exactly once, with
    distinct example ids (distinct mask seeds), the same segments as the unshuffled stream."""
    from spanbert.pretrain.train import _shuffle_stream

    lines = (DATA / "tiny_corpus.txt").read_text().split("\n\n")
    files = []
    for i in range(4):  # four files: datasets treats each as a shard
        path = tmp_path / f"part{i}.txt"
        path.write_text("\n\n".join(lines[i:] + lines[:i]))
        files.append(str(path))
    stream = pack_documents(load_corpus(files, streaming=True), tiny_tokenizer, max_length=32)
    plain = [(r["example_id"], tuple(r["input_ids"])) for r in stream]
    shuffled = [(r["example_id"], tuple(r["input_ids"])) for r in _shuffle_stream(stream, seed=3, buffer_size=8)]
    assert len({i for i, _ in shuffled}) == len(shuffled) == len(plain) > 20
    assert sorted(ids for _, ids in shuffled) == sorted(ids for _, ids in plain)
    assert shuffled != plain


def test_precision_auto_follows_the_hardware(monkeypatch):
    import spanbert.core.precision as precision

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto") == "no"
    assert precision.resolve_precision("fp16") == "fp16" and precision.resolve_precision("no") == "no"


def test_compile_is_chosen_by_device_and_run_length(tiny_tokenizer, packed, tmp_path, caplog):
    """--compile / --no-compile decide; by default only a GPU run long enough to pay for the
    warm-up compiles, and the run says which it did and why."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert PretrainArguments(output_dir="-").compile is None  # auto
    assert compile_choice(None, cuda, COMPILE_MIN_STEPS)[0] is True
    assert compile_choice(None, cuda, COMPILE_MIN_STEPS - 1) == (
        False, f"auto: {COMPILE_MIN_STEPS - 1:,} steps, fewer than {COMPILE_MIN_STEPS:,} would not pay for the warm-up")
    assert compile_choice(None, cpu, 10**6) == (False, "auto: a CPU run; --compile to force it")
    assert compile_choice(None, cuda, 10**6, processes=8)[0] is False  # not tried under DDP / FSDP
    assert compile_choice(True, cpu, 1) == (True, "--compile") and compile_choice(False, cuda, 10**6) == (False, "--no-compile")
    with caplog.at_level("INFO", logger="spanbert"):
        run(tiny_tokenizer, packed, tmp_path / "auto", max_steps=1, save_every=0)
    assert "torch.compile: off (auto: a CPU run; --compile to force it)" in caplog.text


def test_loader_workers_are_chosen_by_device_and_change_nothing(tiny_tokenizer, packed, tmp_path, caplog):
    """By default a GPU run collates in worker processes and a CPU run in its own; workers only
    move the collating: the run's losses are those of the main-process loader, bit for bit."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert PretrainArguments(output_dir="-").num_workers is None  # auto
    assert loader_workers(None, cuda, False) == (GPU_LOADER_WORKERS, "auto: a GPU run collates ahead of the step")
    assert loader_workers(None, cpu, False) == (0, "auto: a CPU run keeps its cores for the step")
    assert loader_workers(3, cpu, False) == (3, "--num-workers")
    assert loader_workers(3, cuda, True)[0] == 0  # a stream is collated in the main process
    with caplog.at_level("INFO", logger="spanbert"):
        main = run(tiny_tokenizer, packed, tmp_path / "main", max_steps=3, save_every=0)
    assert "data loader: 0 worker processes (auto: a CPU run keeps its cores for the step)" in caplog.text
    workers = run(tiny_tokenizer, packed, tmp_path / "workers", max_steps=3, save_every=0, num_workers=2)
    a, b = read_metrics(main.metrics_csv), read_metrics(workers.metrics_csv)
    assert [r["loss"] for r in a] == [r["loss"] for r in b] and len(a) == 3
    assert json.loads((tmp_path / "workers" / "training_args.json").read_text())["num_workers"] == 2


def test_bf16_autocast_on_cpu_trains(tiny_tokenizer, packed, tmp_path):
    fp32 = run(tiny_tokenizer, packed, tmp_path / "fp32", max_steps=2, save_every=0, dropout=0.0)
    bf16 = run(tiny_tokenizer, packed, tmp_path / "bf16", max_steps=2, save_every=0, dropout=0.0, mixed_precision="bf16")
    a, b = read_metrics(fp32.metrics_csv), read_metrics(bf16.metrics_csv)
    # same data and weights: the first loss agrees to bf16 precision, and is not bit-identical
    assert float(b[0]["loss"]) == pytest.approx(float(a[0]["loss"]), rel=2e-2)
    assert b[0]["loss"] != a[0]["loss"]
    assert all(np.isfinite(float(r["loss"])) for r in b)


def test_written_files_have_normal_permissions(tiny_tokenizer, packed, tmp_path):
    import os
    import stat

    run(tiny_tokenizer, packed, tmp_path, max_steps=2, save_every=1)
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp_path / "loss_curve.png", tmp_path / "training_args.json", tmp_path / "checkpoints" / "step-00000002",
                 tmp_path / "checkpoints" / "step-00000002" / "trainer_state.json"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 if path.is_dir() else 0o666) & ~umask, (path, oct(mode))


# -- continued pre-training recipe: head learning rate, head warm-up, held-out evaluation ------------


@pytest.fixture(scope="module")
def split(tiny_tokenizer):
    from spanbert.pretrain.heldout import split_by_document

    docs = load_corpus([str(DATA / "sotu_1790_washington.txt"), str(DATA / "tiny_corpus.txt")])
    return split_by_document(pack_documents(docs, tiny_tokenizer, max_length=48, with_doc_ids=True), 0.3, seed=0)


def run_recipe(tokenizer, split, out, *, resume=False, stop_at_step=None, **kw):
    train, heldout = split
    args = PretrainArguments(output_dir=str(out), progress=False, **{
        "batch_size": 4, "max_steps": 6, "lr": 3e-3, "head_lr": 1e-2, "head_warmup_steps": 3, "warmup_steps": 1,
        "save_every": 1, "log_every": 1, "eval_every": 2, **kw})
    collator = SpanMaskingCollator(tokenizer, seed=1)
    unigram = np.bincount(np.concatenate([np.asarray(r) for r in train["input_ids"]]), minlength=len(tokenizer))
    return pretrain(make_model(tokenizer), tokenizer, train, collator, args, resume=resume, stop_at_step=stop_at_step,
                    heldout=heldout, heldout_unigram=unigram / unigram.sum())


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("stop", [2, 3, 5])  # inside the head warm-up, at its end, after it
def test_head_warmup_resumes_exactly_with_heldout_log(tiny_tokenizer, split, tmp_path, stop):
    full = run_recipe(tiny_tokenizer, split, tmp_path / "full")
    first = run_recipe(tiny_tokenizer, split, tmp_path / "split", stop_at_step=stop)
    assert first.state.step == stop
    second = run_recipe(tiny_tokenizer, split, tmp_path / "split", resume=True)
    a, b = read_metrics(full.metrics_csv), read_metrics(second.metrics_csv)
    assert len(a) == len(b) == 6
    for ra, rb in zip(a, b):
        for key in ("loss", "mlm_loss", "sbo_loss", "lr", "grad_norm", "tokens", "flops"):
            assert float(ra[key]) == float(rb[key]), (ra["step"], key)
    # FLOPs are counted per step: a head-only step (no encoder backward) costs less than a full one
    spent = np.diff([0.0] + [float(r["flops"]) for r in a])
    assert all(spent > 0) and max(spent[:3]) < min(spent[3:])
    wa = load_file(str(tmp_path / "full" / "model.safetensors"))
    wb = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # one line per evaluation, none repeated, identical to the uninterrupted run's
    la, lb = read_jsonl(tmp_path / "full" / "heldout_metrics.jsonl"), read_jsonl(tmp_path / "split" / "heldout_metrics.jsonl")
    assert [r["step"] for r in la] == [0, 2, 4, 6] and la == lb
    summary = json.loads((tmp_path / "split" / "heldout_summary.json").read_text())
    assert summary == {"before": la[0], "after": la[-1]}
    assert la[-1]["mlm_loss"] < la[0]["mlm_loss"] and la[0]["unigram_top1"] is not None


def test_head_warmup_freezes_the_encoder_then_trains_it(tiny_tokenizer, split, tmp_path):
    initial = make_model(tiny_tokenizer).state_dict()
    result = run_recipe(tiny_tokenizer, split, tmp_path, eval_every=0, keep_checkpoints=10)
    rows = read_metrics(result.metrics_csv)
    # "lr" (after each step's scheduler step) is the encoder's: 0 through the 3 head-only steps and the
    # 1-step warm-up that follows them, then a decay from 3e-3 to 0
    assert [float(r["lr"]) for r in rows] == pytest.approx([0, 0, 0, 3e-3, 1.5e-3, 0])
    ckpt = load_file(str(tmp_path / "checkpoints" / "step-00000003" / "model.safetensors"))
    encoder = [k for k in ckpt if k.startswith("bert.") and not k.startswith("bert.pooler.")]
    heads = [k for k in ckpt if not k.startswith("bert.")]
    assert encoder and heads
    assert all(torch.equal(ckpt[k], initial[k]) for k in encoder)  # frozen for 3 steps
    assert not all(torch.equal(ckpt[k], initial[k]) for k in heads)  # the heads trained
    final = load_file(str(tmp_path / "model.safetensors"))
    assert not torch.equal(final["bert.encoder.layer.0.attention.self.query.weight"],
                           initial["bert.encoder.layer.0.attention.self.query.weight"])
    # the heads' optimizer groups ran at head_lr: their Adam state exists from step 1, the encoder's from step 4
    opt = json.loads((tmp_path / "checkpoints" / "step-00000006" / "trainer_state.json").read_text())["optimizer"]
    assert sorted({g["lr"] for g in opt["param_groups"]}) == [0.0]  # everything decayed to 0 at the last step
    assert {round(g["initial_lr"], 9) for g in opt["param_groups"]} == {3e-3, 1e-2}
    # only the heads of the session that stopped inside the warm-up: the model is left trainable
    model = make_model(tiny_tokenizer)
    pretrain(model, tiny_tokenizer, split[0], SpanMaskingCollator(tiny_tokenizer, seed=1),
             PretrainArguments(output_dir=str(tmp_path / "again"), progress=False, batch_size=4, max_steps=6,
                               head_warmup_steps=3, save_every=0), stop_at_step=2)
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("bert.pooler."))


def test_head_warmup_by_discarded_gradients_equals_no_encoder_backward(tiny_tokenizer, split, tmp_path, monkeypatch):
    """What DDP/FSDP runs (full backward, encoder gradients dropped before clipping) gives the updates
    of the single-process freeze (no encoder backward at all)."""
    import spanbert.pretrain.train as train

    fast = run_recipe(tiny_tokenizer, split, tmp_path / "fast", save_every=0, eval_every=0)
    monkeypatch.setattr(train, "freeze_without_backward", lambda world, fsdp: False)
    ddp_like = run_recipe(tiny_tokenizer, split, tmp_path / "ddp", save_every=0, eval_every=0)
    a, b = read_metrics(fast.metrics_csv), read_metrics(ddp_like.metrics_csv)
    for ra, rb in zip(a, b):
        for key in ("loss", "mlm_loss", "sbo_loss", "lr", "grad_norm"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-5), (ra["step"], key)
    wa = load_file(str(tmp_path / "fast" / "model.safetensors"))
    wb = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def test_head_lr_alone_keeps_one_schedule(tiny_tokenizer, packed, tmp_path):
    result = run(tiny_tokenizer, packed, tmp_path, head_lr=1e-2, warmup_steps=2, save_every=0)
    state = json.loads((tmp_path / "checkpoints" / "step-00000006" / "trainer_state.json").read_text())
    assert {round(g["initial_lr"], 9) for g in state["optimizer"]["param_groups"]} == {3e-3, 1e-2}
    assert [float(r["lr"]) for r in read_metrics(result.metrics_csv)] == pytest.approx([1.5e-3, 3e-3, 2.25e-3, 1.5e-3, 7.5e-4, 0])


def test_recipe_options_are_checked(tiny_tokenizer, packed, tmp_path):
    for field, value in (("head_lr", 0.0), ("head_lr", float("nan")), ("head_warmup_steps", -1),
                         ("head_warmup_steps", 1.5), ("eval_every", -1)):
        with pytest.raises(ConfigError, match="--" + field.replace("_", "-")) as info:
            PretrainArguments(output_dir="x", **{field: value})
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"\(--head-warmup-steps\): must be fewer than the run.s 6 steps"):
        run(tiny_tokenizer, packed, tmp_path, head_warmup_steps=6)


@pytest.mark.slow
def test_head_warmup_under_ddp_matches_one_process(tiny_tokenizer_dir, tmp_path):
    """Two gloo processes (full backward, encoder gradients dropped in the warm-up) give the losses,
    gradient norms and held-out metrics of one process (no encoder backward in the warm-up)."""
    from .ddp_runs import one_and_two_processes

    common = ["pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"), "--corpus", str(DATA / "tiny_corpus.txt"),
              "--tokenizer", str(tiny_tokenizer_dir), "--preset", "tiny", "--max-length", "48", "--dropout", "0",
              "--max-steps", "4", "--save-every", "0", "--no-progress", "--head-warmup-steps", "2", "--head-lr", "1e-3",
              "--heldout-fraction", "0.3"]
    one, two = one_and_two_processes(common, tmp_path)
    a, b = read_metrics(tmp_path / "one" / "metrics.csv"), read_metrics(tmp_path / "two" / "metrics.csv")
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        for key in ("loss", "mlm_loss", "sbo_loss", "grad_norm", "lr"):
            assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-6), (ra["step"], key)
    ha, hb = read_jsonl(tmp_path / "one" / "heldout_metrics.jsonl"), read_jsonl(tmp_path / "two" / "heldout_metrics.jsonl")
    assert [r["step"] for r in ha] == [r["step"] for r in hb] == [0, 4]
    for ra, rb in zip(ha, hb):
        assert ra.keys() == rb.keys()
        for key, value in ra.items():
            assert rb[key] == pytest.approx(value, rel=1e-6), key
