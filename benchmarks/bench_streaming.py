"""Streaming figures: compute vs the official re-feed algorithm, RTF, step latency over time,
concurrent real-time streams, endpoint->final latency.

Random-weight checkpoint (`--size 0.6b` by default) and real speech from ../shared/audio (looped for
long streams). Random weights almost never emit EOS, so every hypothesis runs to its cap: decode
lengths are fixed by `max_tokens_per_second` (default 4 tokens per second of segment audio, about
English speech) for ours and, step by step, for the reference. Every measurement runs in a fresh
process with OMP/torch threads set; load average and thread count are printed with each figure.

    python benchmarks/bench_streaming.py refeed --seconds 300 --dtype float32 --threads 2
    python benchmarks/bench_streaming.py rtf --seconds 600 --dtype int8 --threads 2
    python benchmarks/bench_streaming.py capacity --seconds 60 --dtype int8 --threads 2
    python benchmarks/bench_streaming.py endpoint --dtype int8 --threads 2
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
RATE = 4.0  # hypothesis tokens per second of segment audio


def speech(seconds: float):
    import numpy as np

    from asrstream.encoder.audio import load_audio

    wav = load_audio(AUDIO / "119s_theres_supposed_to_be_another_broadcast.wav")
    return np.tile(wav, int(seconds // 119) + 1)[: int(seconds * 16000)]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def load(cfg):
    import torch

    from asrstream import load_model

    torch.set_num_threads(cfg["threads"])
    quant = "int8" if cfg["dtype"] == "int8" else None
    return load_model(cfg["model"], dtype="float32" if quant else cfg["dtype"], quantize=quant)


def options(cfg, **kw):
    from asrstream.streaming.options import StreamOptions

    base = dict(chunk_seconds=cfg["chunk"], encoder_mode=cfg["mode"], final_pass=cfg["final_pass"],
                max_tokens_per_second=RATE, word_timestamps=False)
    return StreamOptions(**{**base, **kw})


async def lockstep(engine, wav, opts, piece=1600):
    """Feed as fast as the engine keeps up (every step runs); wall seconds for the whole stream."""
    s = engine.open_session(opts)
    t0 = time.perf_counter()
    for i in range(0, len(wav), piece):
        await s.feed(wav[i : i + piece])
        while s._stream.backlog() > 0:
            await asyncio.sleep(0.001)
    s.close()
    events = [e async for e in s]
    return time.perf_counter() - t0, events, s.work


async def realtime(s, x, piece: int, fed: list) -> None:
    """Feed x in real time; fed gets (stream seconds fed, wall time) after each piece; then close."""
    t0 = time.perf_counter()
    for n, i0 in enumerate(range(0, len(x), piece)):
        await asyncio.sleep(max(0.0, t0 + n * piece / 16000 - time.perf_counter()))
        await s.feed(x[i0 : i0 + piece])
        fed.append(((i0 + piece) / 16000, time.perf_counter()))
    s.close()


# -- modes (each runs in a child process) ------------------------------------------------------------
def run_rtf(cfg):
    """Single stream, lockstep: compute / audio time, and pass latency by audio minute."""
    from asrstream.streaming.engine import Engine

    model = load(cfg)
    wav = speech(cfg["seconds"])
    engine = Engine(model)
    wall, events, work = asyncio.run(lockstep(engine, wav, options(cfg)))
    engine.shutdown()
    return {"rtf": wall / cfg["seconds"], "wall_s": wall, "latency_by_minute": by_minute(engine), "work": work,
            "draft_accept": work["accepted"] / max(1, work["drafted"]), "revisions": engine.revision_stats}


def by_minute(engine) -> dict:
    """Step pass latency p50/p95 per minute of stream time."""
    mins: dict[int, list[float]] = {}
    for _, kind, t, d in engine.passes:
        if kind == "step":
            mins.setdefault(int(t // 60), []).append(d)
    return {m: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "n": len(v)} for m, v in sorted(mins.items())}


def run_ours_compute(cfg):
    """Total compute of one stream, every step run (lockstep), fixed chunk."""
    from asrstream.streaming.engine import Engine

    model = load(cfg)
    engine = Engine(model)
    wall, events, work = asyncio.run(lockstep(engine, speech(cfg["seconds"]), options(cfg)))
    engine.shutdown()
    return {"wall_s": wall, "rtf": wall / cfg["seconds"], "work": work, "latency_by_minute": by_minute(engine)}


def run_reference_steps(cfg):
    """The official streaming algorithm (re-feed all audio each chunk, re-prefill, rollback prefix)
    with the reference package, timed at sampled chunk indices."""
    import torch
    from qwen_asr import Qwen3ASRModel

    torch.set_num_threads(cfg["threads"])
    dtype = getattr(torch, cfg["dtype"]) if cfg["dtype"] != "int8" else torch.float32
    m = Qwen3ASRModel.from_pretrained(cfg["model"], dtype=dtype, device_map="cpu", max_new_tokens=4096)
    wav = speech(cfg["seconds"])
    prompt = m._build_text_prompt(context="", force_language=None)
    out = {}
    for k in cfg["sample_steps"]:
        t = k * cfg["chunk"]
        total = 8 + int(RATE * t + 0.999)  # hypothesis length, as ours caps it
        keep = 0 if k <= 2 else max(1, total - 5)  # the rollback prefix (unfixed 2 chunks, 5 tokens)
        prefix = m.processor.tokenizer.decode(list(range(1000, 1000 + keep)))
        inputs = m.processor(text=[prompt + prefix], audio=[wav[: int(t * 16000)]], return_tensors="pt",
                             padding=True).to(dtype)
        n = max(1, total - keep)
        t0 = time.perf_counter()
        with torch.inference_mode():
            m.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n)
        out[k] = time.perf_counter() - t0
    return out


def run_capacity(cfg):
    """N streams fed in real time; partial lag = arrival - when its audio_end was fed."""
    from asrstream.streaming.engine import Engine
    from asrstream.streaming.events import Partial

    model = load(cfg)
    engine = Engine(model)
    wav = speech(cfg["seconds"] + 60)

    async def one(i):
        s = engine.open_session(options(cfg))
        fed, lags, piece = [], [], 1600
        x = wav[i * 16000 * 7 :][: int(cfg["seconds"] * 16000)]  # different speech per stream

        async def reader():
            async for ev in s:
                if isinstance(ev, Partial):
                    j = bisect.bisect_left([f[0] for f in fed], ev.audio_end - 1e-6)
                    if j < len(fed):
                        lags.append(time.perf_counter() - fed[j][1])
        r = asyncio.create_task(reader())
        await realtime(s, x, piece, fed)
        await r
        return lags

    async def all_():
        return await asyncio.gather(*(one(i) for i in range(cfg["streams"])))
    lags = [x for ls in asyncio.run(all_()) for x in ls]
    engine.shutdown()
    return {"streams": cfg["streams"], "lag_p50": pct(lags, 0.5), "lag_p95": pct(lags, 0.95), "partials": len(lags),
            "busiest_batch": engine.busiest_batch}


def run_endpoint(cfg):
    """Utterances of `utterance` seconds + 1.5 s silence, fed in real time (20 ms pieces);
    endpoint->final = final arrival - when the audio that decided the endpoint (its silence) was fed."""
    import numpy as np

    from asrstream.streaming.engine import Engine
    from asrstream.streaming.events import Final

    model = load(cfg)
    engine = Engine(model)
    wav = speech(200)
    gap = np.zeros(int(1.5 * 16000), dtype=np.float32)
    lats = []

    async def run():
        for r in range(cfg["repeats"]):
            s = engine.open_session(options(cfg))
            start = int((3 + r * 17) * 16000)
            x = np.concatenate([gap, wav[start : start + int(cfg["utterance"] * 16000)], gap, gap])
            fed = []
            got = []

            async def reader():
                async for ev in s:
                    if isinstance(ev, Final):
                        got.append((ev, time.perf_counter()))
            task = asyncio.create_task(reader())
            await realtime(s, x, 320, fed)
            await task
            for ev, at in got:
                if ev.reason == "endpoint":
                    j = bisect.bisect_left([f[0] for f in fed], ev.decided - 1e-6)
                    lats.append(at - fed[min(j, len(fed) - 1)][1])
    asyncio.run(run())
    engine.shutdown()
    return {"utterance_s": cfg["utterance"], "final_pass": cfg["final_pass"], "p50": pct(lats, 0.5),
            "p95": pct(lats, 0.95), "n": len(lats)}


MODES = {"rtf": run_rtf, "ours_compute": run_ours_compute, "reference_steps": run_reference_steps,
         "capacity": run_capacity, "endpoint": run_endpoint}


def child(mode: str, cfg: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg["threads"]), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(cfg)], capture_output=True,
                          text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(mode=mode, threads=cfg["threads"], dtype=cfg["dtype"], load_avg=round(os.getloadavg()[0], 2))
    print(json.dumps(res), flush=True)
    return res


def refeed(args, cfg):
    """Ours (all steps) vs the official algorithm, same audio, chunk and decode lengths."""
    n_steps = int(args.seconds // cfg["chunk"])
    samples = sorted({1, 3} | {max(3, round(n_steps * f)) for f in (0.25, 0.5, 0.75, 1.0)})
    ref = child("reference_steps", {**cfg, "sample_steps": samples})
    ref = {int(k): v for k, v in ref.items() if k.isdigit()}
    ks = sorted(ref)
    total = sum(_interp(ks, [ref[k] for k in ks], k) for k in range(1, n_steps + 1))
    ours = child("ours_compute", cfg)
    print(f"\n{args.seconds:.0f} s stream, chunk {cfg['chunk']} s, {cfg['dtype']} x{cfg['threads']} threads: "
          f"ours {ours['wall_s']:.1f} s ({ours['work']['steps']} steps in {ours['work']['finals']} VAD segments, "
          f"every due step run), official re-feed {total:.1f} s over {n_steps} steps "
          f"(estimated from {len(ks)} timed steps {ks}, linear in between): {total / ours['wall_s']:.1f}x less compute")


def _interp(xs, ys, x):
    i = min(max(bisect.bisect_left(xs, x), 1), len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(REPO))
        print(json.dumps(MODES[sys.argv[2]](json.loads(sys.argv[3]))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["refeed", "rtf", "capacity", "endpoint"])
    p.add_argument("--model", type=Path, default=Path("/tmp/asrstream-bench/asr-0.6b"))
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or int8 (float32 + int8 decoder)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunk", type=float, default=1.0)
    p.add_argument("--mode", default="exact", choices=["exact", "cached"])
    p.add_argument("--final-pass", default="offline", choices=["offline", "continue"])
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--utterance", type=float, nargs="+", default=[3.0, 15.0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if not (args.model / "config.json").exists():
        from asrstream.testmodel import make_test_model

        make_test_model(args.model, "asr", "0.6b", seed=0, dtype="bfloat16")
    cfg = dict(model=str(args.model), seconds=args.seconds, dtype=args.dtype, threads=args.threads,
               chunk=args.chunk, mode=args.mode, final_pass=args.final_pass)
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()}; {args.what} {cfg}", flush=True)
    if args.what == "refeed":
        refeed(args, cfg)
    elif args.what == "rtf":
        child("rtf", cfg)
    elif args.what == "capacity":
        for n in args.streams:
            if child("capacity", {**cfg, "streams": n})["lag_p95"] > 1.0:
                break
    else:
        for fp in ("continue", "offline"):
            for u in args.utterance:
                child("endpoint", {**cfg, "final_pass": fp, "utterance": u, "repeats": args.repeats})


if __name__ == "__main__":
    main()
