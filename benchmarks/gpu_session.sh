#!/usr/bin/env bash
# The checks of a session lent a GPU, as one script (see README "GPU"): versions, the GPU tests
# with the loops' own tests (they pick the visible GPU), and bf16 pre-training throughput and
# MFU of the base preset against transformers' BertForMaskedLM, eager and with torch.compile (that
# run also prints the top GPU kernels of our step). Logs go to $OUT (default /tmp/gpu-out).
#   bash benchmarks/gpu_session.sh
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, transformers, tokenizers, accelerate, datasets; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| tokenizers', tokenizers.__version__, '| accelerate', accelerate.__version__, '| datasets', datasets.__version__)"
} 2>&1 | tee "$OUT/env.txt"
for b in 32 64; do
  timeout 150 $PY benchmarks/bench_gpu_pretrain.py --preset base --batch $b --length 512 --steps 20 2>&1 | tail -4 | tee -a "$OUT/bench.txt"
done
timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_train.py tests/test_finetune.py \
  tests/test_modeling.py tests/test_fill.py tests/test_coref_model.py tests/test_coref_cli.py 2>&1 | tail -25 | tee "$OUT/pytest.txt"
timeout 400 $PY benchmarks/bench_gpu_pretrain.py --preset base --batch 32 --length 512 --steps 20 --compile --profile 3 2>&1 | tail -26 | tee -a "$OUT/bench.txt"
