"""Clients that go away mid-session: a clean close without close_stream, a TCP reset, a killed
client process, a close while the server is sending. Each time the session's resources (engine
session and cache, connection, tasks, threads) are back to their baseline within 1 s, and a
session streaming beside it gets the same finals as alone."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from websockets.asyncio.client import connect


from ..servers import final_view, pcm16, running, stream, url
from ..speech import SENTENCES, silence, tts


async def _busy_session(server):
    """A connected client whose session is decoding speech (it has had a pass)."""
    ws = await connect(url(server), close_timeout=1)
    await ws.recv()
    await ws.send(pcm16(np.tile(tts(SENTENCES[3]), 3)))
    while not server.engine.passes or server.engine.sessions == 0:
        await asyncio.sleep(0.01)
    return ws


async def clean_close(server):
    ws = await _busy_session(server)
    await ws.close()


async def tcp_reset(server):
    ws = await _busy_session(server)
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close -> RST
    ws.transport.abort()


async def killed_client(server):
    code = textwrap.dedent(f"""
        import sys, time
        from websockets.sync.client import connect
        ws = connect({url(server)!r})
        ws.recv()
        ws.send(bytes(640000))
        print("sent", flush=True)
        time.sleep(60)
    """)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=subprocess.PIPE)
    await asyncio.wait_for(proc.stdout.readline(), 60)
    while server.engine.sessions == 0:
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def close_while_sending(server):
    ws = await connect(url(server), close_timeout=1, max_queue=1)
    await ws.recv()
    big = json.dumps({"type": "session.update", "context": "x" * 9000})
    for _ in range(50):  # answers (~9 KB each) are being sent while the client goes away
        await ws.send(big)
    ws.transport.abort()


@pytest.mark.parametrize("leave", [clean_close, tcp_reset, killed_client, close_while_sending],
                         ids=lambda f: f.__name__)
async def test_disconnect_frees_the_session_within_1s(engine, leave):
    neighbour_audio = pcm16(np.concatenate([silence(0.2), tts(SENTENCES[0]), silence(0.8)]))
    async with running(engine) as server:
        alone = final_view((await stream(url(server), neighbour_audio))[0])
        tasks0, threads0 = len(asyncio.all_tasks()), threading.active_count()
        neighbour = asyncio.create_task(stream(url(server), neighbour_audio, realtime_bytes_per_s=64000))
        await leave(server)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while len(server.connections) > 1 or engine.sessions > 1:
            await asyncio.sleep(0.005)
            if loop.time() - t0 > 5:
                break
        freed = loop.time() - t0
        msgs, code = await neighbour
        print(f"{leave.__name__}: session freed after {freed:.3f} s")
        assert freed < 1.0, f"freed after {freed:.2f} s"
        t1 = loop.time()
        while server.connections and loop.time() - t1 < 2:  # the neighbour's handler finishes its close
            await asyncio.sleep(0.01)
        assert engine.sessions == 0 and not server.connections
        assert len(asyncio.all_tasks()) <= tasks0 and threading.active_count() <= threads0
    assert code == 1000 and final_view(msgs) == alone and alone
