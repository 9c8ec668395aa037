"""Secrets and internals stay inside: API keys (right or wrong) never appear in logs, error messages
or close reasons; no client-visible text holds a traceback or a file path; rejected requests allocate
no session on any path (header or query, /v1/asr or /metrics)."""
from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


from ..servers import http_get, pcm16, received, running, url
from ..speech import SENTENCES, tts

KEY, WRONG = "k3y-SECRET-9f2e", "wr0ng-GUESS-77aa"
INTERNALS = re.compile(r'Traceback|File "|/(?:home|root|usr|tmp|work|opt|site-packages)/')


async def test_keys_and_internals_never_leak(engine, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    visible: list[str] = []  # everything a client can see: bodies, messages, close reasons
    async with running(engine, api_key=KEY) as server:
        for headers, query in [({"Authorization": f"Bearer {WRONG}"}, ""), (None, f"token={WRONG}"), (None, "")]:
            with pytest.raises(InvalidStatus) as e:
                async with connect(url(server, query), additional_headers=headers):
                    pass
            visible.append(e.value.response.body.decode())
            assert e.value.response.status_code == 401
        for path in (f"/metrics?token={WRONG}", "/metrics"):
            status, _, body = await asyncio.to_thread(http_get, server, path, {"Authorization": f"Bearer {WRONG}"})
            visible.append(body.decode())
            assert status == 401
        assert server.metrics.opened._value.get() == 0 and not server.connections and engine.sessions == 0

        monkeypatch.setattr(engine.rt, "align", lambda *a: (_ for _ in ()).throw(OSError("/root/secret/file.bin")))
        for query, frames in [(f"token={KEY}&language=Klingon", []),
                              (f"token={KEY}", ["not json", '{"type":"session.update","vad":{"silence_ms":1}}',
                                                pcm16(tts(SENTENCES[0])), '{"type":"close_stream"}'])]:
            async with connect(url(server, query)) as ws:
                for f in frames:
                    await ws.send(f)
                msgs = await received(ws)
                visible += [json.dumps(m) for m in msgs] + [ws.close_reason or ""]
        assert any(json.loads(v).get("code") == "internal_error" for v in visible if v.startswith("{"))
    logs = "\n".join(r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "")  # the server's loggers,
                     for r in caplog.records if r.name.startswith("asrstream"))  # at DEBUG, not the test's client
    assert "token=***" in logs  # the websockets library's request lines were logged, redacted
    for text in visible + [logs]:
        assert KEY not in text and WRONG not in text
    for text in visible:
        assert not INTERNALS.search(text), text
