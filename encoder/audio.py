# Audio input for offline transcription: files and arrays -> mono float32 at 16 kHz.
#
# Policy: every input is validated once at the edge (empty, NaN/Inf, unsupported dtype
# raise AudioError naming the input and the fix), channels are averaged, other rates are
# resampled with soxr 'HQ' (the reference's librosa default, length fixed to
# ceil(T * 16000 / sr) as librosa does), and float audio peaking above 1.0 is divided by its
# peak and clipped to [-1, 1] -- the same steps, in the same order, as the reference's
# normalize_audio_input, so features match for the same file.
#
# Long files are split into spans at low-energy points (split_at_low_energy); spans are
# returned, never padded -- a caller that needs a minimum length pads the piece itself.
# numpy + soundfile + soxr only: no torch here.
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """Bad audio input; the message names the file or problem and the fix."""


def load_audio(path: str | Path) -> np.ndarray:
    """Read any file soundfile can decode as mono float32 at 16 kHz, shape (T,).

    Raises AudioError for a missing file, a file that is not decodable audio, a file
    with no samples, or one with NaN/Inf samples.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"no such file: {path}")
    if path.is_dir():
        raise AudioError(f"{path} is a directory, not an audio file; pass a file path")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)  # (T, C)
    except (sf.SoundFileError, RuntimeError) as e:
        reason = getattr(e, "error_string", None) or str(e) or type(e).__name__
        raise AudioError(
            f"{path} is not an audio file soundfile can read ({reason}); "
            "convert it to WAV/FLAC, e.g. ffmpeg -i IN -ar 16000 -ac 1 OUT.wav"
        ) from e
    return _to_mono_16k(check_samples(data, str(path)), int(sr))


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Convert samples (T,) or (T, C) at `sample_rate` to mono float32 (T',) at 16 kHz.

    int16/int32 PCM is scaled to [-1, 1); channels are averaged; other rates are
    resampled with soxr 'HQ'; float audio peaking above 1.0 is peak-normalised, then
    everything is clipped to [-1, 1]. Raises AudioError on bad input.
    """
    if sample_rate <= 0:
        raise AudioError(f"sample_rate must be positive, got {sample_rate}")
    return _to_mono_16k(check_samples(samples, "audio samples"), int(sample_rate))


def check_samples(samples: np.ndarray, what: str) -> np.ndarray:
    """Validate raw samples (T,) or (T, C) and return them as float32 of the same shape.

    Signed integer PCM is scaled by 1 / 2**(bits - 1) (int16 -> / 32768, as soundfile
    does); floats are cast to float32 unscaled. `what` names the input in the AudioError
    raised for an empty array, NaN/Inf samples, a bad shape or an unsupported dtype.
    """
    x = np.asarray(samples)
    if x.ndim not in (1, 2):
        raise AudioError(f"{what}: expected shape (T,) or (T, C), got {x.shape}")
    if x.size == 0:
        raise AudioError(f"{what} is empty (0 samples); pass a recording with audio in it")
    if x.ndim == 2 and x.shape[1] > x.shape[0]:
        raise AudioError(
            f"{what}: shape {x.shape} has more channels than samples; "
            "pass (T, C), e.g. samples.T"
        )
    if np.issubdtype(x.dtype, np.signedinteger):
        return (x / float(2 ** (8 * x.dtype.itemsize - 1))).astype(np.float32)
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"{what}: unsupported sample dtype {x.dtype}; pass float or int16/int32 PCM")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise AudioError(f"{what} contains NaN or Inf samples; fix or re-export the audio")
    return x


def _to_mono_16k(x: np.ndarray, sr: int) -> np.ndarray:
    """Average channels, resample to 16 kHz, normalise range; x is checked float32."""
    if x.ndim == 2:
        x = x.mean(axis=-1).astype(np.float32)
    if sr != SAMPLE_RATE:
        n = -(-x.shape[0] * SAMPLE_RATE // sr)  # ceil(T * 16000 / sr), librosa's length
        y = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
        x = y[:n] if y.shape[0] >= n else np.pad(y, (0, n - y.shape[0]))
    return _normalize_range(x)


def _normalize_range(x: np.ndarray) -> np.ndarray:
    """Divide by the peak when it exceeds 1.0, then clip to [-1, 1] (reference semantics)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    if peak > 1.0:
        x = x / peak
    return np.clip(x, -1.0, 1.0)


def split_at_low_energy(
    wav: np.ndarray,
    max_seconds: float,
    search_seconds: float = 5.0,
    window_ms: float = 100.0,
) -> list[tuple[int, int]]:
    """Split mono 16 kHz audio into contiguous [start, end) sample spans at quiet points.

    Spans cover the input exactly (no gaps, no overlaps; one span (0, T) when the audio
    is at most max_seconds long, (0, 0) for empty input). Each nominal cut sits
    max_seconds after the previous cut; the actual cut is the quietest sample of the
    quietest `window_ms` window (lowest sum of |x|, first on ties) within
    +-search_seconds of it. So a span is at most max_seconds + search_seconds long --
    identical boundaries to the reference's split_audio_into_chunks. Spans are not
    padded: a caller that needs at least 0.5 s per piece (as the reference does) pads.
    """
    x = np.asarray(wav)
    if x.ndim != 1:
        raise ValueError(f"wav must be mono (T,), got shape {x.shape}; use to_mono_16k first")
    max_len = int(max_seconds * SAMPLE_RATE)
    if max_len < 1:
        raise ValueError(f"max_seconds must be at least 1/{SAMPLE_RATE} s, got {max_seconds}")
    if search_seconds < 0 or window_ms <= 0:
        raise ValueError(
            f"search_seconds must be >= 0 and window_ms > 0, got {search_seconds}, {window_ms}"
        )
    total = int(x.shape[0])
    if total / SAMPLE_RATE <= max_seconds:
        return [(0, total)]
    expand = int(search_seconds * SAMPLE_RATE)
    win = max(4, int(window_ms / 1000.0 * SAMPLE_RATE))
    spans: list[tuple[int, int]] = []
    start = 0
    while total - start > max_len:
        cut = start + max_len
        boundary = quietest_point(x, max(start, cut - expand), min(total, cut + expand), win, cut)
        boundary = min(max(boundary, start + 1), total)
        spans.append((start, boundary))
        start = boundary
    spans.append((start, total))
    return spans


def quietest_point(x: np.ndarray, left: int, right: int, win: int, default: int) -> int:
    """Index of the lowest-|x| sample in the lowest-energy `win`-window of x[left:right]."""
    if right - left <= win:
        return default
    a = np.abs(x[left:right].astype(np.float32, copy=False))
    c = np.concatenate(([0.0], np.cumsum(a, dtype=np.float64)))
    pos = int(np.argmin(c[win:] - c[:-win]))  # window sums via prefix sums: O(n), not O(n*win)
    return left + pos + int(np.argmin(a[pos : pos + win]))
