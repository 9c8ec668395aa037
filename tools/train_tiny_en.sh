#!/usr/bin/env bash
# The commands that made the bundled tiny-en checkpoints (models/tiny-en/asr, models/tiny-en/aligner);
# docs/tiny-en.md has the run's figures and how the corpus was made.
#
#   tools/train_tiny_en.sh OUT DEVICE ASR_STEPS ALIGNER_STEPS ASR_MANIFEST... -- ALIGNER_MANIFEST...
#
# Both fresh checkpoints get their BPE from the ASR manifests' transcripts. The two trainings run at
# the same time (on one GPU they share it; on a CPU give each half the cores with --threads).
set -euo pipefail
OUT=$1 DEVICE=$2 ASR_STEPS=$3 ALIGNER_STEPS=$4
shift 4
ASR=() ALIGNER=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do ASR+=("$1"); shift; done
shift
ALIGNER=("$@")
PY=${PYTHON:-python}
COMMON=(--device "$DEVICE" --save-dtype bfloat16 --warmup-steps 300 --min-lr-ratio 0.05 --lr 1e-3
        --eval-every 0 --save-every 500 --log-every 25 --workers "${WORKERS:-8}" --reverb-prob 0.2
        ${EXTRA:-})
$PY tools/tiny_en.py init "$OUT/asr-init" --kind asr "${ASR[@]}"
$PY tools/tiny_en.py init "$OUT/aligner-init" --kind aligner "${ASR[@]}"
$PY -m asrstream train --model "$OUT/asr-init" --train "${ASR[@]}" --out "$OUT/asr" --steps "$ASR_STEPS" \
    --batch-seconds 240 --max-batch 64 "${COMMON[@]}" > "$OUT/asr.out" 2>&1 &
asr=$!
$PY -m asrstream train --model "$OUT/aligner-init" --train "${ALIGNER[@]}" --out "$OUT/aligner" \
    --steps "$ALIGNER_STEPS" --batch-seconds 120 --max-batch 32 "${COMMON[@]}" > "$OUT/aligner.out" 2>&1 &
aligner=$!
wait $asr
wait $aligner
