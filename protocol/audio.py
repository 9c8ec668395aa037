"""Binary audio frames of protocol v1 -> float32 16 kHz mono for the engine.

Frames may have any size and may split a sample: the odd trailing bytes are carried into the next
frame. Other sample rates (8-48 kHz) are resampled with soxr's streaming resampler, so a stream
resampled frame by frame equals the whole stream resampled at once (up to the resampler's delay,
which `flush()` returns at the end). numpy + soxr only.
"""
from __future__ import annotations

import numpy as np
import soxr

from .messages import ENCODINGS, ProtocolError

TARGET_RATE = 16000
_DTYPES = {"pcm_s16le": np.dtype("<i2"), "pcm_f32le": np.dtype("<f4")}


class PcmDecoder:
    def __init__(self, encoding: str = "pcm_s16le", sample_rate: int = TARGET_RATE):
        if encoding not in ENCODINGS:
            raise ProtocolError("invalid_field", f"encoding must be one of {', '.join(ENCODINGS)}")
        self.dtype = _DTYPES[encoding]
        self.rate = sample_rate
        self.rest = b""
        self.resampler = None if sample_rate == TARGET_RATE else soxr.ResampleStream(
            sample_rate, TARGET_RATE, 1, dtype="float32", quality="HQ")
        self.samples_in = 0  # samples received at the declared rate

    def decode(self, data: bytes) -> np.ndarray:
        """Bytes of one frame -> float32 samples at 16 kHz (possibly none yet)."""
        buf = self.rest + bytes(data)
        n = len(buf) // self.dtype.itemsize * self.dtype.itemsize
        self.rest = buf[n:]
        x = np.frombuffer(buf[:n], dtype=self.dtype)
        if self.dtype.kind == "i":
            x = x.astype(np.float32) / 32768.0
        elif not np.isfinite(x).all():
            raise ProtocolError("bad_audio", "pcm_f32le audio holds NaN or Inf samples")
        self.samples_in += len(x)
        x = np.ascontiguousarray(x, dtype=np.float32)
        return x if self.resampler is None else self.resampler.resample_chunk(x)

    def flush(self) -> np.ndarray:
        """What the resampler still holds, at the end of the stream."""
        if self.resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self.resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
