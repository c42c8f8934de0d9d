#!/usr/bin/env bash
# README "SST-2": fine-tune a [CLS] classifier on GLUE SST-2 train, evaluate on dev (with the
# majority-class baseline), from MiniLM continued with our span pre-training (BASE).
#   BASE=runs/minilm-span OUT=runs/sst2 bash benchmarks/classify_quality.sh
set -euo pipefail
DATA=${DATA:-../shared/data/sst2}
BASE=${BASE:-runs/minilm-span}
OUT=${OUT:-runs/sst2}
/usr/bin/time -v spanbert finetune classify --model "$BASE" --train "$DATA/train.tsv.gz" --dev "$DATA/dev.tsv" \
  --output "$OUT" --epochs ${EPOCHS:-3} --batch-size 32 --lr ${LR:-1e-4} --max-seq-length 128 \
  --time-budget ${BUDGET:-45} --no-progress 2>&1 | tee "$OUT.log"
