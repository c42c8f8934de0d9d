"""RSS of CPU pre-training steps whose shapes change every batch: bucketed (ours) vs not.

Every batch of span-masked segments has its own width T and its own numbers of MLM targets M
and SBO targets N. Under bf16 autocast on a CPU, oneDNN builds kernels for every new GEMM shape
and keeps them for the life of the process, so a run's RSS grew with every new (T, M, N). The
trainer now pads T to a multiple of 32 (the collator's ``pad_to_multiple_of``) and the MLM/SBO
head rows to a multiple of ``spanbert.pretrain.modeling.ROW_BUCKET`` (64). This script runs the same
random batches through ``SpanBertForPreTraining`` + AdamW in two fresh processes, one with the
bucketing switched off (``ROW_BUCKET = 1``, no width padding) and one as the trainer runs, and
prints RSS after the warm-up, halfway and at the end, and the growth per 100 steps.

    OMP_NUM_THREADS=1 python benchmarks/bench_shape_memory.py --steps 200 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    import spanbert.pretrain.modeling as modeling
    from spanbert.pretrain.train import trim_heap

    if not args.bucketed:
        modeling.ROW_BUCKET = 1
    torch.manual_seed(0)
    model = modeling.SpanBertForPreTraining(modeling.config_from_preset(args.preset, vocab_size=args.vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    samples = []
    for step in range(args.steps):
        width = int(rng.integers(args.max_length // 2, args.max_length + 1))
        if args.bucketed:
            width = -(-width // 32) * 32
        ids = torch.from_numpy(rng.integers(5, args.vocab, (args.batch, width)))
        labels = torch.full_like(ids, -100)
        n = int(rng.binomial(args.batch * width, 0.15))  # about 15% of the tokens, a new M every batch
        b = torch.from_numpy(rng.integers(0, args.batch, n))
        pos = torch.from_numpy(rng.integers(1, width - 1, n))
        labels[b, pos] = ids[b, pos]
        pairs = torch.stack([b, pos - 1, pos + 1, torch.zeros_like(pos)], 1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels,
                        sbo_pairs=pairs, sbo_labels=ids[b, pos])
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % 50 == 0:
            trim_heap()  # as the trainer does on a CPU
        samples.append(_rss_mb())
    print(json.dumps(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--precision", choices=("bf16", "no"), default="bf16")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bucketed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"command: OMP_NUM_THREADS=1 python benchmarks/bench_shape_memory.py --steps {args.steps} "
          f"--preset {args.preset} --batch {args.batch} --max-length {args.max_length} --precision {args.precision}")
    results = {}
    for name, flag in (("unbucketed", []), ("bucketed (ours)", ["--bucketed"])):
        cmd = [sys.executable, __file__, "--child", *flag, "--steps", str(args.steps), "--preset", args.preset,
               "--vocab", str(args.vocab), "--batch", str(args.batch), "--max-length", str(args.max_length),
               "--precision", args.precision]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    warm = min(20, args.steps // 4)
    print(f"{'':18} {'RSS step ' + str(warm):>14} {'RSS step ' + str(args.steps // 2):>14} "
          f"{'RSS step ' + str(args.steps):>14} {'MB per 100 steps':>17}")
    for name, rss in results.items():
        slope = (rss[-1] - rss[warm - 1]) / max(args.steps - warm, 1) * 100
        print(f"{name:18} {rss[warm - 1]:>11,.0f} MB {rss[args.steps // 2 - 1]:>11,.0f} MB {rss[-1]:>11,.0f} MB "
              f"{slope:>+17.1f}")


if __name__ == "__main__":
    main()
