"""The worker-side state of one session: audio in, segments, passes, events out.

Every method here runs on the engine's worker thread, except `push`/`command` (any thread, under
the stream's lock). Audio is consumed in whole VAD frames; segments open and close on the
endpointer's decisions, at `max_segment_seconds` (cut at the quietest 100 ms near the limit), on
finalize and on close. Segments are decoded strictly in order, one pass at a time per session, and
steps fall on fixed boundaries of segment time, so a session's results never depend on how its
audio was split into feeds or on what other sessions ran beside it.
"""
from __future__ import annotations

import difflib
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from ..decoder.prompt import parse_output
from ..encoder.audio import quietest_point
from .encoder import CONTINUE, STEP, SegmentEncoder
from .endpoint import SAMPLE_RATE, Endpointer, VoiceDetector
from .events import Closed, Final, Partial, SpeechStarted
from .features import AudioBuffer, IncrementalMel
from .options import StreamOptions
from .rollback import next_prefix, split_stable
from .segment import LOOKAHEAD, Job, Segment, due_job

CUT_SEARCH = 3 * SAMPLE_RATE  # a max-length cut falls in the last 3 s before the limit
MS = SAMPLE_RATE // 1000


class Stream:
    def __init__(self, sid: str, options: StreamOptions, language: str | None, runtime, emit: Callable):
        self.id, self.opts, self.language, self.rt, self.emit = sid, options, language, runtime, emit
        self.lock = threading.Lock()
        self.inbox: list = []  # audio, commands and option updates, in the order they came
        self.audio = AudioBuffer()  # stream samples from `base` on
        self.base = 0
        self.total = 0  # samples consumed from the inbox
        self.pushed = 0
        self.steps_behind = 0  # kept by the worker, read by backlog()
        self.vad = VoiceDetector(options.vad_aggressiveness, options.vad_frame_ms)
        self.ends = Endpointer(options.vad_frame_ms, options.silence_ms)
        self.segments: deque[Segment] = deque()
        self.next_id = 0
        self.finals = 0
        self.job: Job | None = None
        self.closing = False
        self.aborted = False  # the client is gone: drop everything, emit nothing more
        self.closed = False
        self.context = options.context  # for segments whose first pass is still to come
        self.cache = None  # the KV cache row: allocated by the worker at the first pass, never on the event loop
        self.head: tuple | None = None  # (context, language) whose prompt head is in the cache
        self.work = {"encoder_tokens": 0, "audio_tokens": 0, "steps": 0, "step_prefill_tokens": 0,
                     "max_step_prefill": 0, "finals": 0, "max_final_prefill": 0, "drafted": 0, "accepted": 0}

    # -- any thread -------------------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> None:
        with self.lock:
            self.inbox.append(samples)
            self.pushed += len(samples)

    def command(self, name: str) -> None:
        with self.lock:
            self.inbox.append(name)

    def update(self, options: StreamOptions, language: str | None) -> None:
        """New options, in order with the audio: segments opening after this point use them."""
        with self.lock:
            self.inbox.append((options, language))

    def backlog(self) -> int:
        """Samples fed but not yet processed (waiting for VAD or for a step). Any thread: it reads
        two counters and a number the worker keeps up to date, never the worker's structures."""
        return self.pushed - self.total + self.steps_behind

    def _update_steps_behind(self) -> None:
        """Worker: samples of the open segment whose steps are due but not done."""
        seg = self.segments[-1] if self.segments else None
        behind = 0
        if seg is not None and seg.end is None and seg.steps:
            pending = self.total - seg.start - seg.steps_done * seg.chunk - LOOKAHEAD
            behind = max(0, pending // seg.chunk) * seg.chunk
        self.steps_behind = behind

    # -- worker: audio in ----------------------------------------------------------------------
    def ingest(self) -> None:
        with self.lock:
            items, self.inbox = self.inbox, []
        for x in items:
            if isinstance(x, tuple):
                self._apply_update(*x)
            elif isinstance(x, str) and x == "abort":
                self.aborted = self.closing = True
                return
            elif isinstance(x, str):
                self._end_now(x)
                self.closing = self.closing or x == "close"
            else:
                self._consume(x)
        self._update_steps_behind()

    def _apply_update(self, opts: StreamOptions, language: str | None) -> None:
        """Endpointing settings apply from here on; decoding settings to segments opened from here."""
        if opts.vad_frame_ms != self.opts.vad_frame_ms:
            raise ValueError("vad_frame_ms cannot change during a stream")  # Session.update checks first
        if opts.context != self.opts.context:
            self.context = opts.context
        self.opts, self.language = opts, language
        self.vad.vad.set_mode(opts.vad_aggressiveness)
        self.ends.set_silence(opts.silence_ms)

    def _consume(self, x: np.ndarray) -> None:
        self.audio.append(x)
        self.total += len(x)
        frame = self.vad.frame
        for voiced in self.vad.frames(x):
            now = self.ends.frames * frame + frame  # the end of this frame, in stream samples
            for kind, at in self.ends.push(voiced):
                self._on_endpoint(kind, at, now)
            self._check_length(now)
        self._trim()

    def _on_endpoint(self, kind: str, at: int, now: int) -> None:
        if kind == "start":
            self._open_segment(at)
        elif self.segments and self.segments[-1].end is None:
            self._close_segment(min(at, now), "endpoint", now)

    def _check_length(self, now: int) -> None:
        """Frame by frame: a segment reaching max_segment_seconds is cut at its quietest 100 ms
        in the 3 s before the limit; speech goes on in a new segment from there."""
        seg = self.segments[-1] if self.segments else None
        limit = int(seg.opts.max_segment_seconds * SAMPLE_RATE) if seg is not None else 0
        if seg is None or seg.end is not None or now - seg.start < limit:
            return
        floor = self._floor(seg)
        lo, hi = max(seg.start + limit - CUT_SEARCH, floor), max(seg.start + limit, floor)
        b = self.base
        cut = quietest_point(self.audio.view, lo - b, hi - b, SAMPLE_RATE // 10, hi - b) + b
        cut = min(now, -(-cut // MS) * MS)  # on a millisecond, so event times name the exact sample
        self._close_segment(cut, "max_length", now)
        self.ends.restart_at(cut)
        self._open_segment(cut)

    def _end_now(self, reason: str) -> None:
        if self.segments and self.segments[-1].end is None:
            self._close_segment(self.ends.close_at(self.total), reason)

    def _open_segment(self, start: int) -> None:
        enc = SegmentEncoder(self.rt.tower, IncrementalMel(self.rt.mel), self.rt.window_tokens(self.opts),
                             self.opts.encoder_mode)
        self.segments.append(Segment(self.next_id, start, enc, self.opts, self.language))
        self.next_id += 1
        self.emit(SpeechStarted(self.segments[-1].id, round(start / SAMPLE_RATE, 3)))

    def _close_segment(self, end: int, reason: str, decided: int | None = None) -> None:
        """Close the open segment at `end`. An offline final decodes exactly [start, end], even when
        steps already took audio past it, so ends never depend on timing; a continued final extends
        its steps' hypothesis, so its end is never before the audio they took."""
        seg = self.segments[-1]
        seg.end, seg.reason = max(end, self._floor(seg)), reason
        seg.decided = self.total if decided is None else decided
        self.ends.floor = max(self.ends.floor, seg.end)  # the next segment starts after it

    @staticmethod
    def _floor(seg: Segment) -> int:
        """The earliest stream sample the segment may end at."""
        return seg.start + seg.enc.mel.audio.size if seg.opts.final_pass == CONTINUE else seg.start

    def _trim(self) -> None:
        """Drop audio no pending segment needs (keeping the endpointer's pre-roll)."""
        keep = min([s.start for s in self.segments] + [self.total - SAMPLE_RATE])
        if keep - self.base > 10 * SAMPLE_RATE:
            rest = self.audio.view[keep - self.base :].copy()
            self.audio = AudioBuffer(max(len(rest), SAMPLE_RATE))
            self.audio.append(rest)
            self.base = keep

    # -- worker: passes ------------------------------------------------------------------------
    def next_job(self) -> Job | None:
        if self.job is not None or not self.segments:
            return None
        seg = self.segments[0]
        have = (seg.end if seg.end is not None else self.total) - seg.start
        job = due_job(self, seg, have)
        if job is not None:
            if seg.context is None:
                seg.context = self.context
            if job.final and seg.enc.mel.audio.size > job.audio_end:
                seg.enc.truncate(job.audio_end)  # steps ran into the audio after the segment's end
            lo = seg.start + seg.enc.mel.audio.size - self.base
            hi = seg.start + min(have, job.audio_end + (0 if job.final else LOOKAHEAD)) - self.base
            seg.enc.mel.append(self.audio.view[lo:hi])
            job.started = time.perf_counter()
        self.job = job
        return job

    def finish(self, job: Job) -> None:
        """A pass's tokens are decoded: update the hypothesis and emit a partial or the final."""
        self.job = None
        seg, tokens = job.seg, job.prefix + job.row.out
        self._count(job)
        try:
            self._apply(job, seg, tokens)
        finally:
            self._update_steps_behind()

    def _apply(self, job: Job, seg: Segment, tokens: list[int]) -> None:
        decode = self.rt.decode
        if job.kind == STEP:
            seg.steps_done += 1
            seg.hyp = tokens
            seg.prefix = next_prefix(seg.prefix, tokens, seg.steps_done, seg.opts.unfixed_chunks,
                                     seg.opts.rollback_tokens, decode)
            self._partial(seg, job, decode(seg.prefix), decode(tokens))
            if len(seg.prefix) >= seg.opts.token_limit(seg.steps_done * seg.opts.chunk_seconds) and seg.end is None:
                self._close_segment(seg.start + job.audio_end, "max_length")  # a runaway hypothesis
            return
        self._final(seg, job, tokens)

    def _count(self, job: Job) -> None:
        w = self.work
        w["drafted"] += job.row.drafted
        w["accepted"] += job.row.accepted
        if job.kind == STEP:
            w["steps"] += 1
            w["step_prefill_tokens"] += job.prefill_tokens
            w["max_step_prefill"] = max(w["max_step_prefill"], job.prefill_tokens)
        else:
            w["finals"] += 1
            w["max_final_prefill"] = max(w["max_final_prefill"], job.prefill_tokens)

    def _partial(self, seg: Segment, job: Job, stable_raw: str, raw: str) -> None:
        stable, unstable, lang = split_stable(stable_raw, raw, seg.language, seg.stable)
        seg.stable = stable
        text = stable + unstable
        if not seg.opts.interim_results or not text.strip() or text == seg.last_text:
            return
        seg.last_text = text
        self.emit(Partial(seg.id, seg.seq, stable, unstable, _s(seg.start), _s(seg.start + job.audio_end), lang))
        seg.seq += 1

    def _final(self, seg: Segment, job: Job, tokens: list[int]) -> None:
        self.segments.popleft()
        self.work["encoder_tokens"] += seg.enc.tokens_encoded
        self.work["audio_tokens"] += self.rt.tower.cfg.tokens_for_frames(seg.enc.mel.frames)
        lang, text = parse_output(self.rt.decode(tokens), seg.language)
        if seg.opts.previous_text_as_context and text:
            self.context = text
        if not text:
            return
        words = self.rt.align(seg.audio, text, lang) if seg.opts.word_timestamps else []
        offset = seg.start / SAMPLE_RATE
        end = (seg.start + len(seg.audio)) / SAMPLE_RATE
        words = [{"word": w["word"], "start": round(min(w["start"] + offset, end), 3),
                  "end": round(min(w["end"] + offset, end), 3)} for w in words]
        self.rt.count_revision(seg.last_text, text)
        self.finals += 1
        self.emit(Final(seg.id, text, lang, _s(seg.start), round(end, 3), seg.reason, _s(seg.decided), words, tokens))

    def done(self) -> bool:
        """Closing and nothing left to decode: the session can end."""
        return self.closing and self.job is None and not self.segments and not self.inbox

    def close_event(self, reason: str = "close") -> Closed:
        self.closed = True
        return Closed(round(self.total / SAMPLE_RATE, 3), self.finals, reason)


def _s(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


def revision(partial: str | None, final: str) -> float:
    """How much a final differs from the segment's last partial: 0 (same) .. 1."""
    return 1.0 - difflib.SequenceMatcher(None, partial or "", final).ratio()
