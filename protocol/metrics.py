"""Prometheus metrics of one server (its own registry, so several servers can live in one process).

Latencies are measured where the user feels them: a partial's lag is the time from the arrival of
the last audio it covers to its being handed to the socket; a final's latency runs from the arrival
of the audio that decided its end (for an endpoint: the end of the trailing silence).
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)
LOOP_LAG = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ROWS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge("asrstream_sessions_active", "Open streaming sessions", registry=r)
        self.opened = Counter("asrstream_sessions", "Sessions opened", registry=r)
        self.closed = Counter("asrstream_session_closes", "Sessions closed, by WebSocket close code",
                              ["code"], registry=r)
        self.rejected = Counter("asrstream_rejected_requests", "Requests refused before the upgrade, by HTTP status",
                                ["status"], registry=r)
        self.audio = Counter("asrstream_audio_seconds", "Audio received, in seconds at 16 kHz", registry=r)
        self.errors = Counter("asrstream_errors", "Error messages sent to clients, by code", ["code"], registry=r)
        self.coalesced = Counter("asrstream_partials_coalesced", "Partials replaced unsent by a newer one", registry=r)
        self.passes = Histogram("asrstream_pass_seconds", "Wall time of one decoding pass, by kind", ["kind"],
                                buckets=LATENCY, registry=r)
        self.rows = Histogram("asrstream_batch_rows", "Sessions in one decoder pass", buckets=ROWS, registry=r)
        self.partial_lag = Histogram("asrstream_partial_lag_seconds", "Partial sent minus arrival of its last audio",
                                     buckets=LATENCY, registry=r)
        self.final_latency = Histogram("asrstream_final_latency_seconds",
                                       "Final sent minus arrival of the audio that decided its end, by reason",
                                       ["reason"], buckets=LATENCY, registry=r)
        self.loop_lag = Histogram("asrstream_event_loop_lag_seconds", "How late the event loop runs a 100 ms timer",
                                  buckets=LOOP_LAG, registry=r)

    def observe_pass(self, kind: str, seconds: float) -> None:
        """Called by the engine's worker thread after each pass (prometheus_client is thread-safe)."""
        self.passes.labels(kind).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
