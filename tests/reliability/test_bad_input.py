"""Hostile and malformed input against a live server while a canary session streams known audio.

Each case is what a client sends on a fresh connection, the `error` codes it must get (in order)
and the close code it must end with (1000: the session goes on to a normal end after close_stream).
Throughout, a canary session streams speech in real time; its finals must equal the same audio
streamed alone, bit for bit, and no log record at WARNING or above may appear.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pytest
from websockets.asyncio.client import connect

from asrstream import load_aligner
from asrstream.streaming.engine import Engine

from ..servers import final_view, pcm16, received, running, stream, url
from ..speech import SENTENCES, silence, spans_of, tts

MIB = 1 << 20


@dataclass
class Case:
    name: str
    frames: list = field(default_factory=list)  # str: text frame; bytes: binary; ("text", b"..."): raw text bytes
    errors: list[str] = field(default_factory=list)
    close: int = 1000
    query: str = ""
    big: bool = False  # run on the server that allows 2 MiB frames
    end: bool = True  # send close_stream after the frames


def upd(**values) -> str:
    return json.dumps({"type": "session.update", **values})


def b64(data: bytes) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()})


F32_NAN = np.array([0.1, np.nan], dtype="<f4").tobytes()
CASES = [
    # malformed JSON
    Case("not json", ["hello"], ["invalid_json"]),
    Case("empty text frame", [""], ["invalid_json"]),
    Case("whitespace text frame", ["   \n"], ["invalid_json"]),
    Case("truncated json", ['{"type": "finalize"'], ["invalid_json"]),
    Case("deeply nested json", ["[" * 100000 + "]" * 100000], ["invalid_json"]),
    Case("json with BOM", ["\ufeff" + '{"type": "keepalive"}'], ["invalid_json"]),
    Case("json array", ["[1, 2]"], ["invalid_message"]),
    Case("json string", ['"finalize"'], ["invalid_message"]),
    Case("json number", ["42"], ["invalid_message"]),
    Case("json null", ["null"], ["invalid_message"]),
    Case("type missing", ['{"audio": "AAAA"}'], ["invalid_message"]),
    Case("type null", ['{"type": null}'], ["invalid_message"]),
    Case("type number", ['{"type": 5}'], ["invalid_message"]),
    Case("type empty", ['{"type": ""}'], ["unknown_type"]),
    Case("unknown type", ['{"type": "response.create"}'], ["unknown_type"]),
    Case("server type sent by client", ['{"type": "transcript.final"}'], ["unknown_type"]),
    Case("huge json within the frame limit", [json.dumps({"type": "keepalive", "pad": "x" * (MIB + 10)})],
         ["message_too_large"], big=True),
    # wrong fields
    Case("unknown field", [upd(bogus=1)], ["invalid_field"]),
    Case("language number", [upd(language=5)], ["invalid_field"]),
    Case("language unsupported", [upd(language="Klingon")], ["invalid_field"]),
    Case("context list", [upd(context=["a"])], ["invalid_field"]),
    Case("context too long", [upd(context="x" * 10001)], ["invalid_field"]),
    Case("sample_rate string", [upd(sample_rate="16000")], ["invalid_field"]),
    Case("sample_rate float", [upd(sample_rate=16000.5)], ["invalid_field"]),
    Case("sample_rate too low", [upd(sample_rate=7999)], ["invalid_field"]),
    Case("sample_rate too high", [upd(sample_rate=96000)], ["invalid_field"]),
    Case("encoding null", [upd(encoding=None)], ["invalid_field"]),
    Case("encoding unknown", [upd(encoding="opus")], ["invalid_field"]),
    Case("interim_results string", [upd(interim_results="yes")], ["invalid_field"]),
    Case("word_timestamps number", [upd(word_timestamps=1)], ["invalid_field"]),
    Case("vad list", [upd(vad=[1])], ["invalid_field"]),
    Case("vad unknown field", [upd(vad={"threshold": 0.5})], ["invalid_field"]),
    Case("vad silence float", [upd(vad={"silence_ms": 1.5})], ["invalid_field"]),
    Case("vad silence out of range", [upd(vad={"silence_ms": 50})], ["invalid_field"]),
    Case("vad aggressiveness 4", [upd(vad={"aggressiveness": 4})], ["invalid_field"]),
    Case("vad max segment 1 s", [upd(vad={"max_segment_s": 1})], ["invalid_field"]),
    Case("vad NaN", ['{"type": "session.update", "vad": {"max_segment_s": NaN}}'], ["invalid_field"]),
    Case("vad Infinity", ['{"type": "session.update", "vad": {"max_segment_s": Infinity}}'], ["invalid_field"]),
    Case("finalize with a field", ['{"type": "finalize", "now": true}'], ["invalid_field"]),
    Case("keepalive with a field", ['{"type": "keepalive", "x": 1}'], ["invalid_field"]),
    Case("append without audio", ['{"type": "input_audio_buffer.append"}'], ["invalid_field"]),
    Case("append audio number", ['{"type": "input_audio_buffer.append", "audio": 12}'], ["invalid_field"]),
    Case("append bad base64", ['{"type": "input_audio_buffer.append", "audio": "***"}'], ["bad_audio"]),
    Case("append odd-length base64", ['{"type": "input_audio_buffer.append", "audio": "AAA"}'], ["bad_audio"]),
    # configuration
    Case("config twice", [upd(vad={"silence_ms": 400}), upd(vad={"silence_ms": 800})]),
    Case("config after audio", [b"\x00\x01" * 800, upd(language="English")]),
    Case("format change mid-stream", [b"\x00" * 3201, upd(sample_rate=8000), b"\x00" * 1600]),
    Case("query sample_rate bad", query="sample_rate=12", errors=["invalid_config"], close=1008, end=False),
    Case("query encoding bad", query="encoding=mp3", errors=["invalid_config"], close=1008, end=False),
    Case("query language bad", query="language=Klingon", errors=["invalid_config"], close=1008, end=False),
    Case("query unknown parameter", query="rate=16000", errors=["invalid_config"], close=1008, end=False),
    # audio frames
    Case("empty binary frames", [b"", b"", b""]),
    Case("odd-length frames", [b"\x01", b"\x02\x03", b"\x04"]),
    Case("one-sample frames", [b"\x10\x00"] * 200),
    Case("frame at the limit", [b"\x00" * MIB]),
    Case("frame over the limit", [b"\x00" * (MIB + 1)], close=1009, end=False),
    Case("fragmented message over the limit", [("fragments", [b"\x00" * (MIB // 2)] * 3)], close=1009, end=False),
    Case("float NaN", [F32_NAN], ["bad_audio"], query="encoding=pcm_f32le"),
    Case("float +Inf", [np.array([np.inf], "<f4").tobytes()], ["bad_audio"], query="encoding=pcm_f32le"),
    Case("float -Inf", [np.array([-np.inf], "<f4").tobytes()], ["bad_audio"], query="encoding=pcm_f32le"),
    Case("float denormals", [np.full(1600, 1e-40, "<f4").tobytes()], query="encoding=pcm_f32le"),
    Case("float NaN in base64", [b64(F32_NAN)], ["bad_audio"], query="encoding=pcm_f32le"),
    Case("binary JSON is audio", [b'{"type": "close_stream"}']),
    # order
    Case("audio after close_stream", ['{"type": "close_stream"}', b"\x00" * 320], ["stream_closed"], end=False),
    Case("close_stream twice", ['{"type": "close_stream"}', '{"type": "close_stream"}'], ["stream_closed"],
         end=False),
    Case("finalize without audio", ['{"type": "finalize"}']),
    Case("non-UTF-8 text frame", [("text", b"\xff\xfe{}")], close=1007, end=False),
]


@pytest.fixture(scope="module")
def engine(tiny_model, tiny_aligner_dir):  # the canary's finals carry word timestamps
    e = Engine(tiny_model, load_aligner(str(tiny_aligner_dir), dtype="float32"))
    yield e
    e.shutdown()


async def run_case(server, case: Case) -> tuple[list[str], int | None]:
    msgs = []
    async with connect(url(server, case.query), compression=None, max_size=None, close_timeout=5) as ws:
        reader = asyncio.create_task(_collect(ws, msgs))
        try:
            for f in case.frames:
                if isinstance(f, tuple) and f[0] == "text":
                    await ws.send(f[1], text=True)
                elif isinstance(f, tuple):
                    await ws.send(iter(f[1]))
                else:
                    await ws.send(f)
            if case.end:
                await ws.send('{"type": "close_stream"}')
        except Exception:  # the server closed first (the case's point): its close code tells
            pass
        await asyncio.wait_for(reader, 30)
        return [m["code"] for m in msgs if m["type"] == "error"], ws.close_code


async def _collect(ws, msgs: list) -> None:
    msgs += await received(ws)


async def test_bad_input_cases_leave_the_canary_untouched(engine, caplog):
    """>= 45 cases, each answered with its documented error and close codes; zero warnings or
    tracebacks in the log; the canary's finals equal the same audio streamed alone."""
    caplog.set_level(logging.INFO)
    canary_audio = pcm16(np.tile(spans_of([silence(0.3), tts(SENTENCES[0]), silence(0.8), tts(SENTENCES[1]),
                                           silence(0.8)])[0], 3))
    async with running(engine) as server, running(engine, max_frame_bytes=2 * MIB) as big:
        alone, _ = await stream(url(server), canary_audio)
        canary = asyncio.create_task(stream(url(server), canary_audio, realtime_bytes_per_s=32000))
        outcomes = []
        for case in CASES:
            got = await run_case(big if case.big else server, case)
            outcomes.append((case, got, got == (case.errors, case.close)))
        canary_msgs, canary_close = await canary
    report = "\n".join(f"{'ok ' if ok else 'BAD'} {c.name}: errors {got[0]} close {got[1]}"
                       + ("" if ok else f" (want {c.errors} {c.close})") for c, got, ok in outcomes)
    print(report)
    assert len(CASES) >= 45 and all(ok for _, _, ok in outcomes), report
    assert canary_close == 1000 and final_view(canary_msgs) == final_view(alone) and final_view(alone)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]


async def test_a_compression_offer_is_declined_and_the_session_works(engine):
    async with running(engine) as server:
        async with connect(url(server), compression="deflate") as ws:
            created = json.loads(await ws.recv())
            assert ws.protocol.extensions == [] and created["type"] == "session.created"
            assert "permessage-deflate" not in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
            await ws.send(pcm16(silence(0.3)))
            await ws.send('{"type": "close_stream"}')
            msgs = await received(ws)
    assert msgs[-1]["type"] == "done" and ws.close_code == 1000
