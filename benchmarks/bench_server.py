"""Server figures over real sockets: sessions sustained in real time, endpoint->final latency,
event-loop lag under load, RSS per extra session.

Starts `asrstream serve` (a random checkpoint with the released 0.6B dimensions by default) as its own
process, then streams real speech from ../shared/audio in real time (100 ms frames) over N concurrent
WebSocket sessions, each starting at a different offset of the recording. Measured at the client:
- partial lag: arrival of a partial minus the moment the audio at its `audio_end` was sent;
- endpoint->final: arrival of an endpoint final minus the moment the audio that decided it was sent
  (the end of its trailing silence: `end` + silence_ms - 150 ms hangover, exact for endpoint finals).
Measured at the server: event-loop lag during the run (its /metrics histogram, 100 ms timer; p99 is a
bucket's upper bound: 1, 2.5, 5, 10, 25, 50, 100 ms) and RSS
(/proc/PID/status) idle vs with N sessions streaming.
Random weights never say EOS: hypotheses are capped at 8 + 4 tokens per second of segment audio
(`--max-tokens-per-second 4`, about English speech), as in bench_streaming.py.

    python benchmarks/bench_server.py --sessions 1 2 4 --seconds 40 --quantize int8 --threads 2
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio" / "119s_theres_supposed_to_be_another_broadcast.wav"
SILENCE_MS, HANGOVER_MS = 600, 150
FRAME = 1600  # 100 ms at 16 kHz


def pct(xs, q):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3) if xs else None


def start_server(args) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "asrstream", "serve", "--port", "0", "--model", args.model, "--device", args.device, "--threads",
           str(args.threads), "--max-tokens-per-second", "4", "--no-word-timestamps", "--max-sessions", "64",
           "--silence-ms", str(SILENCE_MS), "--idle-timeout", "600"]
    cmd += ["--aligner", args.aligner] if args.aligner else ["--no-aligner"]
    cmd += ["--quantize", args.quantize] if args.quantize else ["--dtype", args.dtype]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    for line in proc.stderr:  # the port is in the first log line
        if m := re.search(r"listening on ws://127.0.0.1:(\d+)", line):
            threading.Thread(target=lambda: [sys.stderr.write(x) for x in proc.stderr], daemon=True).start()
            return proc, int(m.group(1))
    raise RuntimeError("the server did not start")


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def gpu_mb(pid: int) -> float | None:
    """GPU memory the process holds (nvidia-smi), None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return next((float(m) for p, m in rows if int(p) == pid), None)


def loop_lag_buckets(port: int) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the server's event-loop lag histogram."""
    from prometheus_client.parser import text_string_to_metric_families

    body = get(port, "/metrics")[1].decode()
    return [(float(s.labels["le"]), s.value) for f in text_string_to_metric_families(body)
            for s in f.samples if s.name == "asrstream_event_loop_lag_seconds_bucket"]


def p99_between(before: list, after: list) -> float | None:
    """p99 (a bucket's upper bound) of the lag samples taken between two snapshots."""
    counts = [(le, n - m) for (le, n), (_, m) in zip(after, before)]
    total = counts[-1][1]
    return next((le for le, n in counts if n >= 0.99 * total), None) if total else None


async def session(port: int, pcm: bytes, seconds: float, out: dict) -> None:
    from websockets.asyncio.client import connect

    sent: list[tuple[int, float]] = []  # (samples sent, wall time)

    def sent_at(t: float) -> float:
        i = bisect.bisect_left(sent, (round(t * 16000), 0.0))
        return sent[min(i, len(sent) - 1)][1]

    async with connect(f"ws://127.0.0.1:{port}/v1/asr", max_size=None) as ws:
        async def reader():
            async for text in ws:
                msg, now = json.loads(text), time.perf_counter()
                if msg["type"] == "transcript.partial":
                    out["partial_lag"].append(now - sent_at(msg["audio_end"]))
                elif msg["type"] == "transcript.final" and msg["reason"] == "endpoint":
                    out["final"].append(now - sent_at(msg["end"] + (SILENCE_MS - HANGOVER_MS) / 1000))
        task = asyncio.create_task(reader())
        t0 = time.perf_counter()
        n = int(seconds * 10)
        for k in range(n):
            await ws.send(pcm[2 * FRAME * k : 2 * FRAME * (k + 1)])
            sent.append(((k + 1) * FRAME, time.perf_counter()))
            await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.1 - time.perf_counter()))
        await ws.send(json.dumps({"type": "close_stream"}))
        try:  # finals still due; a server far behind would take long: leave after `tail` seconds
            await asyncio.wait_for(task, out["tail"])
        except TimeoutError:
            out["left_early"] += 1


async def run_load(port: int, pid: int, n: int, seconds: float, wav: np.ndarray, tail: float) -> dict:
    out = {"partial_lag": [], "final": [], "tail": tail, "left_early": 0}
    pcms = []
    for i in range(n):
        x = np.roll(wav, -int(i * len(wav) / max(n, 1)))
        x = np.tile(x, int(seconds // (len(x) / 16000)) + 1)[: int(seconds * 16000)]
        pcms.append((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    rss0, gpu0 = rss_mb(pid), gpu_mb(pid)
    tasks = [asyncio.create_task(session(port, p, seconds, out)) for p in pcms]
    await asyncio.sleep(seconds * 0.75)
    rss_n, gpu_n = rss_mb(pid), gpu_mb(pid)
    await asyncio.gather(*tasks)
    return {"sessions": n, "partials": len(out["partial_lag"]), "partial_lag_p50": pct(out["partial_lag"], 0.5),
            "partial_lag_p95": pct(out["partial_lag"], 0.95), "endpoint_finals": len(out["final"]),
            "endpoint_final_p50": pct(out["final"], 0.5), "endpoint_final_p95": pct(out["final"], 0.95),
            "rss_idle_mb": round(rss0), "rss_loaded_mb": round(rss_n),
            "rss_per_session_mb": round((rss_n - rss0) / n, 1), "sessions_left_before_finals": out["left_early"],
            "gpu_mb_idle": gpu0, "gpu_mb_loaded": gpu_n}


async def main_async(args) -> None:
    from asrstream.encoder.audio import load_audio

    wav = load_audio(args.audio)
    proc, port = start_server(args)
    try:
        while get(port, "/health")[0] != 200:
            await asyncio.sleep(0.5)
        for n in args.sessions:
            load, lag0 = os.getloadavg()[0], loop_lag_buckets(port)
            res = await run_load(port, proc.pid, n, args.seconds, wav, args.tail)
            lag = p99_between(lag0, loop_lag_buckets(port))
            res.update(loop_lag_p99_s=lag, load_before=round(load, 2), threads=args.threads,
                       real_time=res["partial_lag_p95"] is not None and res["partial_lag_p95"] <= 1.0)
            print(json.dumps(res), flush=True)
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="/tmp/asrstream-bench/asr-0.6b")
    p.add_argument("--aligner", default=None, help="aligner checkpoint (default: none, word timestamps off)")
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--tail", type=float, default=15.0, help="seconds to wait for the last finals")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--audio", default=str(AUDIO), help="speech to stream (looped)")
    p.add_argument("--quantize", default="int8", help="int8 or '' for none")
    args = p.parse_args()
    if not Path(args.model).exists():
        subprocess.run([sys.executable, "-m", "asrstream", "make-test-model", args.model, "--size", "0.6b",
                        "--dtype", "bfloat16"], check=True)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
