"""One WebSocket connection of protocol v1: the socket on one side, an engine session on the other.

Three tasks per connection, none of which runs model code:
- the reader takes frames: binary audio (decoded, resampled, fed to the session), JSON commands;
  it keeps the idle and duration deadlines, and while the session is too far behind it stops
  reading, so a client sending faster than real time is slowed down by TCP (back-pressure);
- the pump turns the session's events into protocol messages and puts them in the outbox;
- the sender writes the outbox to the socket (a partial may be replaced by a newer one while it
  waits; finals never are).
Endings: `close_stream` -> finals, `done`, close 1000. The server ends a session (idle timeout, max
duration, shutdown) the same way: `error`, finals, `done`, then the close code of messages.CLOSE_CODES.
A client that disappears or stops reading loses its session at once (`abort`: no work is wasted).
"""
from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.exceptions import ConnectionClosed

from ..streaming import events
from ..streaming.errors import EngineClosed, EngineError
from .audio import PcmDecoder, TARGET_RATE
from .config import query_values
from .messages import (CLOSE_CODES, AudioAppend, CloseStream, Done, ErrorMessage, Finalize, Keepalive,
                       ProtocolError, SessionCreated, SessionUpdate, SessionUpdated, SpeechStarted,
                       TranscriptFinal, TranscriptPartial, dumps, parse_client)
from .outbox import Outbox

log = logging.getLogger("asrstream.server")
DRAIN_GRACE = 0.5  # seconds of audio still accepted after a shutdown begins
MAX_ARRIVALS = 20000  # arrival times kept for latency metrics (trimmed at every final)


class Connection:
    def __init__(self, ws, server):
        self.ws, self.server, self.engine = ws, server, server.engine
        self.settings, self.metrics = server.settings, server.metrics
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        self.outbox = Outbox(self.settings.max_pending_messages)
        self.session = self.config = self.decoder = self.reader = None
        self.end_code, self.end_reason = 1000, ""
        self.closing = False  # close_stream received, or the server is ending the session
        self.gone = False  # the client disconnected or stopped reading
        self.idle_at = self.opened + self.settings.idle_timeout
        self.expires_at = self.opened + self.settings.max_session_seconds
        self.drain_at = float("inf")  # shutdown: audio arriving until then is still transcribed
        self._timeout: asyncio.Timeout | None = None
        self.arrivals: list[tuple[int, float]] = []  # (16 kHz samples received so far, loop time)
        self.received = 0
        self.decided: dict[int, float] = {}  # segment id -> stream time its end was decided (final latency)
        self.result: events.Closed | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    async def serve(self) -> None:
        try:
            if await self._open():
                await self._run()
        except Exception:  # a bug in this module: the client gets a generic error, the log the details
            log.exception("session %s failed", self.sid)
            self.end_code, self.end_reason = 1011, "internal_error"
            if self.session is not None:
                self.session.abort()
            with contextlib.suppress(Exception):
                await self.ws.send(dumps(ErrorMessage("internal_error", "the server failed; the session was closed")))
        finally:
            await self._finish()

    @property
    def sid(self) -> str:
        return self.session.id if self.session is not None else "-"

    async def _open(self) -> bool:
        """Config from the defaults and the URL, then a session; an `error` and a close if either fails."""
        try:
            config = self.server.default_config()
            config = config.apply(query_values(parse_qs(urlsplit(self.ws.request.path).query, keep_blank_values=True)))
            self.engine.language(config.options)
            self.session = self.engine.open_session(config.options)
        except ProtocolError as e:
            return self._refuse("invalid_config", e.message)
        except ValueError as e:
            return self._refuse("invalid_config", str(e))
        except EngineError as e:
            return self._refuse(e.code, str(e))
        self.config, self.decoder = config, PcmDecoder(config.encoding, config.sample_rate)
        self.metrics.sessions.inc()
        self.metrics.opened.inc()
        log.info("session %s open peer=%s", self.sid, _peer(self.ws))
        self.outbox.put(SessionCreated(self.sid, config.to_dict(), self.server.capabilities(), self.settings.model_name))
        return True

    def _refuse(self, code: str, message: str) -> bool:
        self._error(code, message)
        self.outbox.put(None)
        return False

    async def _run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        self.reader = asyncio.create_task(self._read_loop())
        try:
            await self._pump()
        finally:
            self.reader.cancel()
            self.outbox.put(None)
        await sender

    async def _finish(self) -> None:
        if self.session is None:  # refused: send the error, then close
            await self._send_loop()
        try:
            await self.ws.close(self.end_code, self.end_reason)
        except Exception:  # the peer is gone already
            pass
        if self.session is not None:
            self.metrics.sessions.dec()
            r = self.result
            log.info("session %s closed peer=%s duration=%.1fs audio=%.1fs segments=%d code=%d", self.sid,
                     _peer(self.ws), self.loop.time() - self.opened, r.audio_seconds if r else 0.0,
                     r.segments if r else 0, self._close_code())
        self.metrics.closed.labels(str(self._close_code())).inc()

    def _close_code(self) -> int:
        """The code of the close frame this server sent; else the peer's; 1006 if there was none."""
        sent = self.ws.protocol.close_sent
        return sent.code if sent is not None else (self.ws.close_code or 1006)

    def drain(self, grace: float = DRAIN_GRACE) -> None:
        """Server shutdown: audio that arrives within `grace` seconds (frames already on their way)
        is still transcribed; then the session is finished (finals, done) and closed with 1001."""
        self.drain_at = self.loop.time() + grace
        if self._timeout is not None and (self._timeout.when() or float("inf")) > self.drain_at:
            self._timeout.reschedule(self.drain_at)

    # -- reader: socket -> session ------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await self._recv()
                if frame is not None:
                    await self._on_frame(frame)
        except ConnectionClosed:
            self._client_gone()

    async def _recv(self):
        """The next frame, or None after ending the session at the idle, duration or drain deadline."""
        if self.closing:
            return await self.ws.recv()
        try:
            async with asyncio.timeout_at(min(self.idle_at, self.expires_at, self.drain_at)) as self._timeout:
                return await self.ws.recv()
        except TimeoutError:
            if self.loop.time() >= self.drain_at:
                self._error("shutting_down", "the server is shutting down; the session ends after its last final")
            elif self.loop.time() >= self.expires_at:
                self._error("max_duration", f"sessions last at most {self.settings.max_session_seconds:g} s")
            else:
                self._error("idle_timeout", f"no audio or keepalive for {self.settings.idle_timeout:g} s")
            await self._close_stream()
            return None
        finally:
            self._timeout = None

    async def _on_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            return await self._audio(frame)
        try:
            msg = parse_client(frame)
        except ProtocolError as e:
            return self._error(e.code, e.message)
        if isinstance(msg, Keepalive):
            self.idle_at = self.loop.time() + self.settings.idle_timeout
        elif self.closing:
            self._after_close(msg.type)
        elif isinstance(msg, AudioAppend):
            await self._audio(msg.audio)
        elif isinstance(msg, SessionUpdate):
            await self._update(msg.values)
        elif isinstance(msg, Finalize):
            self.session.finalize()
        elif isinstance(msg, CloseStream):
            await self._close_stream()

    async def _audio(self, data: bytes) -> None:
        if self.closing:
            return self._after_close("audio")
        try:
            x = self.decoder.decode(data)
        except ProtocolError as e:
            return self._error(e.code, e.message)
        self.idle_at = self.loop.time() + self.settings.idle_timeout
        await self._feed(x)
        self.idle_at = self.loop.time() + self.settings.idle_timeout  # time spent waiting on us is not idle

    async def _feed(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        arrived = self.loop.time()
        try:
            await self.session.feed(x)
        except EngineClosed:  # the session ended (an engine error): its events say so
            return
        self.received += x.size
        self.arrivals.append((self.received, arrived))
        if len(self.arrivals) > MAX_ARRIVALS:  # hours without a final (silence): keep memory bounded
            del self.arrivals[: MAX_ARRIVALS // 2]
        self.metrics.audio.inc(x.size / TARGET_RATE)

    def _after_close(self, what: str) -> None:
        """Input after the stream was closed: an error if the client closed it; ignored once the
        server ended the session (the client was told why)."""
        if self.end_code == 1000:
            self._error("stream_closed", f"{what} after close_stream is ignored")

    async def _update(self, values: dict) -> None:
        try:
            new = self.config.apply(values)
            self.engine.language(new.options)
        except ProtocolError as e:
            return self._error(e.code, e.message)
        except ValueError as e:
            return self._error("invalid_field", str(e))
        if (new.encoding, new.sample_rate) != (self.config.encoding, self.config.sample_rate):
            await self._feed(self.decoder.flush())
            self.decoder = PcmDecoder(new.encoding, new.sample_rate)
        if new.options != self.config.options:
            self.session.update(new.options)
        self.config = new
        self._queue(SessionUpdated(new.to_dict()))

    async def _close_stream(self) -> None:
        if not self.closing:
            self.closing = True
            await self._feed(self.decoder.flush())
            self.session.close()

    def _client_gone(self) -> None:
        """The client left or stopped reading: nothing more is sent, its session (if any) is dropped."""
        if not self.gone:
            self.gone = True
            if self.session is not None:
                self.session.abort()

    # -- pump: session -> outbox ------------------------------------------------------------------
    async def _pump(self) -> None:
        async for ev in self.session:
            msg = self._message(ev)
            if msg is not None:
                self._queue(msg)

    def _queue(self, msg) -> None:
        """Hand msg to the sender; a client with too many messages waiting is dropped as a slow reader."""
        if not self.gone and not self.outbox.put(msg):
            self._slow_reader()

    def _slow_reader(self) -> None:
        self.end_code, self.end_reason = CLOSE_CODES["slow_reader"], "slow_reader"
        self.metrics.errors.labels("slow_reader").inc()
        self._client_gone()

    def _message(self, ev):
        if isinstance(ev, events.Partial):
            return TranscriptPartial(ev.segment_id, ev.seq, ev.stable_text, ev.unstable_text, ev.start,
                                     ev.audio_end, ev.language)
        if isinstance(ev, events.Final):
            self.decided[ev.segment_id] = ev.decided
            return TranscriptFinal(ev.segment_id, ev.text, ev.language, ev.start, ev.end, ev.reason, ev.words)
        if isinstance(ev, events.SpeechStarted):
            return SpeechStarted(ev.segment_id, ev.start)
        if isinstance(ev, events.Error):
            self._error(ev.code, ev.message)
            return None
        self.result = ev  # Closed
        if ev.reason == "shutdown" and not self.closing:
            self._error("shutting_down", "the server shut down before the session ended")
        return Done(self.sid, ev.audio_seconds, ev.segments) if ev.reason == "close" else None

    def _error(self, code: str, message: str) -> None:
        """Queue an `error`; a fatal code also sets the close code that ends the connection."""
        self.metrics.errors.labels(code).inc()
        if code in CLOSE_CODES and self.end_code == 1000:
            self.end_code, self.end_reason = CLOSE_CODES[code], code
        self._queue(ErrorMessage(code, message))

    # -- sender: outbox -> socket -----------------------------------------------------------------
    async def _send_loop(self) -> None:
        while (msg := await self.outbox.get()) is not None:
            if self.gone:
                continue
            try:
                await asyncio.wait_for(self.ws.send(dumps(msg)), self.settings.send_timeout)
            except TimeoutError:
                self._slow_reader()
            except ConnectionClosed:
                self._client_gone()
            else:
                self._observe_latency(msg)
        self.metrics.coalesced.inc(self.outbox.coalesced)

    def _observe_latency(self, msg) -> None:
        if isinstance(msg, TranscriptPartial):
            self.metrics.partial_lag.observe(self.loop.time() - self._arrival(msg.audio_end))
        elif isinstance(msg, TranscriptFinal):
            decided = self.decided.pop(msg.segment_id, msg.end)
            self.metrics.final_latency.labels(msg.reason).observe(self.loop.time() - self._arrival(decided))
            keep = bisect.bisect_left(self.arrivals, (round(msg.end * TARGET_RATE), 0.0))
            del self.arrivals[: max(0, keep - 1)]  # later messages refer to later audio

    def _arrival(self, t: float) -> float:
        """Loop time at which stream time t (seconds) had arrived."""
        i = bisect.bisect_left(self.arrivals, (round(t * TARGET_RATE), 0.0))
        return self.arrivals[min(i, len(self.arrivals) - 1)][1] if self.arrivals else self.loop.time()


def _peer(ws) -> str:
    addr = ws.remote_address
    return f"{addr[0]}:{addr[1]}" if addr else "-"
