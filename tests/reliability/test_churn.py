"""Churn: many short sessions one after another (10 at a time). Afterwards the process is back at
its baseline: no engine stream, session, connection, segment, KV cache or tensor left alive, no task,
thread or file descriptor left behind. RSS growth over the second half, per 1,000 sessions, is
printed as a figure (glibc's arenas make it noisy under load: the object counts are the test; the long
variant runs 10,000)."""
from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from asrstream.streaming.engine import Engine

from ..servers import pcm16, running, stream, url
from ..speech import SENTENCES, silence, tts


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


TRACKED = ("Stream", "Session", "Connection", "Segment", "SegmentEncoder", "KVCache", "Outbox", "Tensor")


def resources() -> dict:
    """Live objects by class, fds, tasks, threads, and RSS after glibc's malloc_trim."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    alive = {name: 0 for name in TRACKED}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in alive and (name == "Tensor" or type(obj).__module__.startswith("asrstream")):
            alive[name] += 1
    return {"fds": len(os.listdir("/proc/self/fd")), "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(), **alive, "rss_mb": rss_mb()}


async def churn(server, clips: list[bytes], n: int, parallel: int = 10) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(i: int) -> None:
        async with gate:
            msgs, code = await stream(url(server), clips[i % len(clips)], frame=3200)
            assert code == 1000 and msgs[-1]["type"] == "done", (code, msgs[-1:])

    await asyncio.gather(*[one(i) for i in range(n)])


async def settled(server, engine, baseline: dict, patience: float = 5.0) -> dict:
    """resources() once the last handlers have finished their close and the engine's worker is
    between iterations (an iteration's locals still hold the streams it has just ended). Measured
    again until no count is above `baseline` or `patience` seconds have passed: a leak stays."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        if server.connections or engine.busy_for:
            await asyncio.sleep(0.01)
            continue
        now = resources()
        if loop.time() > deadline or all(now[k] <= baseline[k] for k in ("fds", "tasks", "threads", *TRACKED)):
            return now
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("n", [500, pytest.param(10000, marks=pytest.mark.slow)])
async def test_churn_returns_to_baseline(tiny_model, n):
    engine = Engine(tiny_model)
    clips = [pcm16(silence(0.3)), pcm16(np.concatenate([tts(SENTENCES[0])[:16000], silence(0.7)]))]
    try:
        async with running(engine) as server:
            await churn(server, clips, 50)  # warm-up: caches, pools, lazy imports
            before = resources()
            await churn(server, clips, n // 2)  # the allocator still settles in the first half
            mid = resources()
            await churn(server, clips, n // 2)
            after = await settled(server, engine, before)
            left = (engine.sessions, len(engine._streams), len(server.connections))
    finally:
        engine.shutdown()
    slope = (after["rss_mb"] - mid["rss_mb"]) * 1000 / (n // 2)
    print(f"churn {n}: before {before} middle {mid} after {after}; RSS {slope:+.1f} MB per 1,000 sessions "
          "(second half)")
    assert left == (0, 0, 0)
    for name in ("fds", "tasks", "threads", *TRACKED):
        assert after[name] <= before[name], (name, before, after)
