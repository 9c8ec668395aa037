"""`asrstream serve` as users run it: a real process, real signals, its log lines."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect

from asrstream import load_aligner, load_model
from asrstream.streaming.engine import Engine
from asrstream.streaming.options import StreamOptions

from .servers import ServeProcess, final_view, http_get, of, pcm16, received, running, stream, url
from .speech import SENTENCES, silence, tts


async def _live_session(port: int, audio: bytes, heard: asyncio.Event) -> tuple[list[dict], int]:
    """Stream audio, never close: collect everything the server sends until it closes."""
    async with connect(f"ws://127.0.0.1:{port}/v1/asr") as ws:
        await ws.send(audio)
        msgs = []
        async for text in ws:
            msgs.append(json.loads(text))
            if msgs[-1]["type"] == "speech.started":
                heard.set()
            if msgs[-1]["type"] == "done":
                break
        msgs += await received(ws)
        return msgs, ws.close_code


async def test_sigterm_drains_four_live_sessions(tiny_asr_dir, tiny_aligner_dir):
    clips = [pcm16(np.concatenate([silence(0.2), tts(s)])) for s in SENTENCES]
    server = ServeProcess("--model", str(tiny_asr_dir), "--aligner", str(tiny_aligner_dir), "--max-new-tokens", "40",
                          "--drain-seconds", "20")
    try:
        port = server.port
        server.wait_for(r"ready: model")
        assert (await asyncio.to_thread(http_get, server, "/health"))[0] == 200
        heard = [asyncio.Event() for _ in clips]
        sessions = [asyncio.create_task(_live_session(port, c, h)) for c, h in zip(clips, heard)]
        await asyncio.wait_for(asyncio.gather(*[h.wait() for h in heard]), 60)
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        results = await asyncio.wait_for(asyncio.gather(*sessions), 60)
        delivered_seconds = time.monotonic() - t0
        assert await asyncio.to_thread(server.proc.wait, 30) == 0
        exit_seconds = time.monotonic() - t0
        print(f"SIGTERM with 4 live sessions: last final delivered and closed after {delivered_seconds:.2f} s, "
              f"process exited after {exit_seconds:.2f} s")
    finally:
        server.proc.kill()
    engine = Engine(load_model(str(tiny_asr_dir)), load_aligner(str(tiny_aligner_dir)))
    try:
        async with running(engine, options=StreamOptions(max_new_tokens=40)) as ref:
            alone = [final_view((await stream(url(ref), c))[0]) for c in clips]
    finally:
        engine.shutdown()
    for (msgs, code), want in zip(results, alone):
        assert code == 1001 and msgs[-1]["type"] == "done" and of(msgs, "error")[0]["code"] == "shutting_down"
        assert final_view(msgs) == want and want  # every final of the audio sent, as if closed normally
    assert exit_seconds < 20
    log = server.log
    assert len(re.findall(r"session s\d+ open peer=127\.0\.0\.1:\d+", log)) == 4
    assert len(re.findall(r"session s\d+ closed peer=\S+ duration=\S+ audio=\S+ segments=\d+ code=1001", log)) == 4
    texts = [f["text"] for msgs, _ in results for f in of(msgs, "transcript.final")]
    assert "Traceback" not in log and not any(t in log for t in texts)


@pytest.mark.parametrize("args,message", [
    (["--model", "/nonexistent/model"], "/nonexistent/model"),
    (["--model", "x", "--max-sessions", "0"], "--max-sessions"),
    (["--model", "x", "--silence-ms", "5"], "silence_ms"),
])
def test_serve_fails_with_one_line(args, message):
    r = subprocess.run([sys.executable, "-m", "asrstream", "serve", "--port", "0", "--no-aligner", *args],
                       capture_output=True, text=True, timeout=120)
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert r.returncode == 1 and "Traceback" not in r.stderr and message in r.stderr and len(errors) == 1


async def test_kill_9_then_restart_clients_see_1006_then_503_until_ready(tiny_asr_dir):
    """A killed server drops its clients (1006, no close frame); a restarted one listens at once and
    answers 503 with Retry-After while its model loads, then admits sessions."""
    first = ServeProcess("--model", str(tiny_asr_dir), "--no-aligner")
    try:
        port = first.port
        first.wait_for(r"ready: model")
        async with connect(f"ws://127.0.0.1:{port}/v1/asr") as ws:
            await ws.recv()
            await ws.send(pcm16(tts(SENTENCES[0])))
            first.proc.kill()
            await received(ws)
            lost = ws.close_code
    finally:
        first.proc.kill()
        first.proc.wait()
    second = ServeProcess("--model", str(tiny_asr_dir), "--no-aligner", "--port", str(port))
    try:
        second.port
        early = (await asyncio.to_thread(http_get, second, "/health"))[0]
        second.wait_for(r"ready: model")
        late = (await asyncio.to_thread(http_get, second, "/health"))[0]
        msgs, code = await stream(f"ws://127.0.0.1:{port}/v1/asr", pcm16(tts(SENTENCES[1])))
    finally:
        second.proc.kill()
    assert lost == 1006 and early == 503 and late == 200 and code == 1000 and msgs[-1]["type"] == "done"
