"""Checkpoint load time vs the time to read the checkpoint's safetensors bytes.

Each load runs in a fresh process (page cache warm for both the read and the loads), after torch's
one-time lazy imports. Figures: weights only (`load_net`: config, meta-device build, tensors assigned)
in the checkpoint's dtype and converted to float32, and the full `load_model` (adds importing
transformers and loading the tokenizer).

    python benchmarks/bench_load.py --model /tmp/asrstream-bench/asr-0.6b
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench_offline import read_time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from asrstream.decoder.loading import load_net, read_config, load_model
from pathlib import Path
t1 = time.perf_counter()
with torch.device("meta"):  # torch's one-time lazy imports of its meta kernels (~2 s), once per process
    torch.nn.Embedding(2, 2), torch.nn.Linear(1, 1), torch.nn.LayerNorm(2), torch.nn.Conv2d(1, 1, 1)
warm = time.perf_counter() - t1
path, what = Path(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
if what == "model":
    m = load_model(path, dtype="float32"); net = m.net
else:
    net = load_net(path, read_config(path), getattr(torch, what), torch.device("cpu"))
t = time.perf_counter() - t0
assert net.thinker.model.layers[-1].mlp.down_proj.weight.sum().isfinite()
print(json.dumps({"seconds": t, "warmup_s": warm}))
"""


def run(path: Path, what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), what], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("/tmp/asrstream-bench/asr-0.6b"))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    cfg = json.loads((args.model / "config.json").read_text())
    own = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
    read_time(args.model)
    read = statistics.median(read_time(args.model) for _ in range(args.repeats))
    size = sum(f.stat().st_size for f in args.model.glob("*.safetensors")) / 1e9
    print(f"{args.model}: {size:.2f} GB of safetensors ({own}); read {read:.2f} s; load average {os.getloadavg()[0]:.2f}")
    for what, label in [(own, f"weights, {own} (checkpoint dtype)"), ("float32", "weights, converted to float32"),
                        ("model", "load_model float32 (+ transformers import, tokenizer)")]:
        runs = [run(args.model, what) for _ in range(args.repeats)]
        t = statistics.median(r["seconds"] for r in runs)
        warm = statistics.median(r["warmup_s"] for r in runs)
        print(f"{label:<55} {t:6.2f} s  = {t / read:5.2f} x read   (torch meta warm-up before it: {warm:.2f} s)")


if __name__ == "__main__":
    main()
