#!/usr/bin/env bash
# README "Chinese": a small SpanBERT pre-trained from scratch on Chinese text with jieba
# whole-word span masking, then CMRC 2018 (trial -> dev), XQuAD-zh and ChnSentiCorp; the same
# fine-tuning from a randomly initialised encoder of the same size is the baseline.
#   bash benchmarks/chinese_quality.sh RUNS_DIR            (2-core CPU: about 2 hours)
# Steps already done (their output folder exists) are skipped, so the script can be re-run;
# ENCODERS=pretrain or ENCODERS=random runs one of the two fine-tuning chains. The README's two
# runs: the defaults (mini, 256 tokens, 1,800 steps at lr 5e-4; it stayed on the unigram
# plateau) and TAG=-tiny PRESET=tiny MAXLEN=128 STEPS=5000 LR=1e-3 (the demo's recipe: a
# small model taking many short steps).
set -euo pipefail
RUNS=${1:?RUNS_DIR}
DATA=${SPANBERT_SHARED_DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
TAG=${TAG:-}; PRESET=${PRESET:-mini}; MAXLEN=${MAXLEN:-256}; STEPS=${STEPS:-1800}; LR=${LR:-5e-4}
PRE=$RUNS/zh-pretrain$TAG; RANDOM_ENC=$RUNS/zh-random$TAG
mkdir -p "$RUNS"
[ -d "$RUNS/zh-data" ] || python benchmarks/chinese_data.py --out "$RUNS/zh-data" --shared "$DATA"

# 1. Pre-training from scratch: an 8,000-piece lowercased WordPiece vocabulary trained on the
# corpus (one token per ideograph), the mini preset (4 layers, hidden 256), jieba words as the
# units of span masking, 1,800 steps of 32 segments of up to 256 tokens.
# A tagged run reuses the vocabulary of the first one, so the two compare like for like.
TOKENIZER=(); [ -n "$TAG" ] && TOKENIZER=(--tokenizer "$RUNS/zh-pretrain/tokenizer")
[ -f "$PRE/model.safetensors" ] || \
  spanbert pretrain --corpus "$RUNS/zh-data/corpus" --output "$PRE" --preset "$PRESET" --vocab-size 8000 \
    "${TOKENIZER[@]}" --lowercase --word-segmenter jieba --max-length "$MAXLEN" --batch-size 32 --max-steps "$STEPS" \
    --lr "$LR" --save-every 500 --no-progress --mixed-precision auto --time-budget 65 --seed 0

# 2. The baseline encoder: the same config and tokenizer, random weights.
[ -d "$RANDOM_ENC" ] || python - "$PRE" "$RANDOM_ENC" <<'PY'
import sys, torch
from spanbert.modeling import SpanBertConfig, SpanBertForPreTraining
from spanbert.tokenizer import load_tokenizer
torch.manual_seed(0)
src, dst = sys.argv[1], sys.argv[2]
SpanBertForPreTraining(SpanBertConfig.from_pretrained(src)).save_pretrained(dst)
load_tokenizer(src).save_pretrained(dst)
PY

# 3. Fine-tuning and evaluation from both encoders. CMRC as the issue asks: train on the trial
# set (1,002 questions, long answers: median 19 characters), evaluate on dev (median 7) and
# XQuAD-zh. Then in-distribution: dev split by document, 424 to train on and 424 to evaluate.
[ -d "$RUNS/zh-cmrc-split" ] || python -m spanbert.qa.data split "$DATA/cmrc2018/cmrc2018_dev.json" 424 0 "$RUNS/zh-cmrc-split"
for enc in ${ENCODERS:-pretrain random}; do
  qa=$RUNS/zh-qa-$enc$TAG
  [ -f "$qa/model.safetensors" ] || \
    spanbert finetune qa --model "$RUNS/zh-$enc$TAG" --train "$DATA/cmrc2018/cmrc2018_trial.json" \
      --dev "$DATA/cmrc2018/cmrc2018_dev.json" --output "$qa" --epochs 4 --batch-size 32 --lr 3e-4 \
      --max-seq-length 256 --window-overlap 96 --max-answer-tokens 64 --no-progress
  [ -d "$qa/xquad-zh" ] || \
    spanbert evaluate qa --model "$qa" --data "$DATA/xquad/xquad.zh.json" --output "$qa/xquad-zh" --no-progress
  spanbert score cmrc --data "$DATA/cmrc2018/cmrc2018_dev.json" --predictions "$qa/dev/predictions.json" \
    --output "$qa/dev/cmrc_metrics.json"
  spanbert score cmrc --data "$DATA/xquad/xquad.zh.json" --predictions "$qa/xquad-zh/predictions.json" \
    --output "$qa/xquad-zh/cmrc_metrics.json"
  qa2=$RUNS/zh-qa-split-$enc$TAG
  [ -f "$qa2/model.safetensors" ] || \
    spanbert finetune qa --model "$RUNS/zh-$enc$TAG" --train "$RUNS/zh-cmrc-split/train.json" \
      --dev "$RUNS/zh-cmrc-split/dev.json" --output "$qa2" --epochs 4 --batch-size 32 --lr 3e-4 \
      --max-seq-length 256 --window-overlap 96 --no-progress
  spanbert score cmrc --data "$RUNS/zh-cmrc-split/dev.json" --predictions "$qa2/dev/predictions.json" \
    --output "$qa2/dev/cmrc_metrics.json"
  cls=$RUNS/zh-senti-$enc$TAG
  [ -f "$cls/model.safetensors" ] || \
    spanbert finetune classify --model "$RUNS/zh-$enc$TAG" --train "$RUNS/zh-data/chnsenticorp/train.jsonl" \
      --dev "$RUNS/zh-data/chnsenticorp/dev.jsonl" --text-field text --output "$cls" --epochs 3 \
      --batch-size 32 --lr 2e-4 --max-seq-length 256 --no-progress
  [ -d "$cls/test" ] || \
    spanbert evaluate classify --model "$cls" --data "$RUNS/zh-data/chnsenticorp/test.jsonl" --text-field text \
      --output "$cls/test" --no-progress
done
