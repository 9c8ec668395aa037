"""The WebSocket server, protocol v1: a real server on port 0, real websockets clients, tiny checkpoints."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import urllib.request

import numpy as np
import pytest
import soxr
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from asrstream import load_aligner, load_model
from asrstream.protocol.messages import CLOSE_CODES, ERROR_CODES
from asrstream.streaming.engine import Engine

from .servers import final_view, http_get, of, pcm16, received, running, self_signed_cert, stream, url
from .speech import SENTENCES, SR, silence, spans_of, tts


@pytest.fixture(scope="module")
def models(tiny_asr_dir, tiny_aligner_dir):
    return load_model(str(tiny_asr_dir), dtype="float32"), load_aligner(str(tiny_aligner_dir), dtype="float32")


@pytest.fixture(scope="module")
def engine(models):
    e = Engine(*models)
    yield e
    e.shutdown()


@pytest.fixture(scope="module")
def two_utterances():
    audio, spans = spans_of([silence(0.3), tts(SENTENCES[0]), silence(1.0), tts(SENTENCES[1]), silence(0.2)])
    return audio, spans


async def test_full_session_created_partials_finals_words_done(engine, two_utterances):
    audio, spans = two_utterances
    async with running(engine) as server:
        msgs, code = await stream(url(server), pcm16(audio), realtime_bytes_per_s=8 * 2 * SR)
    assert code == 1000
    created = msgs[0]
    assert created["type"] == "session.created" and created["protocol_version"] == 1
    assert created["config"]["sample_rate"] == 16000 and created["capabilities"]["word_timestamps"] is True
    assert [m["segment_id"] for m in of(msgs, "speech.started")] == [0, 1]
    assert len(of(msgs, "transcript.partial")) >= 2
    finals = of(msgs, "transcript.final")
    assert [f["reason"] for f in finals] == ["endpoint", "close"]
    for f, (start, end) in zip(finals, [spans[1], spans[3]]):
        assert f["start"] <= start + 0.05 and f["end"] >= end - 0.35 and f["text"]
        assert f["words"] and all(f["start"] <= w["start"] <= w["end"] <= f["end"] for w in f["words"])
    for p in of(msgs, "transcript.partial"):
        assert p["text"] == p["stable_text"] + p["unstable_text"] and p["start"] <= p["audio_end"]
    assert msgs[-1] == {"type": "done", "session_id": created["session_id"],
                        "audio_seconds": round(len(audio) / SR, 3), "segments": 2}


async def test_float32_frames_equal_int16_frames(engine, two_utterances):
    """The same samples as pcm_s16le and as pcm_f32le (frames split mid-sample) give the same finals."""
    audio = two_utterances[0]
    q = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    async with running(engine) as server:
        s16, _ = await stream(url(server), q.astype("<i2").tobytes(), frame=3201)
        f32, _ = await stream(url(server, "encoding=pcm_f32le"), (q / 32768.0).astype("<f4").tobytes(), frame=4099)
    assert final_view(s16) == final_view(f32) and len(final_view(s16)) == 2


@pytest.mark.parametrize("rate", [8000, 48000])
async def test_other_sample_rates_are_resampled(engine, two_utterances, rate):
    audio, spans = two_utterances
    x = soxr.resample(audio, SR, rate)
    async with running(engine) as server:
        msgs, code = await stream(url(server, f"sample_rate={rate}"), pcm16(x), frame=2 * rate // 10 + 1)
    assert code == 1000 and msgs[0]["config"]["sample_rate"] == rate
    assert abs(msgs[-1]["audio_seconds"] - len(audio) / SR) < 0.002
    finals = of(msgs, "transcript.final")
    assert len(finals) == 2 and abs(finals[0]["start"] - spans[1][0]) < 0.3


async def test_base64_audio_equals_binary_audio(engine, two_utterances):
    data = pcm16(two_utterances[0])
    frames = [{"type": "input_audio_buffer.append", "audio": base64.b64encode(data[i : i + 6400]).decode()}
              for i in range(0, len(data), 6400)]
    async with running(engine) as server:
        binary, _ = await stream(url(server), data)
        b64, code = await stream(url(server), b"", after=frames + [{"type": "close_stream"}])
    assert code == 1000 and final_view(b64) == final_view(binary)


async def test_finalize_mid_stream_closes_the_segment(engine):
    speech = tts(SENTENCES[2])
    half = len(speech) // 2 // 1600 * 1600
    async with running(engine) as server:
        msgs, code = await stream(url(server), b"", after=[pcm16(speech[:half]), {"type": "finalize"},
                                                           pcm16(speech[half:]), {"type": "close_stream"}])
    finals = of(msgs, "transcript.final")
    assert code == 1000 and finals[0]["reason"] == "finalize" and abs(finals[0]["end"] - half / SR) < 0.2
    assert msgs[-1]["type"] == "done"


async def test_session_update_applies_to_later_segments(engine, two_utterances):
    audio, spans = two_utterances
    cut = int(spans[2][0] * SR) + SR // 2  # inside the pause, after the first endpoint was found
    update = {"type": "session.update", "language": "English", "vad": {"silence_ms": 400}}
    async with running(engine) as server:
        msgs, code = await stream(url(server), b"", after=[pcm16(audio[:cut]), update, pcm16(audio[cut:]),
                                                           {"type": "close_stream"}])
    updated = of(msgs, "session.updated")
    assert code == 1000 and updated[0]["config"]["language"] == "English"
    assert updated[0]["config"]["vad"]["silence_ms"] == 400
    assert of(msgs, "transcript.final")[1]["language"] == "English"


RECOVERABLE = [
    ("this is not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('{"type": 5}', "invalid_message"),
    ('{"type": "transcript.final"}', "unknown_type"),
    ('{"type": "session.update", "sample_rate": 7}', "invalid_field"),
    ('{"type": "session.update", "encoding": "mp3"}', "invalid_field"),
    ('{"type": "session.update", "language": "Klingon"}', "invalid_field"),
    ('{"type": "session.update", "vad": {"silence_ms": "long"}}', "invalid_field"),
    ('{"type": "session.update", "vad": {"silence_ms": 5}}', "invalid_field"),
    ('{"type": "session.update", "vad": {"max_segment_s": NaN}}', "invalid_field"),
    ('{"type": "session.update", "bogus": 1}', "invalid_field"),
    ('{"type": "finalize", "now": true}', "invalid_field"),
    ('{"type": "input_audio_buffer.append", "audio": "not base64!"}', "bad_audio"),
    ('{"type": "input_audio_buffer.append"}', "invalid_field"),
]


@pytest.mark.parametrize("bad,code", RECOVERABLE)
async def test_bad_messages_get_an_error_and_the_session_goes_on(engine, bad, code, caplog):
    speech = pcm16(tts(SENTENCES[0]))
    async with running(engine) as server:
        msgs, close = await stream(url(server), speech, before=[bad])
    errors = of(msgs, "error")
    assert [e["code"] for e in errors] == [code] and code not in CLOSE_CODES
    assert "Traceback" not in errors[0]["message"] and errors[0]["message"]
    assert close == 1000 and of(msgs, "transcript.final") and msgs[-1]["type"] == "done"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_nan_float_audio_is_dropped_with_bad_audio(engine):
    x = tts(SENTENCES[0]).astype("<f4")
    bad = np.array([0.1, np.nan, np.inf], dtype="<f4").tobytes()
    async with running(engine) as server:
        msgs, close = await stream(url(server, "encoding=pcm_f32le"), x.tobytes(), before=[bad])
    assert [e["code"] for e in of(msgs, "error")] == ["bad_audio"] and close == 1000
    assert msgs[-1]["audio_seconds"] == round(len(x) / SR, 3)


async def test_audio_after_close_stream_is_refused(engine):
    async with running(engine) as server:
        msgs, close = await stream(url(server), pcm16(tts(SENTENCES[0])),
                                   after=[{"type": "close_stream"}, b"\x00\x00" * 800, {"type": "finalize"}])
    assert [e["code"] for e in of(msgs, "error")] == ["stream_closed", "stream_closed"] and close == 1000


async def test_large_text_messages_get_message_too_large(engine):
    async with running(engine, max_frame_bytes=2 << 20) as server:
        big = json.dumps({"type": "keepalive", "pad": "x" * (1 << 20)})
        msgs, close = await stream(url(server), pcm16(silence(0.5)), before=[big])
    assert [e["code"] for e in of(msgs, "error")] == ["message_too_large"] and close == 1000


async def test_frame_over_the_limit_closes_1009(engine):
    async with running(engine, max_frame_bytes=64 << 10) as server:
        msgs, close = await stream(url(server), b"\x00" * ((64 << 10) + 2), frame=(64 << 10) + 2, after=())
    assert close == 1009


@pytest.mark.parametrize("query", ["sample_rate=7", "sample_rate=abc", "encoding=mp3", "language=Klingon",
                                   "colour=blue"])
async def test_invalid_url_config_is_refused_with_1008(engine, query):
    async with running(engine) as server:
        msgs, close = await stream(url(server, query), b"", after=())
    assert [m["type"] for m in msgs] == ["error"] and msgs[0]["code"] == "invalid_config" and close == 1008
    assert engine.sessions == 0


async def test_idle_session_is_finished_and_closed(engine):
    async with running(engine, idle_timeout=0.8) as server:
        async with connect(url(server)) as ws:
            await ws.send(pcm16(tts(SENTENCES[0])))
            msgs = await received(ws)
            code = ws.close_code
    assert [e["code"] for e in of(msgs, "error")] == ["idle_timeout"] and code == CLOSE_CODES["idle_timeout"]
    assert of(msgs, "transcript.final") and msgs[-1]["type"] == "done"


async def test_keepalive_holds_an_idle_session_open(engine):
    async with running(engine, idle_timeout=0.6) as server:
        async with connect(url(server)) as ws:
            for _ in range(6):
                await ws.send('{"type":"keepalive"}')
                await asyncio.sleep(0.25)
            await ws.send('{"type":"close_stream"}')
            msgs = await received(ws)
    assert not of(msgs, "error") and msgs[-1]["type"] == "done" and ws.close_code == 1000


async def test_max_duration_ends_the_session(engine):
    speech = pcm16(tts(SENTENCES[1]))
    async with running(engine, max_session_seconds=1.0) as server:
        async with connect(url(server)) as ws:
            for i in range(0, len(speech), 6400):
                await ws.send(speech[i : i + 6400])
                await asyncio.sleep(0.1)
                if ws.close_code is not None:
                    break
            msgs = await received(ws)
    assert [e["code"] for e in of(msgs, "error")] == ["max_duration"] and ws.close_code == 1008
    assert msgs[-1]["type"] == "done"


async def test_client_that_vanishes_frees_its_session_at_once(engine):
    async with running(engine) as server:
        ws = await connect(url(server))
        await ws.recv()
        await ws.send(pcm16(tts(SENTENCES[3])))
        while engine.sessions == 0 or not engine.passes:
            await asyncio.sleep(0.01)
        ws.transport.abort()  # TCP reset: no close handshake
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while (engine.sessions or server.connections) and loop.time() - t0 < 5:
            await asyncio.sleep(0.01)
        freed = loop.time() - t0
        assert engine.sessions == 0 and not server.connections and freed < 1.0
        msgs, code = await stream(url(server), pcm16(silence(0.3)))  # the server goes on
    assert code == 1000


async def test_engine_failure_is_an_internal_error_and_1011(models, monkeypatch):
    engine = Engine(*models)
    monkeypatch.setattr(engine.rt, "align", lambda *a: (_ for _ in ()).throw(RuntimeError("/secret/path")))
    try:
        async with running(engine) as server:
            msgs, close = await stream(url(server), pcm16(tts(SENTENCES[0])))
    finally:
        engine.shutdown()
    errors = of(msgs, "error")
    assert [e["code"] for e in errors] == ["internal_error"] and close == 1011
    assert "/secret" not in errors[0]["message"] and not of(msgs, "done")


@pytest.mark.parametrize("how", ["none", "wrong", "wrong-query"])
async def test_auth_refuses_before_the_upgrade(engine, how):
    headers = {"wrong": {"Authorization": "Bearer nope"}}.get(how)
    async with running(engine, api_key="s3cret") as server:
        with pytest.raises(InvalidStatus) as e:
            async with connect(url(server, "token=nope" if how == "wrong-query" else ""), additional_headers=headers):
                pass
        assert e.value.response.status_code == 401 and b"s3cret" not in e.value.response.body
        assert e.value.response.headers["WWW-Authenticate"].startswith("Bearer")
        status, _, _ = await asyncio.to_thread(http_get, server, "/metrics")
        assert status == 401
        assert engine.sessions == 0 and not server.connections
        assert server.metrics.opened._value.get() == 0


@pytest.mark.parametrize("how", ["header", "query"])
async def test_auth_admits_the_key_by_header_or_query(engine, how):
    async with running(engine, api_key="s3cret") as server:
        headers = {"Authorization": "Bearer s3cret"} if how == "header" else None
        msgs, code = await stream(url(server, "token=s3cret" if how == "query" else ""), pcm16(silence(0.3)),
                                  headers=headers)
    assert code == 1000 and msgs[-1]["type"] == "done"


async def test_tls_serves_wss_and_https(engine, tmp_path, two_utterances):
    cert, trust = self_signed_cert(tmp_path)
    async with running(engine, certfile=str(cert)) as server:
        uri = f"wss://127.0.0.1:{server.port}/v1/asr"
        async with connect(uri, ssl=trust) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(pcm16(two_utterances[0]))
            await ws.send('{"type":"close_stream"}')
            msgs = await received(ws)
        health = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"https://127.0.0.1:{server.port}/health", context=trust, timeout=10).status)
    assert len(of(msgs, "transcript.final")) == 2 and msgs[-1]["type"] == "done" and ws.close_code == 1000
    assert health == 200


async def test_origin_allowlist(engine):
    async with running(engine, allowed_origins=("https://ok.example",)) as server:
        with pytest.raises(InvalidStatus) as e:
            async with connect(url(server), origin="https://evil.example"):
                pass
        assert e.value.response.status_code == 403
        ok, code = await stream(url(server), pcm16(silence(0.3)), headers={"Origin": "https://ok.example"})
        assert code == 1000


async def test_over_capacity_is_503_with_retry_after(models):
    engine = Engine(*models, max_sessions=1)
    try:
        async with running(engine, retry_after=7) as server:
            async with connect(url(server)) as first:
                json.loads(await first.recv())
                with pytest.raises(InvalidStatus) as e:
                    async with connect(url(server)):
                        pass
                assert e.value.response.status_code == 503 and e.value.response.headers["Retry-After"] == "7"
                await first.send('{"type":"close_stream"}')
                assert (await received(first))[-1]["type"] == "done"
    finally:
        engine.shutdown()


async def test_concurrent_connects_over_capacity_are_refused_cleanly(models):
    """With one slot, of 6 simultaneous clients one is admitted; each other one gets either the HTTP
    503 or, when it passed the HTTP check in a race, `error` overloaded and close 1013."""
    engine = Engine(*models, max_sessions=1)

    async def attempt(server):
        try:
            async with connect(url(server)) as ws:
                first = json.loads(await ws.recv())
                if first["type"] == "session.created":
                    await asyncio.sleep(0.5)
                    await ws.send('{"type":"close_stream"}')
                msgs = [first] + await received(ws)
                return msgs[0]["type"], msgs[0].get("code"), ws.close_code
        except InvalidStatus as e:
            return "http", e.response.status_code, e.response.headers.get("Retry-After")

    try:
        async with running(engine) as server:
            outcomes = await asyncio.gather(*[attempt(server) for _ in range(6)])
    finally:
        engine.shutdown()
    assert sorted(o for o in outcomes if o[0] == "session.created") == [("session.created", None, 1000)]
    assert all(o in (("http", 503, "5"), ("error", "overloaded", 1013)) for o in outcomes if o[0] != "session.created")


async def test_a_client_that_stops_reading_is_closed_as_slow_reader(engine):
    import socket

    async with running(engine, send_timeout=0.5, max_pending_messages=4) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        async with connect(url(server), sock=sock, max_queue=1, close_timeout=1) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            big = json.dumps({"type": "session.update", "context": "x" * 9000})
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while engine.sessions and loop.time() - t0 < 20:  # fill the kernel's buffers, then the outbox
                await ws.send(big)  # answered by a ~9 KB session.updated that nobody reads
                await asyncio.sleep(0.001)
            while server.connections and loop.time() - t0 < 30:  # the close handshake times out (5 s)
                await asyncio.sleep(0.05)
        assert engine.sessions == 0 and not server.connections
        assert server.metrics.errors.labels("slow_reader")._value.get() == 1
        assert server.metrics.closed.labels("1008")._value.get() == 1


async def test_health_while_loading_ready_and_draining(models):
    async with running(None) as server:
        status, headers, body = await asyncio.to_thread(http_get, server, "/health")
        assert status == 503 and json.loads(body)["status"] == "loading"
        with pytest.raises(InvalidStatus) as e:
            async with connect(url(server)):
                pass
        assert e.value.response.status_code == 503 and "Retry-After" in e.value.response.headers
        server.attach(Engine(*models))
        status, _, body = await asyncio.to_thread(http_get, server, "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        async with connect(url(server)) as ws:
            await ws.recv()
            await ws.send(pcm16(tts(SENTENCES[3])))
            drain = asyncio.create_task(server.drain())
            status, _, body = await asyncio.to_thread(http_get, server, "/health")
            msgs = await received(ws)
            await drain
    assert status == 503 and json.loads(body)["status"] == "draining"
    assert of(msgs, "transcript.final") and msgs[-1]["type"] == "done" and ws.close_code == 1001
    assert of(msgs, "error")[0]["code"] == "shutting_down"


async def test_metrics_exposition(engine, two_utterances):
    async with running(engine) as server:
        msgs, _ = await stream(url(server), pcm16(two_utterances[0]), before=['{"type":"nope"}'],
                               realtime_bytes_per_s=8 * 2 * SR)
        status, headers, body = await asyncio.to_thread(http_get, server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    assert samples[("asrstream_sessions_total", ())] == 1
    assert samples[("asrstream_sessions_active", ())] == 0
    assert samples[("asrstream_session_closes_total", (("code", "1000"),))] == 1
    assert abs(samples[("asrstream_audio_seconds_total", ())] - len(two_utterances[0]) / SR) < 1e-6
    assert samples[("asrstream_errors_total", (("code", "unknown_type"),))] == 1
    assert samples[("asrstream_pass_seconds_count", (("kind", "offline"),))] >= 2
    assert samples[("asrstream_batch_rows_count", ())] > 0
    assert samples[("asrstream_partial_lag_seconds_count", ())] == len(of(msgs, "transcript.partial"))
    assert samples[("asrstream_final_latency_seconds_count", (("reason", "endpoint"),))] == 1
    assert samples[("asrstream_event_loop_lag_seconds_count", ())] > 0


async def test_static_files_from_the_web_root(engine, tmp_path):
    (tmp_path / "index.html").write_text("<title>captions</title>")
    (tmp_path / "app.js").write_text("// js")
    async with running(engine, web_root=tmp_path) as server:
        index = await asyncio.to_thread(http_get, server, "/")
        js = await asyncio.to_thread(http_get, server, "/app.js")
        missing = await asyncio.to_thread(http_get, server, "/../../etc/passwd")
    assert index[0] == 200 and index[2] == b"<title>captions</title>" and index[1]["Content-Type"] == "text/html"
    assert js[0] == 200 and "javascript" in js[1]["Content-Type"]
    assert missing[0] == 404


async def test_concurrent_sessions_equal_sessions_alone(engine):
    clips = [pcm16(np.concatenate([silence(0.2), tts(s), silence(0.3)])) for s in SENTENCES]
    async with running(engine) as server:
        alone = [final_view((await stream(url(server), c))[0]) for c in clips]
        together = await asyncio.gather(*[stream(url(server), clips[i % 4], frame=1600 + 2 * i) for i in range(16)])
    assert engine.busiest_batch >= 4
    for i, (msgs, code) in enumerate(together):
        assert code == 1000 and final_view(msgs) == alone[i % 4] and alone[i % 4]


def test_error_codes_are_documented():
    doc = (__import__("pathlib").Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    for code in ERROR_CODES:
        assert f"`{code}`" in doc, code
