"""What a streaming session emits, in order: speech_started, partial*, final, ..., closed.

Times are seconds from the start of the stream. A final replaces every partial of its segment.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SpeechStarted:
    segment_id: int
    start: float
    type: str = "speech_started"


@dataclass(frozen=True)
class Partial:
    segment_id: int
    seq: int  # 0, 1, ... within the segment
    stable_text: str  # never changes in later partials of the segment
    unstable_text: str  # may change
    start: float
    audio_end: float  # the audio this hypothesis covers ends here
    language: str
    type: str = "partial"

    @property
    def text(self) -> str:
        return self.stable_text + self.unstable_text


@dataclass(frozen=True)
class Final:
    segment_id: int
    text: str
    language: str
    start: float
    end: float
    reason: str  # endpoint, max_length, finalize, close
    decided: float  # stream time at which the end was decided (an endpoint: after the silence)
    words: list[dict] = field(default_factory=list)  # [{"word", "start", "end"}]
    token_ids: list[int] = field(default_factory=list)
    type: str = "final"


@dataclass(frozen=True)
class Error:
    code: str  # documented codes: bad_audio, internal_error, overloaded, shutting_down
    message: str
    type: str = "error"


@dataclass(frozen=True)
class Closed:
    audio_seconds: float
    segments: int  # finals emitted
    reason: str = "close"  # close, error, shutdown
    type: str = "closed"


Event = SpeechStarted | Partial | Final | Error | Closed
