"""The WebSocket server: protocol v1 at /v1/asr, plus /health, /metrics and the web client, one port.

The only module that imports the websockets server. It admits or refuses requests before the
upgrade (auth 401, origin 403, capacity or not ready 503 + Retry-After), hands each admitted
socket to a Connection, and drains on shutdown: stop admitting, end every session (its finals are
delivered), close 1001, all within `drain_seconds`.
Model code never runs here: the engine's worker thread does it.
"""
from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import mimetypes
import re
import ssl
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from ..streaming.options import StreamOptions
from .config import SessionConfig
from .connection import Connection
from .messages import ENCODINGS, MAX_RATE, MIN_RATE, PROTOCOL_VERSION
from .metrics import Metrics

log = logging.getLogger("asrstream.server")
SECRETS = re.compile(r"(token=|Bearer\s+)[^&\s'\"]+", re.IGNORECASE)
WEB_ROOT = Path(__file__).resolve().parent.parent / "clients" / "web"
ASR_PATH = "/v1/asr"
CLOSE_TIMEOUT = 2.0  # seconds to wait for the peer's close frame (a live peer answers at once; a dead one never)


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port (tests)
    api_key: str | None = None  # clients must present it (Bearer header or ?token=)
    allowed_origins: tuple[str, ...] = ()  # browser Origins allowed to connect; empty: any
    max_frame_bytes: int = 1 << 20  # larger frames close the connection with 1009
    idle_timeout: float = 30.0  # seconds without audio or keepalive before a session is ended
    max_session_seconds: float = 4 * 3600.0
    send_timeout: float = 30.0  # a client that takes longer to accept one message is a slow reader
    max_pending_messages: int = 256  # unsent messages that make a client a slow reader
    drain_seconds: float = 30.0  # shutdown: time given to sessions to deliver their finals
    ping_interval: float = 20.0  # the server pings every this many seconds; a peer that does not
    ping_timeout: float = 20.0  # answer within this many is dead (half-open) and closed with 1011
    retry_after: int = 5  # seconds, in 503 answers
    step_deadline: float = 30.0  # a worker iteration running longer makes the server unhealthy (503, no admission)
    model_name: str = ""
    options: StreamOptions = field(default_factory=StreamOptions)  # defaults for every session
    web_root: Path = WEB_ROOT
    certfile: str | None = None  # TLS: serve wss:// and https:// (the page's microphone needs a secure origin)
    keyfile: str | None = None


class Server:
    def __init__(self, settings: ServerSettings, engine=None, metrics: Metrics | None = None):
        self.settings, self.metrics = settings, metrics or Metrics()
        self.engine = None
        self.draining = False
        self.connections: set[Connection] = set()
        self._server = self._probe = None
        if engine is not None:
            self.attach(engine)

    def attach(self, engine) -> None:
        """The model is loaded: start admitting sessions (until then /health and /v1/asr answer 503).

        Everything alive now (torch, transformers, the model: ~400k objects) is frozen out of the
        garbage collector: one full collection over them held the event loop for ~180 ms."""
        gc.freeze()
        self.engine = engine
        engine.on_pass = self.metrics.observe_pass
        engine.on_batch = self.metrics.rows.observe

    @property
    def ready(self) -> bool:
        return self.state == "ok"

    @property
    def state(self) -> str:
        """ok, loading, draining, or stalled (the engine's current step runs past step_deadline)."""
        if self.draining:
            return "draining"
        if self.engine is None:
            return "loading"
        return "stalled" if self.engine.busy_for > self.settings.step_deadline else "ok"

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        s = self.settings
        tls = None
        if s.certfile:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(s.certfile, s.keyfile)
        self._server = await serve(self._handle, s.host, s.port, process_request=self._admit, compression=None,
                                   max_size=s.max_frame_bytes, max_queue=16, close_timeout=CLOSE_TIMEOUT,
                                   ping_interval=s.ping_interval, ping_timeout=s.ping_timeout,
                                   server_header="asrstream", ssl=tls,
                                   logger=_websockets_logger())
        self._probe = asyncio.create_task(self._probe_loop())
        log.info("listening on %s://%s:%d%s", "wss" if tls else "ws", s.host, self.port, ASR_PATH)

    async def drain(self) -> None:
        """Stop admitting; end every session, delivering its finals; close them 1001; stop the engine."""
        self.draining = True
        conns = list(self.connections)
        if conns:
            done, pending = await asyncio.wait([asyncio.create_task(self._drain_one(c)) for c in conns],
                                               timeout=self.settings.drain_seconds)
            if pending:
                log.warning("drain: %d sessions did not finish in %g s", len(pending), self.settings.drain_seconds)
        await self.stop()

    async def _drain_one(self, conn: Connection) -> None:
        conn.drain()
        await conn.ws.wait_closed()

    async def stop(self) -> None:
        """Close the port and every connection left (1001); the engine's shutdown ends their sessions."""
        self._server.close(close_connections=True)
        if self.engine is not None:
            await asyncio.to_thread(self.engine.shutdown)
        await self._server.wait_closed()
        if self._probe:
            self._probe.cancel()

    # -- sessions -----------------------------------------------------------------------------------
    async def _handle(self, ws) -> None:
        conn = Connection(ws, self)
        self.connections.add(conn)
        try:
            await conn.serve()
        finally:
            self.connections.discard(conn)

    def default_config(self) -> SessionConfig:
        return SessionConfig(self.settings.options, can_align=self.engine.rt.aligner is not None)

    def capabilities(self) -> dict:
        s = self.settings
        return {"encodings": list(ENCODINGS), "sample_rates": [MIN_RATE, MAX_RATE],
                "word_timestamps": self.engine.rt.aligner is not None,
                "languages": list(self.engine.rt.model.languages), "max_frame_bytes": s.max_frame_bytes,
                "idle_timeout_s": s.idle_timeout, "max_session_s": s.max_session_seconds,
                "protocol_version": PROTOCOL_VERSION}

    # -- HTTP, before any upgrade -------------------------------------------------------------------
    def _admit(self, conn, request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/health":
            return self._health(conn)
        if url.path == "/metrics":
            return self._refusal(conn, request, url.query) or self._metrics()
        if url.path == ASR_PATH:
            if refused := self._refusal(conn, request, url.query):
                return refused
            if not self.ready or max(self.engine.sessions, len(self.connections)) >= self.engine.max_sessions:
                why = {"ok": "at capacity", "draining": "shutting down", "loading": "loading the model",
                       "stalled": "stalled on a step"}[self.state]
                return self._reject(conn, HTTPStatus.SERVICE_UNAVAILABLE, f"server {why}; retry later",
                                    {"Retry-After": str(self.settings.retry_after)})
            return None
        return self._static(conn, url.path)

    def _refusal(self, conn, request, query: str) -> Response | None:
        """401 without the API key, 403 from an Origin not allowed; None when admitted."""
        allowed = self.settings.allowed_origins
        origin = request.headers.get("Origin")
        if allowed and origin is not None and origin not in allowed:
            return self._reject(conn, HTTPStatus.FORBIDDEN, "origin not allowed")
        key = self.settings.api_key
        if key and not hmac.compare_digest(_token(request, query).encode(), key.encode()):
            return self._reject(conn, HTTPStatus.UNAUTHORIZED, "missing or invalid API key",
                                {"WWW-Authenticate": 'Bearer realm="asrstream"'})
        return None

    def _reject(self, conn, status: HTTPStatus, text: str, headers: dict | None = None) -> Response:
        self.metrics.rejected.labels(str(int(status))).inc()
        response = conn.respond(status, text + "\n")
        for k, v in (headers or {}).items():
            response.headers[k] = v
        return response

    def _health(self, conn) -> Response:
        state = self.state
        body = {"status": state, "sessions": self.engine.sessions if self.engine else 0,
                "max_sessions": self.engine.max_sessions if self.engine else 0}
        status = HTTPStatus.OK if self.ready else HTTPStatus.SERVICE_UNAVAILABLE
        return _response(status, json.dumps(body).encode(), "application/json")

    def _metrics(self) -> Response:
        body, kind = self.metrics.exposition()
        return _response(HTTPStatus.OK, body, kind)

    def _static(self, conn, path: str) -> Response:
        root = self.settings.web_root.resolve()
        target = (root / (path.lstrip("/") or "index.html")).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return self._reject(conn, HTTPStatus.NOT_FOUND, "not found")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return _response(HTTPStatus.OK, target.read_bytes(), kind)

    # -- event-loop lag probe ---------------------------------------------------------------------
    async def _probe_loop(self, period: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(period)
            self.metrics.loop_lag.observe(max(0.0, loop.time() - t - period))


class RedactSecrets(logging.Filter):
    """API keys out of log records: `token=...` and `Bearer ...` become `***` (the websockets
    library logs request lines and headers at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if SECRETS.search(text):
            record.msg, record.args = SECRETS.sub(r"\1***", text), ()
        return True


def _websockets_logger() -> logging.Logger:
    logger = logging.getLogger("asrstream.websockets")
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    return logger


def _token(request, query: str) -> str:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return parse_qs(query).get("token", [""])[-1]


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])
    return Response(int(status), status.phrase, headers, body)
