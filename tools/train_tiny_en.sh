#!/usr/bin/env bash
# How the tiny-en checkpoints (their design: tools/tiny_en.py; the bundled ones: models/tiny-en, docs/tiny-en.md) are made: the
# synthetic corpus on 2 CPU cores, training on a GPU machine (tools/gpu_tiny_en.sh) and on to the CPU.
# Figures: docs/training.md and issue 7's notes.
#
#   tools/train_tiny_en.sh DATA STAGE        STAGE: fast, chain, kb, gcide, fgcide, pack, wheels (here), then gpu (on the GPU machine)
#   TRAIN="M1 M2 ..." tools/train_tiny_en.sh DATA fresh OUT STEPS   a fresh ASR model trained on 2 CPU cores (resumes)
#   tools/train_tiny_en.sh DATA tiny OUT STEPS            the bundled model's recipe: fast + fg13, frame labels (resumes)
#   tools/train_tiny_en.sh DATA asr FROM OUT STEPS        go on training FROM/last on 2 CPU cores (resumes OUT)
#   tools/train_tiny_en.sh DATA aligner ASR OUT STEPS     an aligner warm-started from the ASR model ASR/model
#
# The held-out sentences are the same 200 in every corpus (seed 0); festival-slt, flite-slt (one speaker)
# and Kokoro's af_heart never speak a training sentence.
set -euo pipefail
DATA=$1 STAGE=$2
PY=${PYTHON:-python}
fast_voices() {  # every voice but Kokoro's and slt's; ONLY=PATTERN: those whose names match it (ONLY=espeak)
    $PY -m asrstream corpus "$DATA" --list-voices | awk '{print $1}' | grep -v -e kokoro -e slt | grep -e "${ONLY:-}"
}
dictionary() {  # OUT SEED UTTERANCES VOICES...: dictionary sentences (--text gcide) drawn with SEED
    local out=$1 seed=$2 count=$3; shift 3
    $PY -m asrstream corpus "$out" --text gcide --chain-seed "$seed" --utterances "$count" \
        --held-out-utterances 200 --voices "$@" --workers 2
}
cpu_asr() {  # OUT STEPS ARGS...: an ASR run on TRAIN on 2 CPU cores (resumes OUT where it has a last/)
    local out=$1 steps=$2; shift 2
    $PY -m asrstream train --device cpu ${BF16:---bf16} --threads 2 --workers 2 --eval-every 0 --save-every 200 \
        --log-every 10 --reverb-prob 0.2 --train $TRAIN --out "$out" --steps "$steps" --batch-seconds 120 \
        --max-batch 32 --min-lr-ratio 0.05 --vtlp 0.2 ${MASKS---freq-masks 2 --time-masks 2} --lead-in ${LEAD_IN:-1} \
        --save-dtype bfloat16 "$@" $([ -d "$out/last" ] && echo --resume)
}
case $STAGE in
fast)  # every voice but Kokoro's and slt's (espeak-ng 42, flite 3, festival 2, piper 1) on all 20,800 training
       # sentences: 20.6 h, 2 minutes on 2 cores
    V=$(fast_voices)
    $PY -m asrstream corpus "$DATA/fast" --utterances 20800 --held-out-utterances 200 --voices $V --workers 2 ;;
chain) # the voices of `fast` on 20,800 new sentences chained from the fortunes' word bigrams (--text chain);
       # CHAIN_SEED=N walks other sentences (than the default chain seed) for a further corpus: DATA/chainN
    C=$DATA/chain${CHAIN_SEED:+$CHAIN_SEED}
    V=$(fast_voices)
    $PY -m asrstream corpus "$C" --text chain ${CHAIN_SEED:+--chain-seed $CHAIN_SEED} --utterances 20800 \
        --held-out-utterances 200 --voices $V --workers 2 ;;
gcide) # the voices of `fast` on UTTERANCES (default 16,000) sentences drawn from the GCIDE dictionary (--text gcide:
       # words the fortunes lack), drawn with CHAIN_SEED (default 11): DATA/gcN; 16,000 took 5 minutes on 2 cores
    N=${CHAIN_SEED:-11}
    V=$(fast_voices)
    dictionary "$DATA/gc$N" "$N" "${UTTERANCES:-16000}" $V ;;
fgcide) # the six voices of `fast` that are not espeak-ng (flite kal16, awb, rms; festival kal, ked; piper joe) on
        # UTTERANCES (default 6,000) dictionary sentences drawn with CHAIN_SEED (default 13): DATA/fgN. espeak-ng speaks
        # 7 in 8 of the hours of fast, chain and gcide, and a model trained mostly on them did as badly on these six
        # voices' held-out sentences as on slt; 6,000 took 4 minutes on 2 cores, 24,000 took 14
    N=${CHAIN_SEED:-13}
    V=$(fast_voices | grep -v espeak)
    dictionary "$DATA/fg$N" "$N" "${UTTERANCES:-6000}" $V ;;
kb)    # Kokoro: its 27 training voices and 300 blends of two or three of them (seed 11) on the first 2,400
       # training sentences; af_heart held out with slt. CHAIN_SEED=N: on N's chained sentences instead (as the
       # chain stage), with blends seeded BLEND_SEED (default N + 10) and UTTERANCES of them: DATA/kbN
    K=$DATA/kb${CHAIN_SEED:+$CHAIN_SEED} BS=${BLEND_SEED:-$((${CHAIN_SEED:-1} + 10))}
    V=$($PY -c "import random; from asrstream.training.voices import VOICES
ks = [v.name.removeprefix('kokoro-') for v in VOICES if v.engine == 'kokoro' and v.name != 'kokoro-af_heart']
rng, out = random.Random($BS), {'kokoro-' + k for k in ks}
while len(out) < len(ks) + 300:
    out.add('kokoro-' + '+'.join(rng.sample(ks, rng.choice([2, 2, 3]))))
print(' '.join(sorted(out)))")
    $PY -m asrstream corpus "$K" ${CHAIN_SEED:+--text chain --chain-seed $CHAIN_SEED} \
        --utterances ${UTTERANCES:-2400} --held-out-utterances 200 --held-out festival-slt flite-slt kokoro-af_heart \
        --voices $V --workers 2 ;;
pack)  # what the GPU machine gets (its working tree travels, 64 MiB at most): the natural voices of `fast`,
       # every 6th espeak-ng utterance of it and all of kb, as Ogg/Opus at 12 kbit/s
    mkdir -p "$DATA/sel"
    $PY -c "import json; rows = [json.loads(l) for l in open('$DATA/fast/train.jsonl')]
esp = [r for r in rows if r['voice'].startswith('espeak')]
sel = sorted([r for r in rows if not r['voice'].startswith('espeak')] + esp[::6], key=lambda r: r['audio'])
open('$DATA/sel/train.jsonl', 'w').write(''.join(json.dumps({**r, 'audio': '../fast/' + r['audio']}) + '\n' for r in sel))"
    $PY tools/pack_corpus.py "$DATA/pack/data/fast" "$DATA/sel/train.jsonl" --opusenc 10
    $PY tools/pack_corpus.py "$DATA/pack/data/kb" "$DATA/kb/train.jsonl" --opusenc 10
    # one stored zip (49 MiB): the 8,032 small files would each cost the transfer a block
    (cd "$DATA/pack" && $PY -c "import os, zipfile
with zipfile.ZipFile('data.zip', 'w', zipfile.ZIP_STORED) as z:
    for root, _, files in os.walk('data'):
        for f in sorted(files):
            z.write(os.path.join(root, f))")
    echo "copy $DATA/pack/data.zip to .carry/data.zip in the checkout that goes to the GPU machine" ;;
wheels) # what the GPU machine's Python 3.12 lacks, into DATA/whl (copy to .whl): transformers 4.57 without its
        # model code (AutoTokenizer needs only auto/ and the tokenizer modules: 12 -> 4.8 MB), and what soundfile,
        # huggingface_hub and the package import
    rm -rf "$DATA/whl" && mkdir -p "$DATA/whl"
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d "$DATA/whl" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_5_x86_64 transformers==4.57.6 tokenizers==0.22.2 huggingface_hub==0.36.2 \
        soundfile==0.14.0 cffi==2.0.0 pycparser soxr==1.1.0 websockets==17.4
    $PY -c "import re, zipfile
src = '$DATA/whl/transformers-4.57.6-py3-none-any.whl'
keep = [n for n in zipfile.ZipFile(src).namelist() if '/auto/' in n or not re.search(
    r'/models/[^/]+/(modeling_|modular_|convert_|image_processing|video_processing)', n)]
with zipfile.ZipFile(src) as a, zipfile.ZipFile(src + '.new', 'w', zipfile.ZIP_DEFLATED) as b:
    for n in keep:
        b.writestr(n, a.read(n))"
    mv "$DATA/whl/transformers-4.57.6-py3-none-any.whl.new" "$DATA/whl/transformers-4.57.6-py3-none-any.whl" ;;
fresh) # a tiny-en ASR model from scratch on 2 CPU cores: OUT/init is tools/tiny_en.py's design with its BPE
       # trained on the transcripts of TRAIN's manifests (each once), OUT/asr the run: lr 1e-3 (100 warm-up steps), CTC
       # weight 0.3, then as the asr stage; the same command again resumes OUT/asr
    OUT=$3 STEPS=$4 TRAIN=${TRAIN:?the fresh stage needs TRAIN=\"manifest ...\": the training data}
    [ -d "$OUT/init" ] || $PY tools/tiny_en.py init "$OUT/init" --kind asr $(printf '%s\n' $TRAIN | awk '!seen[$0]++')
    cpu_asr "$OUT/asr" "$STEPS" --model "$OUT/init" --lr ${LR:-1e-3} --warmup-steps 100 --ctc-weight ${CTC_WEIGHT:-0.3} ;;
tiny)  # the bundled tiny-en ASR model's recipe (docs/tiny-en.md): OUT/init from fast's transcripts, trained from scratch
       # on fast + fg13 twice (CHAIN_SEED=13 UTTERANCES=24000 ... fgcide) with frame labels from the word times
       # (--frame-weight 0.5), no SpecAugment masks; the same command resumes. The shipped model differed on the
       # way: steps 0-750 saw fast alone on 1 thread with masks (an ablation that became the run), fg13 came once
       # until step 4,800, its cosine horizon grew 6,000 -> 7,000 -> 10,000 -> 9,000 as it was resumed, and at step
       # 5,600 only its exported weights outlived the data folder: they were finished by the asr stage (tiny-en.md)
    OUT=$3 STEPS=$4
    [ -d "$OUT/init" ] || $PY tools/tiny_en.py init "$OUT/init" --kind asr "$DATA/fast/train.jsonl"
    TRAIN="$DATA/fast/train.jsonl $DATA/fg13/train.jsonl $DATA/fg13/train.jsonl" MASKS="" cpu_asr "$OUT/asr" "$STEPS" \
        --model "$OUT/init" --lr 1e-3 --warmup-steps 100 --ctc-weight 0.3 --frame-weight 0.5 ;;
asr)   # continue an ASR run on the CPU: bf16 autocast (173 against 111 audio-s/s in float32 on an AVX512_BF16 CPU;
       # where bf16 is slower, as on AVX2-only CPUs it may be, set BF16=--no-bf16), 120 s batches, a new cosine
       # cycle from lr LR (default 5e-4) over STEPS; run again with the same arguments and it resumes OUT;
       # LEAD_IN= the most silence put before an example, in seconds (default 1: speech starts anywhere in the
       # encoder's 1 s chunks, as in a stream's segments; 0: off, as in every run before the option existed).
       # FROM may instead be an exported model folder (as models/tiny-en/asr): its weights, a fresh CTC head.
       # Further arguments go to `asrstream train` (as --frame-weight 0.5)
    FROM=$3 OUT=$4 STEPS=$5
    TRAIN=${TRAIN:-$DATA/fast/train.jsonl $DATA/kb/train.jsonl $DATA/kb/train.jsonl}
    START=(--model "$FROM")
    [ -d "$FROM/last" ] && START=(--model "$FROM/last" --ctc-head-from "$FROM/last/training_state.pt")
    cpu_asr "$OUT" "$STEPS" "${START[@]}" --lr ${LR:-5e-4} --warmup-steps 50 --ctc-weight ${CTC_WEIGHT:-0.3} "${@:6}" ;;
aligner) # an aligner warm-started from ASR/model, on TIMED= timed manifests (default fast's and kb's) plus 1,500 of
         # their utterances joined 2-3 at a time (OUT/joined); SPEEDS= the speed perturbation factors (default 0.9 1.0
         # 1.1); LR= the peak learning rate (default 5e-4); LEAD_IN= as in asr; further arguments go to
         # `asrstream train` (as --time-sigma-ms 80)
    ASR=$3 OUT=$4 STEPS=$5
    TIMED=${TIMED:-$DATA/fast/train_timed.jsonl $DATA/kb/train_timed.jsonl}
    [ -f "$OUT/joined/joined.jsonl" ] || $PY -m asrstream.training.concat "$OUT/joined" $TIMED --count 1500
    [ -d "$OUT/init" ] || $PY tools/tiny_en.py init "$OUT/init" --kind aligner $TIMED --from "$ASR/model"
    $PY -m asrstream train --device cpu ${BF16:---bf16} --threads 2 --workers 2 --eval-every 0 --save-every 100 \
        --log-every 10 --reverb-prob 0.2 --speeds ${SPEEDS:-0.9 1.0 1.1} --model "$OUT/init" \
        --train $TIMED "$OUT/joined/joined.jsonl" --out "$OUT" --steps "$STEPS" --batch-seconds 120 --max-batch 64 \
        --lr ${LR:-5e-4} --warmup-steps 30 --min-lr-ratio 0.05 --lead-in ${LEAD_IN:-1} --save-dtype bfloat16 \
        $([ -d "$OUT/last" ] && echo --resume) "${@:6}" ;;
gpu)   # on the GPU machine, in a checkout with .carry/data.zip and .whl/: see tools/gpu_tiny_en.sh
    bash tools/gpu_tiny_en.sh ;;
*)  echo "stage must be fast, chain, kb, gcide, fgcide, pack, wheels, gpu, fresh, tiny, asr or aligner" >&2; exit 2 ;;
esac
