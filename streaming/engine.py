"""The engine: one model, many sessions, one worker thread that batches their work.

Scheduling (iteration-level continuous batching, as vLLM's scheduler does it):
each iteration of the worker
1. moves every session's new audio and commands in (VAD, endpointing; cheap, pure Python/C),
2. starts the next pass of every idle session that has one due, encoding all of their audio in
   one batched encoder call,
3. runs ONE packed decoder pass over the new passes' prefills and the running passes' next
   tokens (rows of any lengths, each with its own cache), then picks tokens;
4. finishes passes whose rows are done (partials, finals, aligner).
Sessions join and leave between iterations; a session has at most one pass in flight (fairness:
every session with due work advances one step per iteration). The worker sleeps on a condition
variable when there is nothing to do (no polling). A step that raises fails only its session: it
gets an `error` event and is closed; a batched call that raises is retried row by row to find it.
The asyncio side (Session) only enqueues audio and awaits events; no model code runs on the loop.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from typing import Callable

import torch

from ..decoder.generate import step as decode_step
from ..decoder.prompt import normalize_language
from ..encoder.audio import SAMPLE_RATE
from .encoder import encode
from .errors import CapacityError, EngineClosed
from .events import Closed, Error
from .options import StreamOptions
from .segment import build_row
from .runtime import Runtime
from .session import Session
from .stream import Stream

log = logging.getLogger("asrstream.engine")


class Engine:
    """Serves many streaming sessions from one loaded model (and optionally a forced aligner)."""

    def __init__(self, model, aligner=None, max_sessions: int = 64, max_buffer_seconds: float = 20.0):
        self.rt = Runtime(model, aligner)
        self.max_sessions = max_sessions
        self.max_buffer = int(max_buffer_seconds * SAMPLE_RATE)
        self._cv = threading.Condition()
        self._new: list[Stream] = []
        self._streams: list[Stream] = []
        self._sessions: dict[str, "Session"] = {}
        self._rows: list = []  # passes being decoded
        self._wake = False
        self._stopping = False
        self._ids = itertools.count(1)
        # recent passes: (session id, kind, stream time of the pass's audio end, wall seconds it took)
        self.passes: deque[tuple[str, str, float, float]] = deque(maxlen=100000)
        self.iterations = 0
        self._iteration_started = 0.0
        self.busiest_batch = 0  # most rows in one decoder pass
        # observers called on the worker thread: on_pass(kind, seconds) per finished pass, on_batch(rows) per decoder pass
        self.on_pass: Callable[[str, float], None] | None = None
        self.on_batch: Callable[[int], None] | None = None
        self._thread = threading.Thread(target=self._run, name="asrstream-engine", daemon=True)
        self._thread.start()

    # -- asyncio side -------------------------------------------------------------------------------
    def open_session(self, options: StreamOptions | None = None) -> "Session":
        """A new session (call from a running event loop). ValueError for bad options."""
        opts = options or StreamOptions()
        lang = self.language(opts)
        if self._stopping:
            raise EngineClosed("the engine is shutting down")
        if len(self._sessions) >= self.max_sessions:
            raise CapacityError(f"all {self.max_sessions} sessions are in use; retry later")
        sid = f"s{next(self._ids)}"
        session = Session(self, sid, asyncio.get_running_loop())
        stream = Stream(sid, opts, lang, self.rt, session._deliver)
        session._stream = stream
        self._sessions[sid] = session
        with self._cv:
            self._new.append(stream)
            self._notify()
        return session

    def language(self, opts: StreamOptions) -> str | None:
        """The model's name for opts.language (None: detect); ValueError if the model lacks it."""
        return normalize_language(opts.language, self.rt.model.languages) if opts.language else None

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    @property
    def revision_stats(self) -> dict:
        """How often finals differ from their segment's last partial, and how much (0 same .. 1)."""
        r = dict(self.rt.revisions)
        r["mean_amount"] = r["amount"] / r["finals"] if r["finals"] else 0.0
        return r

    def _notify(self) -> None:
        """Wake the worker (call with self._cv held)."""
        self._wake = True
        self._cv.notify()

    def wake(self) -> None:
        with self._cv:
            self._notify()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker; open sessions get `closed` with reason shutdown."""
        with self._cv:
            self._stopping = True
            self._notify()
        self._thread.join(timeout)

    # -- worker ---------------------------------------------------------------------------------
    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._cv:
                while not (self._wake or self._rows or self._stopping):
                    self._cv.wait()
                self._wake = False
                self._streams += self._new
                self._new.clear()
                if self._stopping:
                    break
            self._iterate()
        for st in self._streams + self._new:
            self._end(st, st.close_event("shutdown"))

    @property
    def busy_for(self) -> float:
        """Seconds the worker has been in its current iteration (0 when idle): a hung step shows here."""
        started = self._iteration_started
        return time.perf_counter() - started if started else 0.0

    def _iterate(self) -> None:
        self._iteration_started = time.perf_counter()
        try:
            self._iterate_once()
        finally:
            self._iteration_started = 0.0

    def _iterate_once(self) -> None:
        self.iterations += 1
        for st in self._streams:
            self._guard(st, st.ingest)
        for st in [s for s in self._streams if s.aborted]:
            self._rows = [j for j in self._rows if j.stream is not st]
            st.job = None
            self._end(st, st.close_event("abort"))
        jobs = [j for st in self._streams if (j := self._guard(st, st.next_job)) is not None]
        if jobs:
            self._start(jobs)
        if self._rows:
            self._decode()
        for st in list(self._streams):
            if not st.closed and st.done():
                self._end(st, st.close_event())
        for session in list(self._sessions.values()):
            session._space_check()

    def _start(self, jobs) -> None:
        """Encode the new passes' audio in one batch, then queue their decoder rows."""
        encoded = self._batched(lambda js: encode(self.rt.tower, [(j.seg.enc, j.kind) for j in js]), jobs)
        for job, enc in zip(jobs, encoded):
            if enc is not None:
                self._guard(job.stream, self._queue_row, job, enc)

    def _queue_row(self, job, enc) -> None:
        st, seg = job.stream, job.seg
        head = None
        head_ids, tail_ids = self.rt.prompt(seg.context, seg.language)
        if st.head != (seg.context, seg.language):
            if st.cache is None or st.cache.max_len < self.rt.cache_room(seg.opts, seg.context):
                st.cache = self.rt.new_cache(seg.opts, seg.context)
            head = self.rt.model.net.thinker.model.embed_tokens(torch.tensor(head_ids, device=self.rt.model.net.device))
            st.head = (seg.context, seg.language)
        limit = seg.opts.token_limit(job.audio_end / SAMPLE_RATE)
        job.row = build_row(job, self.rt.model.net, enc, head, len(head_ids), tail_ids, st.cache, limit)
        self._rows.append(job)

    def _decode(self) -> None:
        """One packed decoder pass over all running rows; finish the passes that are done."""
        eos = self.rt.model.cfg.eos_token_ids
        net = self.rt.model.net
        self.busiest_batch = max(self.busiest_batch, len(self._rows))
        if self.on_batch:
            self.on_batch(len(self._rows))
        self._batched(lambda js: [decode_step(net, [j.row for j in js], eos)] * len(js), self._rows)
        for job in [j for j in self._rows if j.row.done or j.stream.closed]:
            self._rows.remove(job)
            if not job.stream.closed:
                end, took = (job.seg.start + job.audio_end) / SAMPLE_RATE, time.perf_counter() - job.started
                self.passes.append((job.stream.id, job.kind, end, took))
                if self.on_pass:
                    self.on_pass(job.kind, took)
                self._guard(job.stream, job.stream.finish, job)
                self._wake = True  # its session may have its next pass due already

    def _batched(self, fn, jobs: list) -> list:
        """fn(jobs) -> one result per job; if it raises, run each job alone and fail the ones that raise.

        Safe to retry because the batched calls change no state before their model work succeeds
        (caches advance and rows take tokens only after the pass)."""
        try:
            return fn(jobs)
        except Exception:
            log.exception("batched pass failed; retrying its %d sessions one by one", len(jobs))
        out = []
        for j in jobs:
            res = self._guard(j.stream, fn, [j])
            out.append(res[0] if res is not None else None)
        return out

    def _guard(self, st: Stream, fn, *args):
        """Run fn for one stream; an exception fails that stream alone."""
        if st.closed:
            return None
        try:
            return fn(*args)
        except Exception as e:  # the session ends with an error event; the engine goes on
            st.job = None
            self._rows = [j for j in self._rows if j.stream is not st]
            if isinstance(e, MemoryError):  # shed this session; the others and later ones go on
                log.error("session %s shed: out of memory", st.id)
                st.emit(Error("overloaded", "the server ran out of memory for this session; retry later"))
            else:
                log.exception("session %s failed", st.id)
                st.emit(Error("internal_error", f"the session failed while decoding ({type(e).__name__}); it was closed"))
            self._end(st, st.close_event("error"))
            return None

    def _end(self, st: Stream, event: Closed) -> None:
        st.closed = True
        if st in self._streams:
            self._streams.remove(st)
        st.cache = None
        st.emit(event)
