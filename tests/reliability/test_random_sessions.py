"""A hypothesis state machine drives one live session per run with random client messages (audio
slices, commands, valid and invalid updates, base64 audio, garbage) and keeps a model of what the
server must answer: the error codes in order, one session.updated per valid update. At the end
(close_stream) the session must match the model and be well-formed: session.created first, only
documented messages, stable text only growing, finals in order, `done` counting them, close 1000,
no log record at WARNING or above."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from websockets.sync.client import connect

from asrstream.protocol.messages import (ERROR_CODES, Done, ErrorMessage, SessionCreated, SessionUpdated,
                                         TranscriptFinal, TranscriptPartial, parse_server)
from asrstream.streaming.engine import Engine

from ..servers import pcm16, running, url
from ..speech import SENTENCES, tts

# (message, error code the server must answer with, or None)
GARBAGE = [("garbage", "invalid_json"), ("[]", "invalid_message"), ('{"type": 3}', "invalid_message"),
           ('{"type": "nope"}', "unknown_type"), ('{"type": "finalize", "x": 1}', "invalid_field"),
           ('{"type": "input_audio_buffer.append", "audio": "!"}', "bad_audio")]
UPDATES = [({"language": "English"}, True), ({"language": None}, True), ({"context": "Stella, Bob"}, True),
           ({"interim_results": False}, True), ({"interim_results": True}, True),
           ({"vad": {"silence_ms": 400, "aggressiveness": 3}}, True), ({"word_timestamps": False}, True),
           ({"language": "Klingon"}, False), ({"vad": {"silence_ms": 5}}, False), ({"interim_results": "yes"}, False),
           ({"sample_rate": 5}, False), ({"bogus": 1}, False)]


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class SessionMachine(RuleBasedStateMachine):
    server = speech = None  # set by the test

    def __init__(self):
        super().__init__()
        self.warnings = Warnings()
        logging.getLogger().addHandler(self.warnings)
        self.exits = contextlib.ExitStack()
        self.ws = self.exits.enter_context(connect(url(self.server), compression=None, max_size=None, close_timeout=5))
        self.expected_errors: list[str] = []
        self.valid_updates = 0

    @rule(start=st.integers(0, 60000), n=st.integers(0, 16000))
    def audio(self, start, n):
        self.ws.send(self.speech[2 * start : 2 * (start + n)])

    @rule(data=st.binary(max_size=800))
    def audio_base64(self, data):
        self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()}))

    @rule(command=st.sampled_from(['{"type": "keepalive"}', '{"type": "finalize"}']))
    def command(self, command):
        self.ws.send(command)

    @rule(case=st.sampled_from(GARBAGE))
    def garbage(self, case):
        self.ws.send(case[0])
        self.expected_errors.append(case[1])

    @rule(case=st.sampled_from(UPDATES))
    def update(self, case):
        values, valid = case
        self.ws.send(json.dumps({"type": "session.update", **values}))
        if valid:
            self.valid_updates += 1
        else:
            self.expected_errors.append("invalid_field")

    def teardown(self):
        try:
            self.ws.send('{"type": "close_stream"}')
            msgs = []
            while True:
                try:
                    msgs.append(parse_server(self.ws.recv(timeout=60)))
                except Exception:  # closed
                    break
            self.check(msgs, self.ws.close_code)
        finally:
            self.exits.close()
            logging.getLogger().removeHandler(self.warnings)

    def check(self, msgs: list, close: int | None) -> None:
        assert close == 1000 and isinstance(msgs[0], SessionCreated) and isinstance(msgs[-1], Done)
        errors = [m.code for m in msgs if isinstance(m, ErrorMessage)]
        assert errors == self.expected_errors and all(c in ERROR_CODES for c in errors)
        assert sum(isinstance(m, SessionUpdated) for m in msgs) == self.valid_updates
        stable: dict[int, str] = {}
        for p in (m for m in msgs if isinstance(m, TranscriptPartial)):
            assert p.stable_text.startswith(stable.get(p.segment_id, ""))
            stable[p.segment_id] = p.stable_text
        finals = [m.segment_id for m in msgs if isinstance(m, TranscriptFinal)]
        assert finals == sorted(set(finals)) and msgs[-1].segments == len(finals)
        assert not self.warnings.records, [r.getMessage() for r in self.warnings.records]


@pytest.fixture(scope="module")
def server(tiny_model):
    """A real server on its own event loop in a thread (the machine drives it with a sync client)."""
    engine = Engine(tiny_model)
    ready, box = threading.Event(), {}

    async def main():
        box["stop"] = asyncio.Event()
        async with running(engine) as srv:
            box["server"], box["loop"] = srv, asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(60)
    yield box["server"]
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(30)
    engine.shutdown()


def test_random_sessions_match_the_model(server):
    SessionMachine.server, SessionMachine.speech = server, pcm16(tts(SENTENCES[3]))
    run_state_machine_as_test(SessionMachine, settings=settings(max_examples=25, stateful_step_count=15,
                                                                deadline=None))
