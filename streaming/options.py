"""Options of one streaming session: one validated dataclass (ValueError names the field)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

ENCODER_MODES = ("exact", "cached")
FINAL_PASSES = ("offline", "continue")


@dataclass(frozen=True)
class StreamOptions:
    language: str | None = None  # None: the model detects it per segment
    context: str = ""  # system-prompt text: hotwords, names, domain
    chunk_seconds: float = 1.0  # a partial every this much segment audio (0.5-4, multiples of 0.1 s)
    rollback_tokens: int = 5  # hypothesis tokens re-decoded at every step (the unstable tail)
    unfixed_chunks: int = 2  # steps before any prefix is kept
    window_seconds: int | None = None  # encoder attention window, 1-8 s; None: the checkpoint's
    encoder_mode: str = "exact"  # exact: re-encode the open window; cached: attend to its cached K/V
    final_pass: str = "offline"  # offline: decode the segment afresh; continue: extend the hypothesis
    vad_aggressiveness: int = 2  # webrtcvad 0 (least) .. 3 (most eager to call audio non-speech)
    vad_frame_ms: int = 30  # webrtcvad frame: 10, 20 or 30 ms
    silence_ms: int = 600  # trailing non-speech that ends a segment
    max_segment_seconds: float = 30.0  # longer speech is cut at a quiet point near this length
    word_timestamps: bool = True  # run the forced aligner on finals (when the engine has one)
    interim_results: bool = True  # emit partials
    previous_text_as_context: bool = False  # a segment's context gets the previous final appended
    max_new_tokens: int = 256  # a segment's hypothesis never grows past this
    max_tokens_per_second: float | None = 15.0  # and past 8 + this x audio seconds (loop guard); None: off

    def __post_init__(self):
        for f in fields(self):
            _check_type(f.name, f.type, getattr(self, f.name))
        _check(0.5 <= self.chunk_seconds <= 4 and _tenths(self.chunk_seconds), "chunk_seconds",
               "a multiple of 0.1 in [0.5, 4]", self.chunk_seconds)
        _check(0 <= self.rollback_tokens <= 50, "rollback_tokens", "in [0, 50]", self.rollback_tokens)
        _check(0 <= self.unfixed_chunks <= 100, "unfixed_chunks", "in [0, 100]", self.unfixed_chunks)
        _check(self.window_seconds is None or 1 <= self.window_seconds <= 8, "window_seconds",
               "an integer in [1, 8] or None", self.window_seconds)
        _check(self.encoder_mode in ENCODER_MODES, "encoder_mode", f"one of {ENCODER_MODES}", self.encoder_mode)
        _check(self.final_pass in FINAL_PASSES, "final_pass", f"one of {FINAL_PASSES}", self.final_pass)
        _check(self.vad_aggressiveness in (0, 1, 2, 3), "vad_aggressiveness", "0, 1, 2 or 3", self.vad_aggressiveness)
        _check(self.vad_frame_ms in (10, 20, 30), "vad_frame_ms", "10, 20 or 30", self.vad_frame_ms)
        _check(100 <= self.silence_ms <= 10000, "silence_ms", "in [100, 10000]", self.silence_ms)
        _check(5 <= self.max_segment_seconds <= 120, "max_segment_seconds", "in [5, 120]", self.max_segment_seconds)
        _check(1 <= self.max_new_tokens <= 4096, "max_new_tokens", "in [1, 4096]", self.max_new_tokens)
        rate = self.max_tokens_per_second
        _check(rate is None or 1 <= rate <= 100, "max_tokens_per_second", "in [1, 100] or None", rate)
        _check(len(self.context) <= 10000, "context", "at most 10000 characters", f"{len(self.context)} characters")

    def token_limit(self, seconds: float) -> int:
        """Most hypothesis tokens for `seconds` of segment audio."""
        if self.max_tokens_per_second is None:
            return self.max_new_tokens
        return min(self.max_new_tokens, 8 + math.ceil(self.max_tokens_per_second * seconds))


def _tenths(x: float) -> bool:
    return abs(x * 10 - round(x * 10)) < 1e-9


_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}


def _check_type(name: str, annotation: str, value) -> None:
    """Values must have the annotated type (ints accepted for floats; bools are not numbers)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        _check("None" in kinds, name, f"of type {annotation}", value)
        return
    allowed = tuple(t for k in kinds if k != "None" for t in _TYPES[k])
    ok = isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))
    _check(ok and not (isinstance(value, float) and not math.isfinite(value)), name, f"of type {annotation}", value)


def _check(ok: bool, name: str, want: str, got) -> None:
    if not ok:
        raise ValueError(f"option {name} must be {want}, got {got!r}")
