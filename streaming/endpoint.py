"""Endpointing: speech segments from per-frame voice-activity decisions (webrtcvad).

Policy (all times in frames of `frame_ms`):
- A segment starts when at least 70 % of the last `onset_ms` (300 ms) of frames are voiced; it
  starts `preroll_ms` (200 ms) before the first voiced frame of that window (never before the end
  of the previous segment), so the first phoneme is not clipped. A few voiced frames in noise
  (clicks, breaths) never reach the ratio: noise alone starts nothing.
- A segment ends once `silence_ms` of consecutive unvoiced frames follow its last voiced frame;
  it ends `hangover_ms` (150 ms, at most the silence) after the last voiced frame.
Length limits and explicit finalize/close are the session's business, not this class's.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import webrtcvad

SAMPLE_RATE = 16000
ONSET_MS, ONSET_RATIO, PREROLL_MS, HANGOVER_MS = 300, 0.7, 200, 150


class Endpointer:
    """Feed voiced/unvoiced per frame; get ("start", sample) and ("end", sample) events."""

    def __init__(self, frame_ms: int, silence_ms: int):
        self.frame = frame_ms * SAMPLE_RATE // 1000
        self.ring: deque[bool] = deque(maxlen=max(1, ONSET_MS // frame_ms))
        self.frame_ms = frame_ms
        self.set_silence(silence_ms)
        self.preroll = PREROLL_MS * SAMPLE_RATE // 1000
        self.frames = 0  # frames seen
        self.in_speech = False
        self.last_voiced = -1  # index of the last voiced frame
        self.floor = 0  # no segment may start before this sample

    def set_silence(self, silence_ms: int) -> None:
        """Trailing non-speech that ends a segment (applies from the next frame on)."""
        self.silence_frames = max(1, silence_ms // self.frame_ms)
        self.hangover = min(HANGOVER_MS, silence_ms) * SAMPLE_RATE // 1000

    def push(self, voiced: bool) -> list[tuple[str, int]]:
        i = self.frames
        self.frames += 1
        self.ring.append(voiced)
        if voiced:
            self.last_voiced = i
        if not self.in_speech:
            if len(self.ring) == self.ring.maxlen and sum(self.ring) >= ONSET_RATIO * len(self.ring):
                self.in_speech = True
                first = i - len(self.ring) + 1 + list(self.ring).index(True)
                return [("start", max(self.floor, first * self.frame - self.preroll))]
            return []
        if i - self.last_voiced >= self.silence_frames:
            return [("end", self.close_at((self.last_voiced + 1) * self.frame + self.hangover))]
        return []

    def close_at(self, sample: int) -> int:
        """End the current segment at `sample` (by silence, length or request); returns it."""
        self.in_speech = False
        self.ring.clear()
        self.floor = sample
        return sample

    def restart_at(self, sample: int) -> None:
        """Speech goes on after a cut at `sample`: a new segment starts there."""
        self.floor = sample
        self.in_speech = True


class VoiceDetector:
    """webrtcvad over a float32 16 kHz stream, in frames of `frame_ms`; keeps partial frames."""

    def __init__(self, aggressiveness: int, frame_ms: int):
        self.vad = webrtcvad.Vad(aggressiveness)
        self.frame = frame_ms * SAMPLE_RATE // 1000
        self.rest = np.zeros(0, dtype=np.float32)

    def frames(self, samples: np.ndarray) -> list[bool]:
        x = np.concatenate([self.rest, samples]) if self.rest.size else samples
        n = len(x) // self.frame * self.frame
        self.rest = x[n:]
        pcm = (np.clip(x[:n], -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        step = self.frame * 2
        return [self.vad.is_speech(pcm[i : i + step], SAMPLE_RATE) for i in range(0, len(pcm), step)]
