"""Model faults injected into one session's work on the engine's worker thread: an exception, a
step that hangs past the deadline, a MemoryError. Only that session suffers; the server stays
responsive, says it is unhealthy while stalled, and recovers."""
from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


from ..servers import final_view, http_get, of, pcm16, received, running, stream, url
from ..speech import SENTENCES, silence, tts


@pytest.fixture(scope="module")
def clip():
    return pcm16(np.concatenate([silence(0.2), tts(SENTENCES[1]), silence(0.8)]))


def inject(engine, sid: str, fault) -> None:
    """Make the next finished pass of session `sid` run `fault` (on the worker thread) first."""
    stream = engine._sessions[sid]._stream
    finish = stream.finish

    def faulty(job):
        stream.finish = finish
        fault()
        return finish(job)

    stream.finish = faulty


async def _victim(server, clip: bytes, fault):
    """A session that gets `fault` injected, then streams the clip and closes."""
    async with connect(url(server)) as ws:
        created = json.loads(await ws.recv())
        inject(server.engine, created["session_id"], fault)
        await ws.send(clip)
        await ws.send('{"type":"close_stream"}')
        return await received(ws), ws.close_code


def _raise(exc):
    def fault():
        raise exc
    return fault


@pytest.mark.parametrize("exc,code,close", [(RuntimeError("boom at /secret/path"), "internal_error", 1011),
                                            (MemoryError(), "overloaded", 1013)])
async def test_a_failing_session_closes_alone(engine, clip, exc, code, close):
    async with running(engine) as server:
        alone = final_view((await stream(url(server), clip))[0])
        (msgs, got_close), (others, other_close) = await asyncio.gather(
            _victim(server, clip, _raise(exc)), stream(url(server), clip, frame=1600))
        after, after_close = await stream(url(server), clip)  # recovered: a new session works
    errors = of(msgs, "error")
    assert [e["code"] for e in errors] == [code] and got_close == close and "secret" not in errors[0]["message"]
    assert other_close == 1000 and final_view(others) == alone and alone
    assert after_close == 1000 and final_view(after) == alone


async def test_a_hung_step_makes_the_server_unhealthy_not_unresponsive(engine, clip):
    async with running(engine, step_deadline=0.5) as server:
        victim = asyncio.create_task(_victim(server, clip, lambda: time.sleep(3.0)))
        while engine.busy_for < 1.0:
            await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        status, _, body = await asyncio.to_thread(http_get, server, "/health")
        answered = time.perf_counter() - t0
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url(server)):
                pass
        msgs, close = await victim
        healthy, _, _ = await asyncio.to_thread(http_get, server, "/health")
    assert status == 503 and json.loads(body)["status"] == "stalled" and answered < 0.5
    assert refused.value.response.status_code == 503 and "Retry-After" in refused.value.response.headers
    assert close == 1000 and msgs[-1]["type"] == "done" and healthy == 200
