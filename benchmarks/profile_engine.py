"""Where the engine's time goes with N sessions fed in real time: the worker's split between encoder
passes, decoder passes and the rest (VAD, features, finishing passes), decoder passes per second and
rows per pass, and a torch.profiler window (top ops by self CPU and by self device time).

    python benchmarks/profile_engine.py --model DIR --device cuda --dtype bfloat16 --sessions 8 --seconds 20
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np
import torch

from asrstream import load_model
from asrstream.encoder.audio import load_audio
from asrstream.streaming.engine import Engine
from asrstream.streaming.options import StreamOptions


class TimedEngine(Engine):
    """The engine, with the worker's wall time split by phase."""

    def __init__(self, *a, activities=(), **kw):
        self.busy = {"encode": 0.0, "decode": 0.0, "iterate": 0.0}
        self.decoder_passes = self.rows = 0
        self.activities, self.profile_until, self.prof, self.profiled = activities, None, None, None
        super().__init__(*a, **kw)

    def _timed(self, name, fn, *args):
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.busy[name] += time.perf_counter() - t

    def _iterate(self):
        """Profiles its own iterations (the profiler records the thread that starts it) in a window."""
        now = time.perf_counter()
        if self.profile_until and self.prof is None and now < self.profile_until:
            self.prof = torch.profiler.profile(activities=list(self.activities))
            self.prof.__enter__()
        self._timed("iterate", super()._iterate)
        if self.prof is not None and time.perf_counter() >= self.profile_until:
            self.prof.__exit__(None, None, None)
            self.profiled, self.prof, self.profile_until = self.prof, None, None

    def _start(self, jobs):
        self._timed("encode", super()._start, jobs)

    def _decode(self):
        self.decoder_passes += 1
        self.rows += len(self._rows)
        self._timed("decode", super()._decode)


async def feed_realtime(engine, wav, seconds, opts):
    s = engine.open_session(opts)
    t0 = time.perf_counter()
    for k in range(int(seconds * 10)):
        await s.feed(wav[k * 1600 : (k + 1) * 1600])
        await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.1 - time.perf_counter()))
    s.close()
    return [e async for e in s]


async def run(engine, wav, args, opts):
    starts = [np.roll(wav, -i * len(wav) // args.sessions) for i in range(args.sessions)]
    tasks = [asyncio.create_task(feed_realtime(engine, x, args.seconds, opts)) for x in starts]
    await asyncio.sleep(args.seconds / 2)
    engine.profile_until = time.perf_counter() + args.profile_seconds
    await asyncio.gather(*tasks)
    return engine.profiled


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--audio", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--profile-seconds", type=float, default=3.0)
    args = p.parse_args()
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    wav = load_audio(args.audio)
    opts = StreamOptions(max_tokens_per_second=4.0, word_timestamps=False)
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if args.device == "cuda" else [])
    engine = TimedEngine(model, activities=acts)
    t0 = time.perf_counter()
    prof = asyncio.run(run(engine, wav, args, opts))
    wall = time.perf_counter() - t0
    engine.shutdown()
    steps = [t for _, kind, _, t in engine.passes if kind == "step"]
    print(json.dumps({"sessions": args.sessions, "wall_s": round(wall, 1), "worker_busy_s": round(engine.busy["iterate"], 1),
                      "encode_s": round(engine.busy["encode"], 1), "decode_s": round(engine.busy["decode"], 1),
                      "decoder_passes": engine.decoder_passes, "ms_per_decoder_pass":
                      round(1000 * engine.busy["decode"] / max(1, engine.decoder_passes), 1),
                      "rows_per_pass": round(engine.rows / max(1, engine.decoder_passes), 1),
                      "steps": len(steps), "step_p50_s": round(float(np.median(steps)), 2) if steps else None}))
    key = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40))
    if args.device == "cuda":
        print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=40))


if __name__ == "__main__":
    main()
