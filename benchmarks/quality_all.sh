#!/usr/bin/env bash
# Every quality number of the README, in one resumable command (issue 14): the BASE encoder
# (benchmarks/minilm_span.sh), then each task's benchmarks/*_quality.sh into RUNS/<task>. Each
# script skips the seeds it finished and continues an interrupted fine-tuning (--resume), so a
# killed run is started again with the same command; a step that fails is reported and the
# next one runs.
#
#   SPANBERT_SHARED_DATA=../shared/data OMP_NUM_THREADS=1 bash benchmarks/quality_all.sh runs/quality
#   STEPS="ner relations" bash benchmarks/quality_all.sh runs/quality     # only some of them
#
# About 20 CPU-hours on a 2-core Intel Xeon (one thread per job); see each script's header.
set -uo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
R=${1:-runs/quality}
export BASE=${BASE:-$R/minilm-span}
failed=()
for step in ${STEPS:-minilm ner relations classify summarize qa coref chinese}; do
  echo "=== $(date -u +%FT%TZ) $step"
  case $step in
    minilm) bash "$BENCH/minilm_span.sh" "$BASE" ;;
    ner) bash "$BENCH/ner_quality.sh" "$R/ner" ;;
    relations) bash "$BENCH/relations_quality.sh" "$R/relations" ;;
    classify) bash "$BENCH/classify_quality.sh" "$R/sst2" ;;
    summarize) bash "$BENCH/summarize_quality.sh" "$R/scitldr" ;;
    qa) bash "$BENCH/qa_quality.sh" "$R/qa" ;;
    coref) bash "$BENCH/coref_quality.sh" "$R/coref" ;;
    chinese) bash "$BENCH/chinese_quality.sh" "$R" ;;
    *) echo "error: unknown step '$step' (minilm ner relations classify summarize qa coref chinese)" >&2; exit 2 ;;
  esac || { echo "=== $step failed (exit $?)"; failed+=("$step"); }
done
echo "=== $(date -u +%FT%TZ) done${failed[*]:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
