"""Offline transcription speed: asrstream vs the reference `qwen-asr` transformers backend.

Same checkpoint (a random `--size 0.6b` one by default), same audio, a fixed number of decoded
tokens (EOS suppressed, loop guard off), each measurement in a fresh process so peak RSS is its own.
Runs are interleaved (ours, reference, ours, ...) so both see the same machine load; medians are
reported with the thread count and the load average.

    python benchmarks/bench_offline.py --threads 1 2 --dtypes float32 bfloat16 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
sys.path.insert(0, cfg["repo"])
from tests.reference import speechlike
wav = speechlike(cfg["seconds"], seed=1)
quant = "int8" if cfg["dtype"] == "int8" else None
dtype = torch.float32 if quant else getattr(torch, cfg["dtype"])
if cfg["impl"] == "ours":
    from asrstream import load_model
    from asrstream.decoder.generate import DecodingOptions
    import asrstream.decoder.asr
    from transformers import AutoTokenizer  # imports outside the timed load, as for the reference
    t0 = time.perf_counter()
    m = load_model(cfg["model"], dtype=str(dtype).split(".")[1], quantize=quant)
    load = time.perf_counter() - t0
    opts = DecodingOptions(max_new_tokens=cfg["tokens"], min_new_tokens=cfg["tokens"], repeat_limit=0)
    t0 = time.perf_counter(); r = m.transcribe(wav, options=opts); run = time.perf_counter() - t0
    n = len(r.token_ids)
else:
    from qwen_asr import Qwen3ASRModel
    t0 = time.perf_counter()
    m = Qwen3ASRModel.from_pretrained(cfg["model"], dtype=dtype, device_map="cpu", max_new_tokens=cfg["tokens"])
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    prompt = m._build_text_prompt(context="", force_language=None)
    inputs = m.processor(text=[prompt], audio=[wav], return_tensors="pt", padding=True).to(dtype)
    with torch.inference_mode():
        out = m.model.generate(**inputs, max_new_tokens=cfg["tokens"], min_new_tokens=cfg["tokens"])
    m.processor.batch_decode(out.sequences[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    run = time.perf_counter() - t0
    n = out.sequences.shape[1] - inputs["input_ids"].shape[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": load, "run_s": run, "tokens": int(n), "peak_rss_mb": rss}))
"""


def measure(impl: str, args, threads: int, dtype: str) -> dict:
    cfg = dict(impl=impl, threads=threads, dtype=dtype, model=str(args.model), seconds=args.seconds,
               tokens=args.tokens, repo=str(Path(__file__).resolve().parents[1]))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{impl} {dtype} x{threads} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_time(model: Path) -> float:
    """Seconds to read the checkpoint's safetensors bytes (page cache warm, as for the loads)."""
    t0 = time.perf_counter()
    for f in sorted(model.glob("*.safetensors")):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    return time.perf_counter() - t0


def ensure_model(args) -> None:
    if not (args.model / "config.json").exists():
        from asrstream.testmodel import make_test_model

        print(f"making a random {args.size} checkpoint in {args.model} ...", flush=True)
        make_test_model(args.model, "asr", args.size, seed=0, dtype="bfloat16")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("/tmp/asrstream-bench/asr-0.6b"))
    p.add_argument("--size", default="0.6b")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "int8"],
                   help="float32, bfloat16, float16, or int8 (ours only: float32 + int8 decoder)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write all figures here")
    args = p.parse_args()
    ensure_model(args)
    read_time(args.model)
    reads = [read_time(args.model) for _ in range(3)]
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()}; audio {args.seconds:.0f} s, "
          f"{args.tokens} tokens; checkpoint read {statistics.median(reads):.2f} s", flush=True)
    impls = ["ours"] + ([] if args.no_reference else ["reference"])
    rows = []
    for threads in args.threads:
        for dtype in args.dtypes:
            which = ["ours"] if dtype == "int8" else impls  # the reference has no int8 mode
            runs = {i: [measure(i, args, threads, dtype) for _ in range(args.repeats)] for i in which}
            row = {"threads": threads, "dtype": dtype, "load_avg": os.getloadavg()[0]}
            for i, rs in runs.items():
                row[i] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            if "reference" in row:
                row["speedup"] = row["reference"]["run_s"] / row["ours"]["run_s"]
            row["ours_load_over_read"] = row["ours"]["load_s"] / statistics.median(reads)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nthreads dtype     ours_s  ref_s   speedup  ours_rss_MB ref_rss_MB ours_load_s (x read)")
    for r in rows:
        ref = r.get("reference", {})
        print(f"{r['threads']:>7} {r['dtype']:<9} {r['ours']['run_s']:7.1f} {ref.get('run_s', float('nan')):7.1f} "
              f"{r.get('speedup', float('nan')):7.2f}x {r['ours']['peak_rss_mb']:11.0f} "
              f"{ref.get('peak_rss_mb', float('nan')):10.0f} {r['ours']['load_s']:6.2f} ({r['ours_load_over_read']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
