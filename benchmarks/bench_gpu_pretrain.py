"""Pre-training throughput and MFU of a size preset on one accelerator (bf16 autocast by default).

For the GPU sessions: ``python benchmarks/bench_gpu_pretrain.py --preset base`` prints tokens/s
and model FLOP utilisation against the chip's dense peak (``--peak-tflops``; 989 for an H100/H200
SXM in bf16). The step is the trainer's: span-masking collator, SpanBertForPreTraining with
sparse MLM+SBO heads, fused AdamW, clipping. Runs on a CPU too (``--device cpu --preset tiny``),
which is how it is smoke-tested.

The baseline runs in the same process, steps alternating with ours (``--no-baseline`` skips it):
transformers' ``BertForMaskedLM`` of the same sizes with SDPA attention, the same precision,
batch and clipping, fused AdamW with the Trainer's parameter groups (``--compile`` compiles it
too), on the same token ids with 15% of the positions masked; it decodes every position over the
vocabulary, as it does. MFU counts each model's own matrix-product FLOPs (``spanbert.core.flops``).

``--profile N`` then runs N more of our steps under ``torch.profiler`` and prints the kernels
that take the most time: GPU kernels by their device time on a GPU, operators by CPU time on a
CPU (issue 18 asks for the GPU step's top kernels).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench_pretrain import hf_optimizer, optimizer_step, profiled_ops
from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.core.flops import dense_mlm_step_flops, pretraining_step_flops
from spanbert.pretrain.modeling import SpanBertForPreTraining, config_from_preset
from spanbert.pretrain.arguments import PretrainArguments
from spanbert.pretrain.train import build_optimizer


class _Tok:
    """The few tokenizer attributes the collator reads (a BERT-cased-sized vocabulary)."""

    def __init__(self, vocab_size: int):
        self.mask_token_id, self.pad_token_id, self.all_special_ids = 103, 0, [0, 100, 101, 102, 103]
        self._n = vocab_size

    def __len__(self) -> int:
        return self._n


def top_kernels(step, n: int, device: torch.device, rows: int = 15) -> str:
    """Markdown table of the kernels with the most self time over ``n`` calls of ``step()``, per
    step: device (CUDA) time on a GPU, CPU time otherwise, with each one's share of the total."""
    ops = profiled_ops(lambda: [step() for _ in range(n)], device)
    total = sum(t for _, t, _ in ops)
    unit = "GPU" if device.type == "cuda" else "CPU"
    lines = [f"| kernel | self {unit} ms/step | share | calls/step |", "|---|---|---|---|"]
    for key, t, count in ops[:rows]:
        name = key if len(key) <= 90 else key[:87] + "..."
        lines.append(f"| `{name}` | {t / 1e3 / n:.2f} | {t / total:.1%} | {count / n:g} |")
    lines.append(f"| all | {total / 1e3 / n:.2f} | 100% | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="base")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=512)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense peak of the chip at --precision")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--no-baseline", action="store_true", help="skip transformers' BertForMaskedLM")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="then profile N more of our steps and print the top kernels (0: no profile)")
    args = p.parse_args()

    device = torch.device(args.device)
    vocab = 28996
    torch.manual_seed(0)
    model = SpanBertForPreTraining(config_from_preset(args.preset, vocab_size=vocab)).to(device).train()
    model.bert.pooler.requires_grad_(False)
    opt = build_optimizer(model, PretrainArguments(output_dir="-"))
    step_model = torch.compile(model) if args.compile else model
    collator = SpanMaskingCollator(_Tok(vocab), seed=0)
    rng = np.random.default_rng(0)
    body = args.length - 2
    features = [{"input_ids": [101, *rng.integers(1000, vocab, body).tolist(), 102],
                 "word_starts": [0, *(rng.random(body) < 0.75).astype(int).tolist(), 0], "example_id": i}
                for i in range(args.batch)]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.precision]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    baseline = None
    if not args.no_baseline:
        from transformers import BertConfig, BertForMaskedLM

        torch.manual_seed(0)
        sizes = {k: v for k, v in model.config.to_dict().items() if k in BertConfig().to_dict() and k != "model_type"}
        base_config = BertConfig(**sizes)
        base_config._attn_implementation = "sdpa"
        baseline = BertForMaskedLM(base_config).to(device).train()
        base_opt = hf_optimizer(baseline)
        base_step_model = torch.compile(baseline) if args.compile else baseline
        ids = torch.tensor([f["input_ids"] for f in features])
        chosen = torch.from_numpy(rng.random(ids.shape) < 0.15) & (ids > 103)
        base_batch = {"input_ids": ids.masked_fill(chosen, 103).to(device),
                      "labels": ids.masked_fill(~chosen, -100).to(device)}

    def timed(run) -> float:
        sync()
        t = time.perf_counter()
        run()
        sync()
        return time.perf_counter() - t

    autocast = lambda: torch.autocast(device.type, dtype=dtype, enabled=args.precision != "fp32")  # noqa: E731
    times, flops, base_times = [], [], []
    for i in range(args.steps + 3):
        collator.set_epoch(i)
        batch = {k: v.to(device, non_blocking=True) for k, v in collator(features).items()}
        counts = {}

        def ours() -> None:
            with autocast():
                out = step_model(**batch)
            optimizer_step(model, opt, out.loss)
            counts.update(mlm=int(out.num_mlm_targets), sbo=int(out.num_sbo_targets))

        def theirs() -> None:
            with autocast():
                loss = base_step_model(**base_batch).loss
            optimizer_step(baseline, base_opt, loss)

        t_ours = timed(ours)
        t_base = timed(theirs) if baseline is not None else None
        if i >= 3:
            times.append(t_ours)
            flops.append(pretraining_step_flops(model.config, (args.batch, args.length), counts["mlm"], counts["sbo"]))
            if t_base is not None:
                base_times.append(t_base)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{name}; preset {args.preset}; {args.precision}; batch {args.batch} x {args.length}; "
          f"median of {args.steps} steps each{'; compiled' if args.compile else ''}")
    t = statistics.median(times)
    tokens = args.batch * args.length / t
    mfu = statistics.median(flops) / t / (args.peak_tflops * 1e12)
    print(f"ours SpanBertForPreTraining (MLM+SBO): {t * 1e3:.1f} ms/step, {tokens:,.0f} tokens/s, "
          f"{statistics.median(flops) / t / 1e12:.1f} model TFLOP/s, MFU {mfu:.1%} of {args.peak_tflops:g} TFLOP/s")
    if base_times:
        tb = statistics.median(base_times)
        base_flops = dense_mlm_step_flops(baseline.config, (args.batch, args.length))
        print(f"baseline BertForMaskedLM (sdpa):      {tb * 1e3:.1f} ms/step, {args.batch * args.length / tb:,.0f} tokens/s, "
              f"{base_flops / tb / 1e12:.1f} model TFLOP/s, MFU {base_flops / tb / (args.peak_tflops * 1e12):.1%}")
        print(f"ratio (ours / baseline tokens/s): {tb / t:.2f}x")
    if args.profile:
        def ours_again() -> None:
            batch = {k: v.to(device, non_blocking=True) for k, v in collator(features).items()}
            with autocast():
                out = step_model(**batch)
            optimizer_step(model, opt, out.loss)

        print(f"\nours, profiled over {args.profile} more steps (torch.profiler):\n")
        print(top_kernels(ours_again, args.profile, device))


if __name__ == "__main__":
    main()
