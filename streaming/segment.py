"""One segment of speech and the decoding passes over it.

A pass (`Job`) is a streaming step (audio up to a chunk boundary, forced prefix, the previous
hypothesis as draft) or a final (`continue`: one more such step over the whole segment; `offline`:
the whole segment decoded afresh, without prefix, exactly as `ASRModel.transcribe` would).

The session's KV cache row is laid out as [prompt head | audio tokens | prompt tail | prefix |
generated]. Between passes the head and the audio tokens that can no longer change stay cached;
a pass truncates the row after them and prefills only the changed/new audio tokens, the tail and
the prefix, so a step costs O(window + prefix), not O(segment).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..decoder.generate import DecodingOptions, Row
from ..encoder.audio import SAMPLE_RATE
from .encoder import CONTINUE, OFFLINE, STEP, EncodedAudio, SegmentEncoder
from .options import StreamOptions

LOOKAHEAD = 48  # samples past a step boundary that make its last mel frame final (3 ms; >= 40 needed)


@dataclass
class Segment:
    id: int
    start: int  # first sample, in stream samples
    enc: SegmentEncoder
    opts: StreamOptions  # the session's options when the segment opened (session.update applies to later ones)
    language: str | None
    end: int | None = None  # set when the segment closes
    reason: str = ""
    decided: int = 0  # stream sample at which the end was decided (endpoint: after the silence)
    steps_done: int = 0
    prefix: list[int] = field(default_factory=list)  # forced on the next step; only grows
    hyp: list[int] = field(default_factory=list)  # the latest hypothesis
    stable: str = ""
    seq: int = 0
    last_text: str | None = None  # text of the last partial sent
    cached_audio: int = 0  # audio tokens whose keys/values are valid in the session's row
    context: str | None = None  # the prompt context, fixed at the segment's first pass

    @property
    def chunk(self) -> int:
        """Samples per streaming step."""
        return round(self.opts.chunk_seconds * SAMPLE_RATE)

    @property
    def steps(self) -> bool:
        """Whether the segment is decoded in steps (partials, or a continued final)."""
        return self.opts.interim_results or self.opts.final_pass == CONTINUE

    @property
    def audio(self) -> np.ndarray:
        return self.enc.mel.audio.view


@dataclass
class Job:
    stream: object  # the Stream this pass belongs to
    seg: Segment
    kind: str  # STEP, CONTINUE or OFFLINE
    audio_end: int  # segment samples this pass decodes
    prefix: list[int] = field(default_factory=list)
    row: Row | None = None
    prefill_tokens: int = 0
    started: float = 0.0

    @property
    def final(self) -> bool:
        return self.kind != STEP


def build_row(job: Job, net, enc: EncodedAudio, head: torch.Tensor | None, head_len: int, tail_ids: list[int],
              cache, limit: int) -> Row:
    """Truncate the row after what stays valid, and feed the rest of the prompt (+ draft)."""
    seg = job.seg
    valid = min(seg.cached_audio, enc.unchanged) if head is None else 0
    cache.truncate(head_len + valid if head is None else 0)
    embed = net.thinker.model.embed_tokens
    ids = torch.tensor(tail_ids + job.prefix, device=net.device)
    parts = ([head] if head is not None else []) + [enc.tokens[valid:].to(net.dtype), embed(ids)]
    feed = torch.cat(parts)
    draft = seg.hyp[len(job.prefix) :]  # an offline pass has no prefix: the whole last hypothesis
    job.prefill_tokens = feed.shape[0]
    seg.cached_audio = enc.fixed
    opts = DecodingOptions(max_new_tokens=max(1, limit - len(job.prefix)))
    return Row(cache, feed, opts, draft=draft)


def due_job(stream, seg: Segment, available: int) -> Job | None:
    """The next pass of a segment, given `available` samples of it (all of it once closed)."""
    k, chunk, final_pass = seg.steps_done + 1, seg.chunk, seg.opts.final_pass
    step_due = seg.steps and k * chunk + LOOKAHEAD <= available
    if seg.end is None:
        return Job(stream, seg, STEP, k * chunk, list(seg.prefix)) if step_due else None
    if step_due and final_pass == CONTINUE:  # a continued final extends the steps' hypothesis in order
        return Job(stream, seg, STEP, k * chunk, list(seg.prefix))
    kind = CONTINUE if final_pass == CONTINUE else OFFLINE
    return Job(stream, seg, kind, available, list(seg.prefix) if kind == CONTINUE else [])
