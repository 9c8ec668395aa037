"""Server messages waiting for a slow socket.

Policy: messages leave in order. A partial replaces an unsent partial of the same segment that is
last in line (the newer hypothesis supersedes it), so a reader that falls behind gets fewer partials,
never a stale one. Every other message (speech.started, finals, errors, done) is kept. More than
`limit` messages waiting means the reader has stopped reading: `put` reports it and the connection
closes with `slow_reader`.
"""
from __future__ import annotations

import asyncio
from collections import deque

from .messages import TranscriptPartial


class Outbox:
    def __init__(self, limit: int = 256):
        self.limit = limit
        self.items: deque = deque()
        self.coalesced = 0
        self._ready = asyncio.Event()

    def put(self, msg) -> bool:
        """Queue msg (None marks the end); False when more than `limit` messages are waiting."""
        last = self.items[-1] if self.items else None
        if (isinstance(msg, TranscriptPartial) and isinstance(last, TranscriptPartial)
                and last.segment_id == msg.segment_id):
            self.items[-1] = msg
            self.coalesced += 1
        else:
            self.items.append(msg)
        self._ready.set()
        return len(self.items) <= self.limit

    async def get(self):
        while not self.items:
            self._ready.clear()
            await self._ready.wait()
        return self.items.popleft()
