#!/usr/bin/env bash
# Chinese quality (README "Chinese"): a small SpanBERT pre-trained from scratch on Chinese text
# with jieba whole-word span masking, then CMRC 2018, XQuAD-zh and ChnSentiCorp, mean ± sd over
# fine-tuning seeds; the same fine-tuning from a randomly initialised encoder of the same size is
# the baseline. Nothing is chosen on test.
#
#   SPANBERT_SHARED_DATA=../shared/data bash benchmarks/chinese_quality.sh runs
#   TAG=-tiny PRESET=tiny MAXLEN=128 STEPS=5000 LR=1e-3 SPANBERT_SHARED_DATA=../shared/data bash benchmarks/chinese_quality.sh runs
#
# Base encoder: not all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384), which the
# English scripts use: this script pre-trains its own encoder (PRESET, default mini: 4 layers,
# hidden 256) on an 8,000-piece lowercased WordPiece vocabulary trained on its corpus.
# Data (benchmarks/chinese_data.py and `python -m spanbert.tasks.qa.data split`, by whole documents):
#   pre-training corpus: the ChnSentiCorp training reviews + the CMRC 2018 trial contexts (6,468
#     documents; nothing that is evaluated is in it)
#   CMRC 2018 (its test set is not public): the official dev set (848 documents, 3,219
#     questions) split with seed 0 into test = 424 documents (1,616 questions), scored once per
#     model, and 424 more, split again into dev = 106 documents (396 questions) and in-domain
#     train = 318 documents (1,207 questions) -> RUNS/zh-cmrc/{test,dev,train}.json.
#     Run 1 trains on the trial set (1,002 questions), run 2 on the in-domain train part; both
#     report on the same test documents (CMRC metric: character-level F1 and EM) and run 1 also
#     on XQuAD-zh (1,190 questions).
#   ChnSentiCorp (no official split): 80/10/10 train/dev/test by a seeded permutation
#     (chinese_data.py, seed 0) of the 7,765 non-empty reviews; dev chooses the best epoch, test
#     (777) is scored once per model.
# Dev selection: ChnSentiCorp keeps the best dev epoch (accuracy). The QA runs keep the LAST
# epoch (CMRC_SELECT=--keep-last) and only record dev at every epoch end (dev_history.jsonl):
# `finetune qa` selects on SQuAD F1, which splits on whitespace and so is all-or-nothing on
# Chinese (about 0.1% here); CMRC_SELECT=--select-best selects on it anyway.
# Per fine-tuning seed of SEEDS (default "1 2 3"; pre-training is one run, seed 0) and encoder of
# ENCODERS (default "pretrain random"): the two CMRC runs and ChnSentiCorp, each test once.
# Fixed, not tuned (none was chosen on test): pre-training 1,800 steps of 32 segments of up to
# MAXLEN=256 tokens at lr 5e-4 (the README's second run: TAG=-tiny PRESET=tiny MAXLEN=128
# STEPS=5000 LR=1e-3, the demo's recipe, re-using the first run's vocabulary); QA at most 4
# epochs, lr 3e-4, batch 32, 256-token windows sharing 96; ChnSentiCorp at most 3 epochs, lr 2e-4,
# batch 32, 256 tokens.
# Output: RUNS/zh-pretrain$TAG, RUNS/zh-random$TAG, RUNS/zh-{qa,qa-split,senti}-<encoder>$TAG/seed<N>/
# (test metrics in cmrc-test/cmrc_metrics.json, xquad-zh/cmrc_metrics.json, test/metrics.json),
# RUNS/zh-summary$TAG/*.{md,json} (mean ± sd) and RUNS/zh-summary$TAG/summary.md.
# Resumable: every step whose output exists is skipped (a seed's test metrics file included).
#
# Run time on 2 CPU cores (OMP_NUM_THREADS=2; estimated from the README's one-thread runs, which
# took ~2 h for one seed including pre-training): pre-training ~65 min (mini; --time-budget 65) or
# ~20 min (tiny); the three fine-tunings of one seed and encoder ~20-25 min (mini; less for tiny):
# about 3.5 h for the mini run with 3 seeds and 2 encoders, about 2 h for the tiny run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/quality_lib.sh"
RUNS=${1:?RUNS_DIR}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}
TAG=${TAG:-}; PRESET=${PRESET:-mini}; MAXLEN=${MAXLEN:-256}; STEPS=${STEPS:-1800}; LR=${LR:-5e-4}
ENCODERS=${ENCODERS:-pretrain random}
CMRC_SELECT=${CMRC_SELECT:---keep-last}
EXTRA=${EXTRA:-}
PRE=$RUNS/zh-pretrain$TAG; RANDOM_ENC=$RUNS/zh-random$TAG; SUM=$RUNS/zh-summary$TAG; C=$RUNS/zh-cmrc

ql_banner "Chinese: pre-training from scratch (PRESET=$PRESET$TAG), then CMRC 2018 / XQuAD-zh / ChnSentiCorp, test once per seed" \
  "none: pre-trained from scratch below (PRESET=$PRESET), not $BASE_ENCODER_NAME as in the English scripts"
ql_need_file "$DATA/cmrc2018/cmrc2018_dev.json" "$DATA/cmrc2018/cmrc2018_trial.json" "$DATA/xquad/xquad.zh.json" \
  "$DATA/chnsenticorp/ChnSentiCorp_htl_all.csv"
ql_need_dev_selection qa
ql_need_dev_selection classify
mkdir -p "$RUNS" "$SUM"
[ -d "$RUNS/zh-data" ] || "$PYTHON" "$BENCH_DIR/chinese_data.py" --out "$RUNS/zh-data" --shared "$DATA"
if [ ! -f "$C/test.json" ]; then
  rm -rf "$C.tmp"
  "$PYTHON" -m spanbert.tasks.qa.data split "$DATA/cmrc2018/cmrc2018_dev.json" 424 0 "$C.tmp/a"
  "$PYTHON" -m spanbert.tasks.qa.data split "$C.tmp/a/train.json" 106 0 "$C.tmp/b"
  mv "$C.tmp/a/dev.json" "$C.tmp/test.json" && mv "$C.tmp/b/dev.json" "$C.tmp/dev.json" && mv "$C.tmp/b/train.json" "$C.tmp/train.json"
  rm -rf "$C.tmp/a" "$C.tmp/b" "$C" && mv "$C.tmp" "$C"
fi

# 1. Pre-training from scratch: an 8,000-piece lowercased WordPiece vocabulary trained on the
# corpus (one token per ideograph), jieba words as the units of span masking, STEPS steps of 32
# segments of up to MAXLEN tokens. A tagged run reuses the vocabulary of the first one, so the
# two compare like for like.
TOKENIZER=(); [ -n "$TAG" ] && TOKENIZER=(--tokenizer "$RUNS/zh-pretrain/tokenizer")
# a killed attempt goes on from its newest checkpoint, or starts over when it made none
RESUME=(); if compgen -G "$PRE/checkpoints/step-*" >/dev/null; then RESUME=(--resume)
elif [ -e "$PRE/training_args.json" ]; then RESUME=(--overwrite); fi
[ -f "$PRE/model.safetensors" ] || \
  spanbert pretrain --corpus "$RUNS/zh-data/corpus" --output "$PRE" "${RESUME[@]}" --preset "$PRESET" --vocab-size 8000 \
    "${TOKENIZER[@]}" --lowercase --word-segmenter jieba --max-length "$MAXLEN" --batch-size 32 --max-steps "$STEPS" \
    --lr "$LR" --save-every 500 --no-progress --mixed-precision auto --time-budget 65 --seed 0

# 2. The baseline encoder: the same config and tokenizer, random weights.
[ -d "$RANDOM_ENC" ] || "$PYTHON" - "$PRE" "$RANDOM_ENC" <<'PY'
import sys, torch
from spanbert.pretrain.modeling import SpanBertForPreTraining, load_pretraining_model, save_pretraining_folder
from spanbert.core.checkpoints import load_tokenizer
src, dst = sys.argv[1], sys.argv[2]
config = load_pretraining_model(src)[0].config  # the pre-trained run's sizes and SBO settings
torch.manual_seed(0)
save_pretraining_folder(SpanBertForPreTraining(config), dst)
load_tokenizer(src).save_pretrained(dst)
PY

cmrc_test() {  # MODEL DATA OUT: answer DATA once and score it with the CMRC metric (skipped when done)
  [ -f "$3/cmrc_metrics.json" ] && return
  spanbert evaluate qa --model "$1" --data "$2" --output "$3" --no-progress > "$3.log"
  spanbert score cmrc --data "$2" --predictions "$3/predictions.json" --output "$3/cmrc_metrics.json" > /dev/null
}

# 3. Fine-tuning and the one test evaluation of each model, from both encoders, per seed.
read -r -a seeds <<< "$SEEDS"
for enc in $ENCODERS; do
  qa_files=() xq_files=() split_files=() senti_files=()
  for seed in "${seeds[@]}"; do
    qa=$RUNS/zh-qa-$enc$TAG/seed$seed qa2=$RUNS/zh-qa-split-$enc$TAG/seed$seed cls=$RUNS/zh-senti-$enc$TAG/seed$seed
    qa_files+=("$qa/cmrc-test/cmrc_metrics.json") xq_files+=("$qa/xquad-zh/cmrc_metrics.json")
    split_files+=("$qa2/cmrc-test/cmrc_metrics.json") senti_files+=("$cls/test/metrics.json")
    # shellcheck disable=SC2086
    if ! ql_test_done "$qa/cmrc-test/cmrc_metrics.json" "$seed"; then
      ql_trained "$qa" || { mkdir -p "$qa"; ql_timed "$qa.time" spanbert finetune qa --resume --model "$RUNS/zh-$enc$TAG" \
        --train "$DATA/cmrc2018/cmrc2018_trial.json" --dev "$C/dev.json" --output "$qa" --seed "$seed" --epochs 4 \
        --batch-size 32 --lr 3e-4 --max-seq-length 256 --window-overlap 96 --max-answer-tokens 64 "$CMRC_SELECT" \
        --no-progress $EXTRA; }
      cmrc_test "$qa" "$DATA/xquad/xquad.zh.json" "$qa/xquad-zh"
      cmrc_test "$qa" "$C/test.json" "$qa/cmrc-test"
    fi
    # shellcheck disable=SC2086
    if ! ql_test_done "$qa2/cmrc-test/cmrc_metrics.json" "$seed"; then
      ql_trained "$qa2" || { mkdir -p "$qa2"; ql_timed "$qa2.time" spanbert finetune qa --resume --model "$RUNS/zh-$enc$TAG" \
        --train "$C/train.json" --dev "$C/dev.json" --output "$qa2" --seed "$seed" --epochs 4 --batch-size 32 \
        --lr 3e-4 --max-seq-length 256 --window-overlap 96 "$CMRC_SELECT" --no-progress $EXTRA; }
      cmrc_test "$qa2" "$C/test.json" "$qa2/cmrc-test"
    fi
    # shellcheck disable=SC2086
    if ! ql_test_done "$cls/test/metrics.json" "$seed"; then
      ql_trained "$cls" || { mkdir -p "$cls"; ql_timed "$cls.time" spanbert finetune classify --resume --model "$RUNS/zh-$enc$TAG" \
        --train "$RUNS/zh-data/chnsenticorp/train.jsonl" --dev "$RUNS/zh-data/chnsenticorp/dev.jsonl" --text-field text \
        --output "$cls" --seed "$seed" --epochs 3 --select-best --batch-size 32 --lr 2e-4 --max-seq-length 256 \
        --no-progress $EXTRA; }
      spanbert evaluate classify --model "$cls" --data "$RUNS/zh-data/chnsenticorp/test.jsonl" --text-field text \
        --output "$cls/test" --no-progress > "$cls/test.log"
    fi
  done
  what="encoder $enc$TAG ($PRESET)"
  ql_summarize "$SUM/cmrc-trial-$enc" "CMRC 2018 test documents (1,616 q.), trained on the trial set, $what" 1 \
    "f1=F1;exact_match=EM" "" "${qa_files[@]}"
  ql_summarize "$SUM/xquad-zh-$enc" "XQuAD-zh (1,190 q.), trained on the CMRC trial set, $what" 1 \
    "f1=F1;exact_match=EM" "" "${xq_files[@]}"
  ql_summarize "$SUM/cmrc-split-$enc" "CMRC 2018 test documents (1,616 q.), trained on 318 other dev documents, $what" 1 \
    "f1=F1;exact_match=EM" "" "${split_files[@]}"
  ql_summarize "$SUM/chnsenticorp-$enc" "ChnSentiCorp test (777), $what" 1 "metrics.accuracy=accuracy;metrics.macro_f1=macro-F1" \
    "majority class on test: accuracy $(ql_num "${senti_files[0]}" metrics.majority_baseline.accuracy), macro-F1 $(ql_num "${senti_files[0]}" metrics.majority_baseline.macro_f1)" \
    "${senti_files[@]}"
done
cat "$SUM"/cmrc-trial-*.md "$SUM"/xquad-zh-*.md "$SUM"/cmrc-split-*.md "$SUM"/chnsenticorp-*.md > "$SUM/summary.md"
