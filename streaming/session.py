"""The asyncio handle of one streaming session: feed audio, finalize, close, iterate events.

Runs on the caller's event loop and never touches the model: audio and commands go into the
stream's inbox (a lock and a list), events come back through `loop.call_soon_threadsafe`.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np

from ..encoder.audio import check_samples
from .errors import EngineClosed
from .events import Closed, Event
from .options import StreamOptions

if TYPE_CHECKING:
    from .engine import Engine
    from .stream import Stream


class Session:
    """The asyncio handle of one stream: feed audio, finalize, close, iterate events."""

    def __init__(self, engine: Engine, sid: str, loop: asyncio.AbstractEventLoop):
        self.id, self._engine, self._loop = sid, engine, loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._space = asyncio.Event()
        self._stream: Stream | None = None
        self._ended = False
        self._closing = False
        self._drained = False  # `closed` was handed to the reader

    async def feed(self, pcm) -> None:
        """Queue float32 16 kHz mono samples; waits while the session is too far behind (back-pressure)."""
        x = np.asarray(pcm)
        if x.size == 0:
            return
        if x.ndim != 1:
            raise ValueError(f"pcm must be mono, shape (samples,), got {x.shape}")
        x = check_samples(x, "pcm").astype(np.float32, copy=False)
        if self._ended or self._closing:
            raise EngineClosed("the session is closed")
        while self._stream.backlog() > self._engine.max_buffer and not self._stream.closed:
            self._space.clear()
            await self._space.wait()
        self._stream.push(x)
        self._engine.wake()

    def finalize(self) -> None:
        """Close the current segment now (its final follows); the stream stays open."""
        self._command("finalize")

    def close(self) -> None:
        """Finalize, then end: the last event is `closed`. Feeding after this raises EngineClosed."""
        if not self._closing:
            self._closing = True
            self._command("close")

    def update(self, options: StreamOptions) -> None:
        """New options for the segments that open from now on (the endpointing settings apply at
        once). ValueError for a language the model lacks or a changed vad_frame_ms."""
        if options.vad_frame_ms != self._stream.opts.vad_frame_ms:
            raise ValueError("option vad_frame_ms cannot change during a stream")
        language = self._engine.language(options)
        if not self._stream.closed:
            self._stream.update(options, language)
            self._engine.wake()

    def abort(self) -> None:
        """The client is gone: drop the session's audio and passes; the last event is `closed`."""
        self._closing = True
        self._command("abort")

    def _command(self, name: str) -> None:
        if not self._stream.closed:
            self._stream.command(name)
            self._engine.wake()

    async def next_event(self) -> Event:
        return await self._events.get()

    def __aiter__(self):
        return self._iter()

    async def _iter(self):
        while not self._drained:
            ev = await self._events.get()
            self._drained = isinstance(ev, Closed)
            yield ev

    @property
    def work(self) -> dict:
        return dict(self._stream.work)

    # -- worker thread -> loop ----------------------------------------------------------------------
    def _deliver(self, ev: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._put, ev)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            pass

    def _put(self, ev: Event) -> None:
        if isinstance(ev, Closed):
            self._ended = True
            self._engine._sessions.pop(self.id, None)
            self._space.set()
        self._events.put_nowait(ev)

    def _space_check(self) -> None:
        if not self._space.is_set() and self._stream.backlog() <= self._engine.max_buffer:
            try:
                self._loop.call_soon_threadsafe(self._space.set)
            except RuntimeError:
                pass
