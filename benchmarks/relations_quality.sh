#!/usr/bin/env bash
# The relation-extraction quality runs reported in the README: SemEval-2010 Task 8, train on
# TRAIN_FILE.TXT (8000), test on TEST_FILE_FULL.TXT (2717), official macro-F1 (9+1-way, directed).
#   bash benchmarks/relations_quality.sh [RUNS_DIR]
# BASE (default runs/minilm-span, the README continued pre-training run): MiniLM continued with our span pre-training.
# VARIANTS (default "markers cls"): marker-start pooling (ours) and the [CLS]-only head.
# EXTRA: more `finetune relations` options, e.g. EXTRA="--max-steps 2" for a smoke run.
# Cost (estimate from 20-step timings of the real MiniLM at batch 32, bf16 autocast,
# OMP_NUM_THREADS=1): about 85 sentences/s, so one epoch ~95 s and each 6-epoch variant
# ~10 min at one thread (less with two); a test evaluation ~12 s. Both variants: ~20 min.
# Reference point: 1 epoch of the markers variant at lr 1e-4 already gave 79.6 official macro-F1.
set -euo pipefail
RUNS=${1:-runs/relations}
BASE=${BASE:-runs/minilm-span}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}/semeval2010_task8
VARIANTS=${VARIANTS:-markers cls}
COMMON="--epochs ${EPOCHS:-6} --batch-size 32 --lr 1e-4 --warmup-ratio 0.1 --max-seq-length 128 --seed 42 --no-progress"
mkdir -p "$RUNS"
for pooling in $VARIANTS; do
  out="$RUNS/re-$pooling"
  /usr/bin/time -v spanbert finetune relations --model "$BASE" --train "$DATA/TRAIN_FILE.TXT" --output "$out" \
    --pooling "$pooling" $COMMON ${EXTRA:-} 2> "$out.time"
  spanbert evaluate relations --model "$out" --data "$DATA/TEST_FILE_FULL.TXT" --output "$out/test" --no-progress
  # the same numbers from the written answer files, as the official scorer computes them
  spanbert score semeval --key "$out/test/answer_key.txt" --predictions "$out/test/predictions.txt" \
    --output "$out/test/score_semeval.json" > /dev/null
done
# Majority-class baseline: every test sentence gets the most frequent training label (Other).
mkdir -p "$RUNS/majority"
python - "$DATA/TRAIN_FILE.TXT" "$DATA/TEST_FILE_FULL.TXT" "$RUNS/majority" <<'EOF'
import collections, sys
from pathlib import Path
from spanbert.relations.data import read_semeval
from spanbert.relations.scoring import format_answer_lines
train, test, out = read_semeval(sys.argv[1]), read_semeval(sys.argv[2]), Path(sys.argv[3])
label = collections.Counter(e.label for e in train).most_common(1)[0][0]
(out / "answer_key.txt").write_text(format_answer_lines([e.id for e in test], [e.label for e in test]))
(out / "predictions.txt").write_text(format_answer_lines([e.id for e in test], [label] * len(test)))
print(f"majority class: {label}")
EOF
spanbert score semeval --key "$RUNS/majority/answer_key.txt" --predictions "$RUNS/majority/predictions.txt" \
  --output "$RUNS/majority/metrics.json" > /dev/null
python - "$RUNS" $VARIANTS <<'EOF'
import json, sys
from pathlib import Path
runs = Path(sys.argv[1])
rows = [(f"re-{v}", json.loads((runs / f"re-{v}" / "test" / "metrics.json").read_text())["metrics"]) for v in sys.argv[2:]]
rows.append(("majority", json.loads((runs / "majority" / "metrics.json").read_text())))
print(f"{'run':14} {'official macro-F1':>18} {'micro-F1':>9} {'accuracy':>9}")
for name, m in rows:
    print(f"{name:14} {m['official_macro_f1']:18.2f} {m['micro_f1']:9.2f} {m['accuracy']:9.2f}")
EOF
