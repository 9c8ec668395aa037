"""Driving engine sessions in tests: feed audio in given pieces, send commands, collect every event."""
from __future__ import annotations

import asyncio

import numpy as np

from asrstream.streaming.errors import EngineClosed
from asrstream.streaming.events import Closed, Final, Partial


async def run_session(engine, audio: np.ndarray, options=None, feed: int | list[int] = 1600,
                      commands: dict[int, str] | None = None, close: bool = True, session=None,
                      lockstep: bool = False) -> list:
    """Feed `audio` in pieces (sizes cycled), send commands when their sample index is reached, close;
    return all events up to `closed`. `lockstep` waits after each piece until the engine has caught
    up (as when audio comes in real time), so every step's partial is produced."""
    s = session or engine.open_session(options)
    sizes = feed if isinstance(feed, list) else [feed]
    todo = sorted((commands or {}).items())
    i = k = 0
    while i < len(audio):
        n = sizes[k % len(sizes)]
        k += 1
        while todo and todo[0][0] <= i:
            getattr(s, todo.pop(0)[1])()
        try:
            await s.feed(audio[i : i + n])
        except EngineClosed:  # the session failed: collect its last events
            break
        i += n
        while lockstep and s._stream.backlog() > 0 and not s._stream.closed:
            await asyncio.sleep(0.002)
    for _, c in todo:
        getattr(s, c)()
    if close:
        s.close()
    return [ev async for ev in s]


def finals(events) -> list[Final]:
    return [e for e in events if isinstance(e, Final)]


def partials(events) -> list[Partial]:
    return [e for e in events if isinstance(e, Partial)]


def closed(events) -> Closed:
    assert isinstance(events[-1], Closed), events[-1]
    return events[-1]
