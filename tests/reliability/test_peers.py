"""Peers that go quiet: a half-open connection (the peer vanished without a FIN: no pong ever
comes) is found by the server's keepalive ping and its session freed; the detection time is printed."""
from __future__ import annotations

import asyncio
import base64
import os



from asrstream.protocol.server import CLOSE_TIMEOUT

from ..servers import running


async def test_half_open_peer_is_closed_by_keepalive(engine):
    async with running(engine, ping_interval=0.5, ping_timeout=0.5, idle_timeout=60) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /v1/asr HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        await reader.readuntil(b"\r\n\r\n")
        loop = asyncio.get_running_loop()
        while engine.sessions == 0:
            await asyncio.sleep(0.01)
        t0 = loop.time()  # from here on the peer reads nothing and answers nothing: half-open
        while engine.sessions and loop.time() - t0 < 10:
            await asyncio.sleep(0.01)
        detected = loop.time() - t0
        while server.connections and loop.time() - t0 < 10:
            await asyncio.sleep(0.01)
        writer.close()
    print(f"half-open peer detected and its session freed after {detected:.2f} s (ping every 0.5 s, timeout "
          f"0.5 s, then {CLOSE_TIMEOUT:g} s for a close frame that never comes)")
    assert engine.sessions == 0 and not server.connections and detected < 1.0 + CLOSE_TIMEOUT + 1.0
    assert server.metrics.closed.labels("1011")._value.get() == 1
