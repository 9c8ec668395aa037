"""The Python SDK and the command-line clients against a real server (port 0, tiny checkpoints)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr

from asrstream import load_aligner, load_model
from asrstream.clients.cli import render
from asrstream.clients.sdk import ASRError, StreamingClient
from asrstream.protocol.messages import (Done, ErrorMessage, SessionUpdated, SpeechStarted, TranscriptFinal,
                                         TranscriptPartial)
from asrstream.streaming.engine import Engine

from .servers import running, url
from .speech import SENTENCES, SR, silence, spans_of, tts


@pytest.fixture(scope="module")
def engine(tiny_asr_dir, tiny_aligner_dir):
    e = Engine(load_model(str(tiny_asr_dir), dtype="float32"), load_aligner(str(tiny_aligner_dir), dtype="float32"))
    yield e
    e.shutdown()


@pytest.fixture(scope="module")
def speech():
    return spans_of([silence(0.3), tts(SENTENCES[0]), silence(1.0), tts(SENTENCES[1]), silence(0.3)])[0]


@pytest.fixture()
def wav_file(tmp_path, speech):
    path = tmp_path / "speech.wav"
    sf.write(path, speech, SR, subtype="PCM_16")
    return path


async def _sdk_run(uri, audio, **kw) -> tuple[list, Done]:
    async with StreamingClient(uri, **kw) as client:
        for i in range(0, len(audio), 4000):
            await client.send_audio(audio[i : i + 4000])
        done = await client.close()
        return [e async for e in client], done


async def test_sdk_full_session_with_events_and_callbacks(engine, speech):
    seen = []
    async with running(engine) as server:
        events, done = await _sdk_run(url(server), speech, on_final=seen.append, on_partial=seen.append)
    kinds = {type(e) for e in events}  # partials depend on timing: fed this fast, a segment may close first
    assert {SpeechStarted, TranscriptFinal, Done} <= kinds
    finals = [e for e in events if isinstance(e, TranscriptFinal)]
    assert len(finals) == 2 and all(f.words for f in finals) and events[-1] == done
    assert done.segments == 2 and done.audio_seconds == round(len(speech) / SR, 3)
    assert seen == [e for e in events if isinstance(e, (TranscriptFinal, TranscriptPartial))]


async def test_sdk_int16_float32_and_bytes_give_the_same_finals(engine, speech):
    q = np.round(np.clip(speech, -1, 1) * 32767).astype(np.int16)
    async with running(engine) as server:
        runs = [await _sdk_run(url(server), q),
                await _sdk_run(url(server), q.astype(np.float32) / 32768.0, encoding="pcm_f32le"),
                await _sdk_run(url(server), q.tobytes())]
    texts = [[(e.text, e.start, e.end) for e in events if isinstance(e, TranscriptFinal)] for events, _ in runs]
    assert texts[0] == texts[1] == texts[2] and texts[0]


async def test_sdk_errors_are_typed(engine, tiny_asr_dir):
    async with running(engine, api_key="k", retry_after=9) as server:
        with pytest.raises(ASRError) as e:
            await StreamingClient(url(server)).connect()
        assert e.value.code == "unauthorized" and "401" in e.value.message
        with pytest.raises(ASRError) as e:
            await StreamingClient(url(server), "k", language="Klingon").connect()
        assert e.value.code == "invalid_config" and "Klingon" in e.value.message
    async with running(None, retry_after=9) as loading:
        with pytest.raises(ASRError) as e:
            await StreamingClient(url(loading)).connect()
        assert e.value.code == "unavailable" and e.value.retry_after == 9
    with pytest.raises(ASRError) as e:
        await StreamingClient(f"ws://127.0.0.1:{_free_port()}/v1/asr").connect()
    assert e.value.code == "connect_failed" and "refused" in e.value.message


async def test_sdk_recoverable_error_is_an_event_fatal_one_raises(engine):
    async with running(engine, idle_timeout=0.8) as server:
        async with StreamingClient(url(server), encoding="pcm_f32le") as client:
            await client.send_audio(np.array([0.0, np.nan], dtype="<f4").tobytes())
            codes = []
            with pytest.raises(ASRError) as e:
                async for ev in client:
                    codes += [ev.code] if isinstance(ev, ErrorMessage) else []
        assert codes == ["bad_audio", "idle_timeout"] and e.value.code == "idle_timeout"


def test_importing_the_sdk_and_cli_clients_does_not_import_torch():
    code = ("import sys, asrstream.clients.sdk, asrstream.clients.cli, asrstream.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'soxr', 'webrtcvad') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def _cli(*args: str, interrupt_when=None) -> tuple[int, str, str]:
    """Run the CLI; with `interrupt_when`, send SIGINT (Ctrl-C) once that check returns true."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "asrstream", *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env={**os.environ, "ASRSTREAM_API_KEY": ""})
    while interrupt_when is not None and not interrupt_when() and proc.returncode is None:
        await asyncio.sleep(0.05)
    if interrupt_when is not None:
        proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("fmt", ["text", "json", "srt", "vtt"])
async def test_cli_stream_writes_the_live_finals(engine, speech, wav_file, fmt):
    async with running(engine) as server:
        events, _ = await _sdk_run(url(server), speech)
        rc, out, err = await _cli("stream", str(wav_file), "--url", url(server), "--format", fmt)
    finals = [e for e in events if isinstance(e, TranscriptFinal)]
    assert rc == 0 and "Traceback" not in err
    assert out == render(finals, fmt)
    if fmt == "text":
        assert out.splitlines() == [f.text for f in finals]
    if fmt == "json":
        assert json.loads(out)["text"] == " ".join(f.text for f in finals)
    if fmt in ("srt", "vtt"):
        assert "-->" in out and finals[0].words[0]["word"] in out


async def test_cli_stream_sends_the_files_own_rate_in_real_time(engine, tmp_path):
    audio = np.concatenate([silence(0.2), tts(SENTENCES[2]), silence(0.2)])
    path = tmp_path / "speech44k.flac"
    sf.write(path, soxr.resample(audio, SR, 44100), 44100)
    async with running(engine) as server:
        t0 = asyncio.get_running_loop().time()
        rc, out, err = await _cli("stream", str(path), "--url", url(server), "--realtime")
        took = asyncio.get_running_loop().time() - t0
        audio_in = server.metrics.audio._value.get()
    assert rc == 0 and out.strip()
    assert abs(audio_in - len(audio) / SR) < 0.01 and took >= len(audio) / SR


async def test_cli_failures_are_one_line(engine, wav_file):
    cases = []
    rc, out, err = await _cli("stream", str(wav_file), "--url", f"ws://127.0.0.1:{_free_port()}/v1/asr")
    cases.append((rc, err, "connection refused"))
    async with running(engine, api_key="k") as server:
        rc, out, err = await _cli("stream", str(wav_file), "--url", url(server))
        cases.append((rc, err, "HTTP 401"))
        rc, out, err = await _cli("stream", str(wav_file), "--url", url(server), "--api-key", "k", "--language", "Klingon")
        cases.append((rc, err, "invalid_config"))
    async with running(None, retry_after=7) as loading:
        rc, out, err = await _cli("stream", str(wav_file), "--url", url(loading))
        cases.append((rc, err, "retry after 7 s"))
    rc, out, err = await _cli("stream", "/no/such.wav")
    cases.append((rc, err, "/no/such.wav"))
    for rc, err, what in cases:
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("asrstream: error:") and what in lines[0], err


async def test_cli_mic_ctrl_c_sends_close_stream_and_prints_the_last_finals(engine, wav_file):
    async with running(engine) as server:
        audio = server.metrics.audio._value
        rc, out, err = await _cli("mic", "--url", url(server), "--input-file", str(wav_file),
                                  interrupt_when=lambda: audio.get() >= 3.0)
        closes = server.metrics.closed.labels("1000")._value.get()
        audio_in = audio.get()
    lines = out.strip().splitlines()
    assert rc == 0 and "Traceback" not in err and closes == 1
    assert 3.0 <= audio_in < len(sf.read(wav_file)[0]) / SR - 1.0  # stopped by Ctrl-C, not by the file's end
    assert lines and all(line.startswith("[00:0") for line in lines)


async def test_cli_mic_without_an_input_device_says_so():
    rc, out, err = await _cli("mic", "--list-devices")
    assert rc == 0 and out.strip()
    rc, out, err = await _cli("mic", "--url", "ws://127.0.0.1:9/v1/asr")
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "no microphone input found" in err or "pip install 'asrstream[mic]'" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_voice_assistant_example_takes_turns_and_barges_in(engine, tmp_path):
    audio = spans_of([silence(0.3), tts(SENTENCES[0]), silence(1.5), tts(SENTENCES[1]), silence(1.2)])[0]
    path = tmp_path / "turns.wav"
    sf.write(path, audio, SR, subtype="PCM_16")
    example = os.path.join(os.path.dirname(__file__), "..", "docs", "examples", "voice_assistant.py")
    async with running(engine) as server:
        events, _ = await _sdk_run(url(server), audio)
        proc = await asyncio.create_subprocess_exec(sys.executable, example, str(path), "--url", url(server),
                                                    "--speak-seconds", "5", stdout=subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    turns = [f"user: {e.text}" for e in events if isinstance(e, TranscriptFinal) and e.reason == "endpoint"]
    assert proc.returncode == 0 and len(turns) == 2
    assert out.decode().splitlines() == [turns[0], "barge-in: assistant stopped", turns[1]]


async def test_sdk_options_are_sent_as_session_update(engine):
    async with running(engine) as server:
        async with StreamingClient(url(server), options={"context": "Stella", "vad": {"silence_ms": 400}}) as client:
            await client.send_audio(silence(0.2))
            await client.close()
            updated = [e async for e in client if isinstance(e, SessionUpdated)]
    assert updated[0].config["context"] == "Stella" and updated[0].config["vad"]["silence_ms"] == 400
