"""Random client message sequences over a live socket (hypothesis): whatever a client sends, the
session stays well-formed: session.created first, only documented messages and error codes, partials
whose stable text only grows, finals in segment order, `done` counting them, close 1000, no warnings."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from asrstream import load_model
from asrstream.protocol.messages import (ERROR_CODES, Done, ErrorMessage, SessionCreated, TranscriptFinal,
                                         TranscriptPartial, parse_server)
from asrstream.streaming.engine import Engine

from ..servers import pcm16, running, url
from ..speech import SENTENCES, tts

SPEECH = None


def _speech() -> bytes:
    global SPEECH
    if SPEECH is None:
        SPEECH = pcm16(tts(SENTENCES[3]))
    return SPEECH


audio = st.builds(lambda start, n: ("audio", start, n), st.integers(0, 60000), st.integers(0, 16000))
simple = st.sampled_from(['{"type":"keepalive"}', '{"type":"finalize"}', '{"type":"nope"}', "garbage", "[]"])
update = st.fixed_dictionaries({}, optional={
    "language": st.sampled_from([None, "English", "Klingon", 5]),
    "context": st.text(max_size=30),
    "interim_results": st.sampled_from([True, False, "yes"]),
    "word_timestamps": st.booleans(),
    "vad": st.fixed_dictionaries({}, optional={"silence_ms": st.integers(0, 3000),
                                               "aggressiveness": st.integers(-1, 4)}),
}).map(lambda v: json.dumps({"type": "session.update", **v}))
append = st.binary(max_size=800).map(
    lambda b: json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b).decode()}))
messages = st.lists(st.one_of(audio, simple, update, append), max_size=14)


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server(tiny_asr_dir):
    """A real server on its own event loop in a thread (the test drives it with a sync client)."""
    engine = Engine(load_model(str(tiny_asr_dir), dtype="float32"))
    ready, stop, box = threading.Event(), None, {}

    async def main():
        nonlocal stop
        stop = asyncio.Event()
        async with running(engine) as srv:
            box["server"], box["loop"] = srv, asyncio.get_running_loop()
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(60)
    yield box["server"]
    box["loop"].call_soon_threadsafe(stop.set)
    thread.join(30)
    engine.shutdown()


def run(server, plan: list) -> tuple[list, int]:
    with connect(url(server), compression=None, max_size=None, close_timeout=5) as ws:
        for item in plan:
            if isinstance(item, tuple):
                _, start, n = item
                ws.send(_speech()[2 * start : 2 * (start + n)])
            else:
                ws.send(item)
        ws.send('{"type":"close_stream"}')
        msgs = []
        try:
            while True:
                msgs.append(parse_server(ws.recv(timeout=60)))
        except Exception:  # closed
            pass
        return msgs, ws.close_code


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=messages)
def test_random_message_sequences_keep_sessions_well_formed(server, plan):
    handler = Warnings()
    logging.getLogger().addHandler(handler)
    try:
        msgs, close = run(server, plan)
    finally:
        logging.getLogger().removeHandler(handler)
    assert close == 1000 and isinstance(msgs[0], SessionCreated) and isinstance(msgs[-1], Done)
    assert all(m.code in ERROR_CODES for m in msgs if isinstance(m, ErrorMessage))
    stable: dict[int, str] = {}
    for p in (m for m in msgs if isinstance(m, TranscriptPartial)):
        assert p.stable_text.startswith(stable.get(p.segment_id, ""))
        stable[p.segment_id] = p.stable_text
    finals = [m.segment_id for m in msgs if isinstance(m, TranscriptFinal)]
    assert finals == sorted(set(finals)) and msgs[-1].segments == len(finals)
    assert not handler.records, [r.getMessage() for r in handler.records]
    assert np.isfinite(msgs[-1].audio_seconds)
