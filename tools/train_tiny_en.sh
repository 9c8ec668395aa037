#!/usr/bin/env bash
# The stages that train the tiny-en checkpoints (the small English ASR model and forced aligner of
# tools/tiny_en.py's design) on the synthetic corpus. Stage 1 ran on an H200 in the first run (the
# corpus moved there as Ogg/Opus: tools/pack_corpus.py), the rest on 2 CPU cores; every stage runs
# on either (DEVICE). Progress and figures: issue 7.
#
#   tools/train_tiny_en.sh DATA OUT STAGE [DEVICE]
#
# DATA holds en/ and align/ made by stage 0. Each stage reads the previous stage's output in OUT.
set -euo pipefail
DATA=$1 OUT=$2 STAGE=$3 DEVICE=${4:-cpu}
PY=${PYTHON:-python}
ASR=("$DATA/en/train.jsonl" "$DATA/align/train_timed.jsonl")
COMMON=(--device "$DEVICE" --save-dtype bfloat16 --min-lr-ratio 0.05 --eval-every 0 --save-every 100 --log-every 10
        --reverb-prob 0.2 ${EXTRA:-})
[ "$DEVICE" = cpu ] && COMMON+=(--no-bf16 --threads 2 --workers 2) || COMMON+=(--workers 12)
case $STAGE in
0)  # the corpora: 48 training voices (slt held out) and an aligner set with exact word times
    $PY -m asrstream corpus "$DATA/en" --utterances 7000 --held-out-utterances 200 --workers 2
    $PY -m asrstream corpus "$DATA/align" --voices festival-kal festival-ked --held-out festival-slt \
        --utterances 1500 --held-out-utterances 200 --workers 2 ;;
1)  # a fresh ASR checkpoint (BPE on the training transcripts), trained from scratch with CTC
    $PY tools/tiny_en.py init "$OUT/asr-init" --kind asr "${ASR[@]}"
    $PY -m asrstream train --model "$OUT/asr-init" --train "${ASR[@]}" --out "$OUT/asr1" --steps 340 \
        --batch-seconds 240 --max-batch 64 --lr 1e-3 --warmup-steps 60 --ctc-weight 0.3 "${COMMON[@]}" ;;
2)  # the same, continued on more audio per epoch
    $PY -m asrstream train --model "$OUT/asr1/model" --train "${ASR[@]}" --out "$OUT/asr2" --steps ${ASR_STEPS:-1900} \
        --batch-seconds 120 --max-batch 32 --lr 1e-3 --warmup-steps 50 --ctc-weight 0.3 "${COMMON[@]}" ;;
2r) # stage 2 continued past its schedule: --resume with a longer --steps (the cosine goes on from where
    # the longer schedule stands at that step) and VTLP, for voices with shorter vocal tracts than most
    # training voices (the held-out voice is female; the training voices are mostly male)
    $PY -m asrstream train --model "$OUT/asr1/model" --train "${ASR[@]}" --out "$OUT/asr2" --resume \
        --steps ${ASR_STEPS:-4800} --batch-seconds 120 --max-batch 32 --lr ${ASR_LR:-8e-4} --warmup-steps 50 \
        --ctc-weight 0.3 --vtlp 0.2 "${COMMON[@]}" ;;
3)  # the aligner: warm start from the ASR model, trained on festival's exact word times
    $PY tools/tiny_en.py init "$OUT/aligner-init" --kind aligner "${ASR[@]}" --from "$OUT/asr2/model"
    $PY -m asrstream train --model "$OUT/aligner-init" --train "$DATA/align/train_timed.jsonl" --out "$OUT/aligner" \
        --steps ${ALIGNER_STEPS:-1000} --batch-seconds 60 --max-batch 32 --lr 5e-4 --warmup-steps 50 "${COMMON[@]}" ;;
*)  echo "stage must be 0, 1, 2, 2r or 3" >&2; exit 2 ;;
esac
