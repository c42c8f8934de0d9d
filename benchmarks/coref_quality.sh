#!/usr/bin/env bash
# LitBank coreference (issue 5): split the 100 books by sorted file name into 80 train / 10 dev /
# 10 test (symlinks), fine-tune the c2f head from BASE, score the test books, with and without
# singleton output (LitBank annotates singletons; --singletons needs the mention loss), then GAP test.
#   OMP_NUM_THREADS=2 EPOCHS=12 HEAD_LR=2e-4 LR=5e-5 BUDGET=75 bash benchmarks/coref_quality.sh [RUNS_DIR]
set -euo pipefail
RUNS=${1:-runs/coref}
BASE=${BASE:-runs/minilm-span}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/litbank_coref/conll
mkdir -p "$RUNS/litbank/train" "$RUNS/litbank/dev" "$RUNS/litbank/test"
i=0
for f in $(ls "$DATA"/*.conll.gz | sort); do
  if [ $i -lt 80 ]; then d=train; elif [ $i -lt 90 ]; then d=dev; else d=test; fi
  ln -sf "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$RUNS/litbank/$d/"
  i=$((i + 1))
done
/usr/bin/time -v spanbert finetune coref --model "$BASE" --train "$RUNS/litbank/train" --dev "$RUNS/litbank/dev" \
  --output "$RUNS/coref-litbank" --epochs ${EPOCHS:-2} --lr ${LR:-1e-4} ${HEAD_LR:+--head-lr $HEAD_LR} \
  --mention-loss-weight 1 --singletons --time-budget ${BUDGET:-20} --no-progress 2> "$RUNS/coref-litbank.time"
spanbert evaluate coref --model "$RUNS/coref-litbank" --data "$RUNS/litbank/test" --output "$RUNS/coref-litbank/test"
spanbert evaluate coref --model "$RUNS/coref-litbank" --data "$RUNS/litbank/test" --output "$RUNS/coref-litbank/test-no-singletons" --no-singletons
# GAP (pronoun resolution in Wikipedia text) through the same model
spanbert evaluate gap --model "$RUNS/coref-litbank" --data "${SPANBERT_SHARED_DATA:-../shared/data}/gap/gap-test.tsv" \
  --output "$RUNS/coref-litbank/gap-test" --no-progress
