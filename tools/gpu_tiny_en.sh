#!/usr/bin/env bash
# One call on a GPU machine (no network; python3 with CUDA torch): a fresh tiny-en ASR model (tools/tiny_en.py's
# design) trained from scratch on the packed corpus, then the aligner warm-started from it; results to $OUT.
# Run from a checkout holding the packed corpus (.carry/data.zip: tools/train_tiny_en.sh DATA pack) and the wheels
# of what the machine lacks (.whl: tools/train_tiny_en.sh DATA wheels). Each run gets a time budget: it times
# CAL steps, then goes on (--resume) with as many steps as fit, so the cosine schedule ends in time.
#
#   ASR_LIMIT=375 AL_LIMIT=110 bash tools/gpu_tiny_en.sh      (issue 7: 393 s on an H100)
set -uo pipefail
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
DEV=${DEV:-cuda} W=${W:-14} CAL=${CAL:-40}
ASR_LIMIT=${ASR_LIMIT:-390} AL_LIMIT=${AL_LIMIT:-120} PY=${PY:-python3 -P} OUT=${OUT:-/tmp/out} D=.carry/data
mkdir -p "$OUT" /tmp/run
[ -f .carry/data.zip ] && python3 -c "import zipfile; zipfile.ZipFile('.carry/data.zip').extractall('.carry')"
if [ -z "${LOCAL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  # (transformers 4.57, tokenizers, huggingface_hub, soundfile, cffi, pycparser, soxr, websockets)
fi
# the package's layout (pyproject's package-dir) as links, no build: asrstream.<part> is ./<part>
rm -rf /tmp/pkg && mkdir -p /tmp/pkg/asrstream && cp -r asrstream/* /tmp/pkg/asrstream/
for d in encoder decoder streaming protocol clients training tests; do ln -s "$PWD/$d" /tmp/pkg/asrstream/$d; done
export PYTHONPATH=/tmp/pkg:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
el installed; nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null
$PY -c "import torch, transformers, asrstream.training.trainer as t; print(torch.__version__, transformers.__version__, torch.cuda.is_available(), t.__file__)" || exit 5
COMMON=(--device "$DEV" --eval-every 0 --log-every 10 --workers "$W" --reverb-prob 0.2)
train_for() {  # SECONDS OUT ARGS...: CAL steps to time a step, then --resume with as many steps as fit (cosine to the end)
  local budget=$1 out=$2 t0; shift 2; t0=$(date +%s)
  $PY -m asrstream train "$@" --out "$out" --steps "$CAL" > "$out.a.out" 2>&1 || { tail -c 2000 "$out.a.out"; return 1; }
  local per n left
  per=$(python3 -c "
import re, datetime as d
t = {int(m[2]): d.datetime.strptime(m[1], '%Y-%m-%d %H:%M:%S,%f') for m in re.finditer(r'^(\S+ \S+) step (\d+) loss', open('$out/train.log').read(), re.M)}
print((t[$CAL] - t[20]).total_seconds() / ($CAL - 20))")  # past the first steps' start-up
  left=$(( budget - ($(date +%s) - t0) - 20 ))
  n=$(python3 -c "print(max($CAL + 1, $CAL + int($left / $per * 0.97)))")
  rm -rf "$out/model"  # phase one's export; only a finished run's counts
  el "$out: $per s/step, $n steps in all"
  (( left > 10 )) || { el "$out: no time left for more steps"; return 0; }
  timeout $(( left + 15 )) $PY -m asrstream train "$@" --out "$out" --resume --steps "$n" > "$out.b.out" 2>&1
  el "$out rc $?"; tail -c 400 "$out.b.out" | tr '\r' '\n' | tail -2
}
for c in fast kb; do  # the timed rows (word times: the aligner's) of each manifest
  python3 -c "import sys; sys.stdout.write(''.join(l for l in open('$D/$c/train.jsonl') if '\"words\"' in l))" > $D/$c/train_timed.jsonl
done
wc -l $D/*/train*.jsonl
ASR_TRAIN=($D/fast/train.jsonl $D/kb/train.jsonl $D/kb/train.jsonl)
$PY tools/tiny_en.py init /tmp/run/asr-init --kind asr $D/fast/train.jsonl $D/kb/train.jsonl || exit 6
el init
# the aligner's joined utterances, made on the CPU while the ASR model trains
( $PY -m asrstream.training.concat /tmp/run/cat $D/fast/train_timed.jsonl $D/kb/train_timed.jsonl --count ${CAT:-1500} \
    > /tmp/run/cat.log 2>&1 ) &
train_for "$ASR_LIMIT" /tmp/run/asr "${COMMON[@]}" --model /tmp/run/asr-init --train "${ASR_TRAIN[@]}" \
  --batch-seconds 240 --max-batch 64 --lr 1e-3 --warmup-steps 60 --min-lr-ratio 0.05 --ctc-weight 0.3 --vtlp 0.2 \
  --freq-masks 2 --time-masks 2 --save-every 100 --save-dtype float32
A=/tmp/run/asr/model; [ -f $A/model.safetensors ] || A=/tmp/run/asr/last
$PY -c "import torch; s=torch.load('/tmp/run/asr/last/training_state.pt', weights_only=False); print('asr step', s['step']); torch.save({'ctc_head': s['ctc_head'], 'step': s['step']}, '$OUT/ctc_head.pt')"
wait; tail -2 /tmp/run/cat.log
$PY tools/tiny_en.py init /tmp/run/al-init --kind aligner $D/fast/train.jsonl $D/kb/train.jsonl --from $A || exit 7
train_for "$AL_LIMIT" /tmp/run/al "${COMMON[@]}" --model /tmp/run/al-init --train $D/fast/train_timed.jsonl \
  $D/kb/train_timed.jsonl /tmp/run/cat/joined.jsonl --batch-seconds 120 --max-batch 64 --lr 5e-4 --warmup-steps 30 \
  --min-lr-ratio 0.05 --save-every 50 --save-dtype bfloat16
L=/tmp/run/al/model; [ -f $L/model.safetensors ] || L=/tmp/run/al/last
mkdir -p /tmp/pack/asr /tmp/pack/aligner
cp $A/* /tmp/pack/asr/ 2>/dev/null; rm -f /tmp/pack/asr/training_state.pt
cp $L/* /tmp/pack/aligner/ 2>/dev/null; rm -f /tmp/pack/aligner/training_state.pt
$PY -c "
import torch, safetensors.torch as st
for k in ('aligner',):  # the ASR model stays float32 (training goes on from it)
    p='/tmp/pack/%s/model.safetensors'%k; t=st.load_file(p)
    st.save_file({n: v.to(torch.bfloat16) if v.is_floating_point() else v for n, v in t.items()}, p, metadata={'format':'pt'})
"
(cd /tmp/pack && tar cf - asr | split -b 15m - "$OUT/asr.tar." && tar cf - aligner | split -b 15m - "$OUT/aligner.tar.")
tar czf "$OUT/logs.tgz" -C /tmp/run asr.a.out asr.b.out al.a.out al.b.out cat.log asr/train.log al/train.log
ls -la "$OUT"; el done
