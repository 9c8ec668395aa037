"""Python SDK for protocol v1: an asyncio client that needs numpy and websockets, never torch.

    async with StreamingClient("ws://127.0.0.1:8000/v1/asr", language="English") as client:
        await client.send_audio(pcm)             # bytes in the session's encoding, or a numpy array
        async for event in client:               # typed messages: SpeechStarted, TranscriptPartial, ...
            ...
        done = await client.close()              # close_stream, wait for the last finals and `done`

Policy: events arrive in the server's order, as the dataclasses of `protocol.messages`; callbacks
(`on_partial=`, `on_final=`, ...) run for each event as it arrives, for those who prefer them.
Recoverable server errors are `ErrorMessage` events; an error that ends the session, a refused
connection or a lost one raises a typed `ASRError` carrying the server's code and message.
Nothing reconnects behind the caller's back: reconnecting is opening a new client.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ..protocol.messages import (CLOSE_CODES, Done, ErrorMessage, ProtocolError, SessionCreated, SessionUpdated,
                                 SpeechStarted, TranscriptFinal, TranscriptPartial, parse_server)

DEFAULT_URL = "ws://127.0.0.1:8000/v1/asr"
NORMAL_CLOSES = (1000, 1001)
CALLBACKS = {SpeechStarted: "on_speech_started", TranscriptPartial: "on_partial", TranscriptFinal: "on_final",
             ErrorMessage: "on_error", SessionUpdated: "on_update", Done: "on_done"}


class ASRError(RuntimeError):
    """A failure of the session; `code` is the server's error code (docs/protocol.md) or one of
    connect_failed, unauthorized, forbidden, unavailable, connection_lost."""

    def __init__(self, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retry_after = code, message, retry_after


class StreamingClient:
    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, *, language: str | None = None,
                 sample_rate: int = 16000, encoding: str = "pcm_s16le", options: dict | None = None,
                 open_timeout: float = 10.0, **callbacks: Callable[[Any], Any]):
        unknown = set(callbacks) - set(CALLBACKS.values())
        if unknown:
            raise TypeError(f"unknown callback {sorted(unknown)[0]!r}; known: {', '.join(CALLBACKS.values())}")
        query = {"language": language, "sample_rate": sample_rate, "encoding": encoding}
        self.url = url + ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in query.items() if v)
        self.api_key, self.encoding, self.open_timeout = api_key, encoding, open_timeout
        self.options = options or {}  # session.update values sent right after connecting
        self.callbacks = callbacks
        self.created: SessionCreated | None = None
        self.done: Done | None = None
        self._ws = self._reader = None
        self._events: asyncio.Queue = asyncio.Queue()
        self._failure: ASRError | None = None
        self._last_error: ErrorMessage | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def connect(self) -> SessionCreated:
        """Open the session; ASRError(unauthorized | forbidden | unavailable | connect_failed | <server code>)."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            self._ws = await connect(self.url, additional_headers=headers, compression=None, max_size=None,
                                     open_timeout=self.open_timeout)
        except InvalidStatus as e:
            raise _http_error(e.response) from None
        except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as e:
            raise ASRError("connect_failed", f"cannot connect to {self.url.split('?')[0]}: {_reason(e)}") from None
        first = await self._next_message()
        if not isinstance(first, SessionCreated):  # refused after the upgrade (invalid_config, overloaded)
            await self._ws.close()
            if isinstance(first, ErrorMessage):
                raise ASRError(first.code, first.message)
            raise self._failure or ASRError("invalid_message", "the server did not open a session")
        self.created = first
        self._reader = asyncio.create_task(self._read_loop())
        if self.options:
            await self.update(**self.options)
        return first

    async def close(self, timeout: float | None = 60.0) -> Done:
        """Send close_stream and wait for the last finals and `done` (they still reach the events)."""
        await self._send(json.dumps({"type": "close_stream"}))
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        if self.done is None:
            raise self._failure or ASRError("connection_lost", "the server closed without `done`")
        return self.done

    async def aclose(self) -> None:
        """Drop the connection without waiting for finals."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> StreamingClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # -- sending --------------------------------------------------------------------------------------
    async def send_audio(self, audio: bytes | bytearray | memoryview | np.ndarray) -> None:
        """PCM bytes in the session's encoding, or mono samples: int16, or floats in [-1, 1]."""
        await self._send(audio if isinstance(audio, (bytes, bytearray, memoryview)) else self._encode(audio))

    async def update(self, **values: Any) -> None:
        """session.update (language, context, sample_rate, encoding, interim_results, word_timestamps, vad)."""
        if "encoding" in values:
            self.encoding = values["encoding"]
        await self._send(json.dumps({"type": "session.update", **values}))

    async def finalize(self) -> None:
        await self._send(json.dumps({"type": "finalize"}))

    async def keepalive(self) -> None:
        await self._send(json.dumps({"type": "keepalive"}))

    def _encode(self, x: np.ndarray) -> bytes:
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono, shape (samples,), got {x.shape}")
        if x.dtype == np.int16 and self.encoding == "pcm_s16le":
            return x.astype("<i2", copy=False).tobytes()
        x = x.astype(np.float32) / (32768.0 if x.dtype == np.int16 else 1.0)
        if self.encoding == "pcm_f32le":
            return x.astype("<f4", copy=False).tobytes()
        return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()

    async def _send(self, data) -> None:
        if self._ws is None:
            raise ASRError("connect_failed", "not connected: call connect() first")
        if self._failure is not None:
            raise self._failure
        try:
            await self._ws.send(data)
        except ConnectionClosed:
            raise self._ended_error() from None

    # -- receiving ------------------------------------------------------------------------------------
    def __aiter__(self):
        return self.events()

    async def events(self):
        """Every server message after session.created, in order, until `done`; raises ASRError when
        the session ends otherwise."""
        while True:
            ev = await self._events.get()
            if isinstance(ev, ASRError):
                raise ev
            if ev is None:
                return
            yield ev

    async def _read_loop(self) -> None:
        try:
            while (msg := await self._next_message()) is not None:
                self._dispatch(msg)
                if isinstance(msg, Done):
                    self.done = msg
        finally:
            self._events.put_nowait(self._failure)  # None: the end of a normal session

    async def _next_message(self):
        """The next parsed message; None once closed normally (sets _failure otherwise)."""
        try:
            return parse_server(await self._ws.recv())
        except ConnectionClosed:
            if self._ws.close_code not in NORMAL_CLOSES or self.done is None and self._last_error is not None:
                self._failure = self._ended_error()
            return None
        except ProtocolError as e:
            self._failure = ASRError(e.code, f"unreadable server message: {e.message}")
            await self._ws.close()
            return None

    def _dispatch(self, msg) -> None:
        if isinstance(msg, ErrorMessage):
            self._last_error = msg if msg.code in CLOSE_CODES else self._last_error
        self._events.put_nowait(msg)
        name = CALLBACKS.get(type(msg))
        if name in self.callbacks:
            self.callbacks[name](msg)

    def _ended_error(self) -> ASRError:
        if self._last_error is not None:
            return ASRError(self._last_error.code, self._last_error.message)
        code, reason = self._ws.close_code, self._ws.close_reason
        return ASRError("connection_lost", f"the connection closed ({code} {reason})".strip())


def _http_error(response) -> ASRError:
    body = response.body.decode("utf-8", "replace").strip()
    status = response.status_code
    if status == 401:
        return ASRError("unauthorized", f"the server refused the API key (HTTP 401): {body}")
    if status == 403:
        return ASRError("forbidden", f"the server refused this origin (HTTP 403): {body}")
    if status == 503:
        after = response.headers.get("Retry-After")
        wait = float(after) if after and after.replace(".", "", 1).isdigit() else None
        hint = f"; retry after {after} s" if after else ""
        return ASRError("unavailable", f"the server is unavailable (HTTP 503): {body}{hint}", retry_after=wait)
    return ASRError("connect_failed", f"the server answered HTTP {status}: {body}")


def _reason(e: Exception) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__
