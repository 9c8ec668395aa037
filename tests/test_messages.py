"""Protocol v1 messages: parsing client frames (with documented error codes) and dumping server ones."""
from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from asrstream.protocol.messages import (
    ERROR_CODES, AudioAppend, CloseStream, Done, ErrorMessage, Finalize, Keepalive, ProtocolError,
    SessionCreated, SessionUpdate, TranscriptFinal, TranscriptPartial, dumps, parse_client,
)


def test_client_messages_parse_to_types():
    assert parse_client('{"type":"finalize"}') == Finalize()
    assert parse_client(b'{"type":"close_stream"}') == CloseStream()
    assert parse_client('{"type":"keepalive"}') == Keepalive()
    pcm = bytes(range(10))
    assert parse_client(json.dumps({"type": "input_audio_buffer.append",
                                    "audio": base64.b64encode(pcm).decode()})) == AudioAppend(pcm)
    update = {"type": "session.update", "language": None, "context": "Zoë", "sample_rate": 48000,
              "encoding": "pcm_f32le", "interim_results": False, "word_timestamps": True,
              "vad": {"silence_ms": 500, "max_segment_s": 12.5, "aggressiveness": 3}}
    got = parse_client(json.dumps(update))
    assert isinstance(got, SessionUpdate) and got.values == {k: v for k, v in update.items() if k != "type"}


@pytest.mark.parametrize("frame,code", [
    ("not json", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    ("[" * 100000 + "]" * 100000, "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('"finalize"', "invalid_message"),
    ("{}", "invalid_message"),
    ('{"type": 5}', "invalid_message"),
    ('{"type": "transcribe"}', "unknown_type"),
    ('{"type": "finalize", "now": true}', "invalid_field"),
    ('{"type": "session.update", "langauge": "English"}', "invalid_field"),
    ('{"type": "session.update", "sample_rate": "16000"}', "invalid_field"),
    ('{"type": "session.update", "sample_rate": 16000.0}', "invalid_field"),
    ('{"type": "session.update", "sample_rate": 96000}', "invalid_field"),
    ('{"type": "session.update", "sample_rate": true}', "invalid_field"),
    ('{"type": "session.update", "encoding": "mp3"}', "invalid_field"),
    ('{"type": "session.update", "interim_results": 1}', "invalid_field"),
    ('{"type": "session.update", "vad": {"silence_ms": 1.5}}', "invalid_field"),
    ('{"type": "session.update", "vad": {"max_segment_s": NaN}}', "invalid_field"),
    ('{"type": "session.update", "vad": {"mode": 1}}', "invalid_field"),
    ('{"type": "session.update", "vad": []}', "invalid_field"),
    ('{"type": "input_audio_buffer.append"}', "invalid_field"),
    ('{"type": "input_audio_buffer.append", "audio": 5}', "invalid_field"),
    ('{"type": "input_audio_buffer.append", "audio": "***"}', "bad_audio"),
    ('{"type": "keepalive", "pad": "' + "x" * (1 << 20) + '"}', "message_too_large"),
])
def test_bad_client_frames_get_documented_codes(frame, code):
    with pytest.raises(ProtocolError) as e:
        parse_client(frame)
    assert e.value.code == code and e.value.code in ERROR_CODES
    assert len(e.value.message) < 200 and "Traceback" not in e.value.message


def test_server_messages_dump_type_first_as_json():
    msgs = [SessionCreated("s1", {"language": None}, {"word_timestamps": True}, "Qwen/Qwen3-ASR-0.6B"),
            TranscriptPartial(0, 3, "hello", " wor", 0.5, 2.0, "English"),
            TranscriptFinal(0, "hello world", "English", 0.5, 2.4, "endpoint", [{"word": "hello", "start": 0.6, "end": 0.9}]),
            ErrorMessage("invalid_field", "sample_rate must be int"), Done("s1", 12.5, 2)]
    for m in msgs:
        text = dumps(m)
        assert text.startswith('{"type":"' + m.type + '"')
        assert json.loads(text)["type"] == m.type
    partial = json.loads(dumps(msgs[1]))
    assert partial["text"] == "hello wor" and partial["stable_text"] == "hello"
    assert json.loads(dumps(msgs[0]))["protocol_version"] == 1


def test_messages_import_neither_torch_nor_asyncio_servers():
    code = ("import sys; import asrstream.protocol.messages; "
            "print(any(m in sys.modules for m in ('torch', 'websockets', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
