"""Driving a real protocol-v1 server in tests: start one on port 0, stream audio with a real client."""
from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asrstream.protocol.server import Server, ServerSettings
from asrstream.streaming.options import StreamOptions

NEW = 40  # random weights rarely say EOS: keep hypotheses short


def options(**kw) -> StreamOptions:
    return StreamOptions(**{"max_new_tokens": NEW, "max_tokens_per_second": None, **kw})


@contextlib.asynccontextmanager
async def running(engine, **settings):
    """A started Server on 127.0.0.1:<free port> in front of `engine` (None: still loading)."""
    settings = {"port": 0, "options": options(), "model_name": "tiny", **settings}
    server = Server(ServerSettings(**settings), engine)
    await server.start()
    try:
        yield server
    finally:
        if server.engine is not None:
            server.engine.on_pass = server.engine.on_batch = None
        server._server.close()
        await server._server.wait_closed()
        server._probe.cancel()


def url(server, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/v1/asr" + (f"?{query}" if query else "")


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()


async def stream(uri: str, audio_bytes: bytes, frame: int = 3200, before=(), after=({"type": "close_stream"},),
                 headers=None, realtime_bytes_per_s: float | None = None) -> tuple[list[dict], int | None]:
    """Connect, send `before` messages, the audio in frames, then `after`; collect every message
    until the server closes. Returns (messages, close code)."""
    msgs: list[dict] = []
    async with connect(uri, additional_headers=headers, compression=None, max_size=None) as ws:
        reader = asyncio.create_task(_collect(ws, msgs))
        for m in before:
            await ws.send(json.dumps(m) if isinstance(m, dict) else m)
        for i in range(0, len(audio_bytes), frame):
            await ws.send(audio_bytes[i : i + frame])
            if realtime_bytes_per_s:
                await asyncio.sleep(frame / realtime_bytes_per_s)
        for m in after:
            await ws.send(json.dumps(m) if isinstance(m, dict) else m)
        await reader
        return msgs, ws.close_code


async def received(ws) -> list[dict]:
    """Every message until the server closes (whatever the close code)."""
    msgs: list[dict] = []
    await _collect(ws, msgs)
    return msgs


async def _collect(ws, msgs: list[dict]) -> None:
    try:
        async for text in ws:
            msgs.append(json.loads(text))
    except ConnectionClosed:
        pass


def of(msgs: list[dict], kind: str) -> list[dict]:
    return [m for m in msgs if m["type"] == kind]


def final_view(msgs: list[dict]) -> list[tuple]:
    """What must not depend on how or beside whom the audio was streamed."""
    return [(m["segment_id"], m["text"], m["start"], m["end"], m["reason"], json.dumps(m["words"]))
            for m in of(msgs, "transcript.final")]


def http_get(server, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A blocking GET (run it in a thread from async tests)."""
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def self_signed_cert(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (openssl CLI) and a client context that trusts it."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    cert.write_text(cert.read_text() + key.read_text())  # one PEM holding both, as --certfile accepts
    return cert, ssl.create_default_context(cafile=str(cert))
