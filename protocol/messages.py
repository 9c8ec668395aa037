"""Protocol v1 messages, sans I/O: parsed from and dumped to JSON text frames (no torch, no asyncio).

Every message is a JSON object whose "type" names it; times are seconds from the stream start.
Client -> server: `session.update`, `input_audio_buffer.append`, `finalize`, `close_stream`,
`keepalive` (audio itself travels in binary frames). Server -> client: `session.created`,
`session.updated`, `speech.started`, `transcript.partial`, `transcript.final`, `error`, `done`.

`parse_client(text)` returns a typed message or raises `ProtocolError` whose `code` is one of
ERROR_CODES; unknown fields are errors too (a typo must not be silently ignored). `parse_server(text)`
is the client side's reader of server messages.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

PROTOCOL_VERSION = 1
MAX_TEXT_BYTES = 1 << 20
ENCODINGS = ("pcm_s16le", "pcm_f32le")
MIN_RATE, MAX_RATE = 8000, 48000
ERROR_CODES = {  # every `error` code; those in CLOSE_CODES end the connection, the others do not
    "invalid_json": "a text frame that is not UTF-8 JSON",
    "invalid_message": "JSON that is not an object with a string `type`",
    "unknown_type": "a `type` this protocol does not define",
    "invalid_field": "a missing, unknown, mistyped or out-of-range field",
    "message_too_large": "a text frame over 1 MiB",
    "bad_audio": "audio that cannot be decoded (odd base64, NaN/Inf samples); the frame is dropped",
    "stream_closed": "audio or a command after `close_stream`; ignored",
    "invalid_config": "a query parameter of the connection URL is invalid",
    "idle_timeout": "no audio or keepalive for the idle timeout",
    "max_duration": "the session reached the server's maximum duration",
    "slow_reader": "the client stopped reading the server's messages",
    "overloaded": "the server has no free session slot",
    "internal_error": "the server failed while decoding this session",
    "shutting_down": "the server is shutting down",
}
CLOSE_CODES = {  # fatal error codes -> the WebSocket close code that follows the `error`
    "invalid_config": 1008, "idle_timeout": 1008, "max_duration": 1008, "slow_reader": 1008,
    "overloaded": 1013, "internal_error": 1011, "shutting_down": 1001,
}


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# -- client -> server -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionUpdate:
    """Only the fields the client sent; each validated for type and range."""
    values: dict
    type: str = "session.update"


@dataclass(frozen=True)
class AudioAppend:
    audio: bytes  # raw PCM in the session's encoding
    type: str = "input_audio_buffer.append"


@dataclass(frozen=True)
class Finalize:
    type: str = "finalize"


@dataclass(frozen=True)
class CloseStream:
    type: str = "close_stream"


@dataclass(frozen=True)
class Keepalive:
    type: str = "keepalive"


VAD_FIELDS = {"silence_ms": int, "max_segment_s": float, "aggressiveness": int}
UPDATE_FIELDS = {"language": (str, type(None)), "context": str, "sample_rate": int, "encoding": str,
                 "interim_results": bool, "word_timestamps": bool, "vad": dict}


def parse_client(text: str | bytes) -> SessionUpdate | AudioAppend | Finalize | CloseStream | Keepalive:
    """One client text frame -> a typed message; ProtocolError(code, message) when it is not one."""
    obj = _load(text)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", "a message must be a JSON object with a string `type`")
    rest = {k: v for k, v in obj.items() if k != "type"}
    if kind == "session.update":
        return SessionUpdate(_update_values(rest))
    if kind == "input_audio_buffer.append":
        _only(rest, {"audio"}, kind)
        return AudioAppend(_b64(rest.get("audio")))
    simple = {"finalize": Finalize, "close_stream": CloseStream, "keepalive": Keepalive}
    if kind in simple:
        _only(rest, set(), kind)
        return simple[kind]()
    raise ProtocolError("unknown_type", f"unknown message type {kind[:64]!r}; see docs/protocol.md")


def _load(text: str | bytes) -> dict:
    if len(text) > MAX_TEXT_BYTES:
        raise ProtocolError("message_too_large", f"text messages are limited to {MAX_TEXT_BYTES} bytes")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ProtocolError("invalid_json", "a text message must be valid UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("invalid_message", "a message must be a JSON object with a string `type`")
    return obj


def _only(rest: dict, allowed: set, kind: str) -> None:
    extra = sorted(set(rest) - allowed)
    if extra:
        raise ProtocolError("invalid_field", f"{kind} has no field {str(extra[0])[:64]!r}")


def _update_values(rest: dict) -> dict:
    _only(rest, set(UPDATE_FIELDS), "session.update")
    out = {}
    for name, value in rest.items():
        _check_type(name, value, UPDATE_FIELDS[name])
        out[name] = value
    if "vad" in out:
        _only(out["vad"], set(VAD_FIELDS), "vad")
        for name, value in out["vad"].items():
            _check_type(f"vad.{name}", value, VAD_FIELDS[name])
    rate = out.get("sample_rate")
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise ProtocolError("invalid_field", f"sample_rate must be in [{MIN_RATE}, {MAX_RATE}], got {rate}")
    if out.get("encoding", ENCODINGS[0]) not in ENCODINGS:
        raise ProtocolError("invalid_field", f"encoding must be one of {', '.join(ENCODINGS)}")
    return out


def _check_type(name: str, value: Any, want) -> None:
    kinds = want if isinstance(want, tuple) else (want,)
    ok = any(_is(value, k) for k in kinds)
    if not ok:
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ProtocolError("invalid_field", f"{name} must be {names}")


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError("invalid_field", "input_audio_buffer.append needs `audio`: base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_audio", "`audio` is not valid base64") from None


# -- server -> client -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionCreated:
    session_id: str
    config: dict
    capabilities: dict
    model: str
    protocol_version: int = PROTOCOL_VERSION
    type: str = "session.created"


@dataclass(frozen=True)
class SessionUpdated:
    config: dict  # the effective options after a session.update
    type: str = "session.updated"


@dataclass(frozen=True)
class SpeechStarted:
    segment_id: int
    start: float
    type: str = "speech.started"


@dataclass(frozen=True)
class TranscriptPartial:
    segment_id: int
    seq: int
    stable_text: str
    unstable_text: str
    start: float
    audio_end: float
    language: str
    text: str = ""  # stable_text + unstable_text, filled in
    type: str = "transcript.partial"

    def __post_init__(self):
        object.__setattr__(self, "text", self.stable_text + self.unstable_text)


@dataclass(frozen=True)
class TranscriptFinal:
    segment_id: int
    text: str
    language: str
    start: float
    end: float
    reason: str
    words: list = field(default_factory=list)
    type: str = "transcript.final"


@dataclass(frozen=True)
class ErrorMessage:
    code: str
    message: str
    type: str = "error"


@dataclass(frozen=True)
class Done:
    session_id: str
    audio_seconds: float
    segments: int
    type: str = "done"


def dumps(msg) -> str:
    """A server message as one JSON text frame, `type` first."""
    body = {f.name: getattr(msg, f.name) for f in fields(msg) if f.name != "type"}
    return json.dumps({"type": msg.type, **body}, ensure_ascii=False, separators=(",", ":"))


SERVER_MESSAGES = {cls.type: cls for cls in (SessionCreated, SessionUpdated, SpeechStarted, TranscriptPartial,
                                                TranscriptFinal, ErrorMessage, Done)}


def parse_server(text: str | bytes):
    """One server text frame -> its typed message (clients). Unknown fields are ignored, so a client
    keeps working when a later server adds some; an unknown type or a missing field is a ProtocolError."""
    obj = _load(text)
    cls = SERVER_MESSAGES.get(obj.get("type"))
    if cls is None:
        raise ProtocolError("unknown_type", f"unknown server message type {str(obj.get('type'))[:64]!r}")
    names = {f.name for f in fields(cls) if f.init and f.name != "type"}
    try:
        return cls(**{k: v for k, v in obj.items() if k in names})
    except TypeError:
        raise ProtocolError("invalid_message", f"{cls.type} lacks a required field") from None
