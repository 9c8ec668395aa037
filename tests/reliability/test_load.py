"""Sustained load: the server full (8 sessions streaming in real time for 60 s; the long variant 10
minutes, marked slow), more clients refused with 503 + Retry-After without hurting the admitted ones;
the event loop stays responsive (p99 lag < 50 ms). Figures (partial lag, loop lag) are printed.

Finals under load equal the same audio streamed alone, field for field: segments start where they
start alone (the VAD sees the same audio), end where the endpointer put them (an offline final decodes
exactly its span, even when steps already took audio past it), and each is exactly the offline
transcription of its span (`ASRModel.transcribe` of that audio), whatever ran beside it."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from asrstream.streaming.engine import Engine

from asrstream.decoder.generate import DecodingOptions

from ..servers import NEW, final_view, http_get, of, pcm16, running, stream, url
from ..speech import SENTENCES, silence, spans_of, tts

SESSIONS = 8


def quantile(families: str, name: str, q: float) -> float | None:
    """The upper bound of the histogram bucket holding quantile q."""
    buckets = [(float(s.labels["le"]), s.value) for f in text_string_to_metric_families(families)
               for s in f.samples if s.name == f"{name}_bucket"]
    total = buckets[-1][1] if buckets else 0
    return next((le for le, n in buckets if n >= q * total), None) if total else None


@pytest.mark.parametrize("seconds", [60, pytest.param(600, marks=pytest.mark.slow)])
async def test_full_server_in_real_time(tiny_model, seconds):
    model = tiny_model
    engine = Engine(model, max_sessions=SESSIONS)
    track = spans_of([silence(0.4), tts(SENTENCES[0]), silence(0.9), tts(SENTENCES[1]), silence(0.9),
                      tts(SENTENCES[2]), silence(0.9)])[0]
    n = seconds * 16000
    audios = [pcm16(np.tile(np.roll(track, -k * len(track) // 2), n // len(track) + 1)[:n]) for k in range(2)]
    try:
        async with running(engine, retry_after=3) as server:
            alone = [(await stream(url(server), a))[0] for a in audios]
            load = [asyncio.create_task(stream(url(server), audios[i % 2], realtime_bytes_per_s=32000))
                    for i in range(SESSIONS)]
            while engine.sessions < SESSIONS:
                await asyncio.sleep(0.05)
            refused = []
            for _ in range(3):
                with pytest.raises(InvalidStatus) as e:
                    async with connect(url(server)):
                        pass
                refused.append((e.value.response.status_code, e.value.response.headers.get("Retry-After")))
            health, _, _ = await asyncio.to_thread(http_get, server, "/health")
            results = await asyncio.gather(*load)
            metrics = (await asyncio.to_thread(http_get, server, "/metrics"))[2].decode()
    finally:
        engine.shutdown()
    lag = quantile(metrics, "asrstream_event_loop_lag_seconds", 0.99)
    partial95 = quantile(metrics, "asrstream_partial_lag_seconds", 0.95)
    print(f"{SESSIONS} sessions x {seconds} s in real time: event-loop lag p99 <= {lag} s, partial lag p95 <= "
          f"{partial95} s, busiest decoder batch {engine.busiest_batch}")
    assert refused == [(503, "3")] * 3 and health == 200
    offline: dict[tuple, str] = {}
    for i, (msgs, code) in enumerate(results):
        finals, want = of(msgs, "transcript.final"), final_view(alone[i % 2])
        assert code == 1000 and want and final_view(msgs) == want
        wav = np.frombuffer(audios[i % 2], "<i2").astype(np.float32) / 32768.0
        for f in finals:
            key = (i % 2, f["start"], f["end"])
            if key not in offline:
                span = wav[round(f["start"] * 16000) : round(f["end"] * 16000)]
                offline[key] = model.transcribe(span, options=DecodingOptions(max_new_tokens=NEW)).text
            assert f["text"] == offline[key]
    assert lag is not None and lag <= 0.05
