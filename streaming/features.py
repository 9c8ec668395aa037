"""Incremental log-mel features of a growing segment, equal to the offline features of any prefix.

Policy. A frame's power spectrum depends on 400 samples around it; the first frames use the
segment's left reflect padding, which is fixed once 201 samples exist. A frame whose window lies
inside the audio is *final*: it is computed once and kept (raw log10 mel, before normalisation).
The last one or two frames of a prefix use right reflect padding and are *provisional*: recomputed
from the tail at every call until audio arrives past them.

The offline extractor normalises by the loudest value of the whole utterance: x -> max(x, peak - 8).
Here `peak` is the maximum over the prefix's frames (final and provisional), so `features()` of a
prefix equals the offline features of that prefix exactly. A louder frame arriving later raises
the floor `peak - 8` and can change earlier normalised frames; the streaming encoder keeps what it
computed with the earlier floor (partials are approximate in that case) and a segment's final
checks every chunk against the segment's offline features and re-encodes the ones that differ,
so finals stay exact.
"""
from __future__ import annotations

import numpy as np
import torch

from ..encoder.features import HOP, MIN_SAMPLES, N_FFT, LogMel

PAD = N_FFT // 2
MIN_COLUMNS = 32


class AudioBuffer:
    """A growing float32 array with amortised O(1) appends."""

    def __init__(self, capacity: int = 16000):
        self._data = np.zeros(capacity, dtype=np.float32)
        self.size = 0

    def append(self, x: np.ndarray) -> None:
        if self.size + len(x) > len(self._data):
            grown = np.zeros(max(2 * len(self._data), self.size + len(x)), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : self.size + len(x)] = x
        self.size += len(x)

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]


class IncrementalMel:
    """Raw log-mel frames of one segment's audio, computed as the audio grows."""

    def __init__(self, mel: LogMel):
        self.mel = mel
        self.audio = AudioBuffer()
        self._final = torch.zeros(mel.n_mels, 0, device=mel.device)  # (n_mels, frames) raw log10 mel, final frames
        self._final_peak = -torch.inf
        self._tail = torch.zeros(mel.n_mels, 0, device=mel.device)  # provisional frames after the final ones
        self.frames_computed = 0  # work counter: frames whose spectrum was computed

    def append(self, samples: np.ndarray) -> None:
        self.audio.append(samples)
        self._update()

    @property
    def final_frames(self) -> int:
        return self._final.shape[1]

    @property
    def frames(self) -> int:
        return self.audio.size // HOP

    def truncate(self, n: int) -> None:
        """Cut the audio back to its first `n` samples: the state is then what `n` samples alone
        would have given (frames whose windows reached past `n` are recomputed or dropped)."""
        self.audio.size = min(n, self.audio.size)
        # a short prefix is recomputed whole, as offline computes it (few columns round differently)
        keep = min((n - PAD) // HOP + 1, n // HOP) if n >= MIN_COLUMNS * HOP else 0
        self._final = self._final[:, : max(0, keep)]
        self._final_peak = self._final.max().item() if self._final.shape[1] else -torch.inf
        self._tail = self._tail[:, :0]
        self._update()

    def _update(self) -> None:
        n = self.audio.size
        if n < MIN_SAMPLES:
            return
        done = self._final.shape[1]
        new = self._raw_from(done)  # frames done .. n // HOP - 1
        n_final = min((n - PAD) // HOP + 1, n // HOP) - done  # windows wholly inside the audio
        fixed = new[:, :n_final]
        if fixed.shape[1]:
            self._final = torch.cat([self._final, fixed], 1)
            self._final_peak = max(self._final_peak, fixed.max().item())
        self._tail = new[:, n_final:]

    def _raw_from(self, first: int) -> torch.Tensor:
        """Raw log10 mel of frames first .. n // HOP - 1 of the current audio."""
        x = self.audio.view
        if first * HOP < PAD:  # the segment start: the whole (short) prefix the offline way
            wav = torch.from_numpy(x.copy()).to(self.mel.device)
            spec = self.mel.power_mel(wav)[:, first:]
        else:
            tail = x[first * HOP - PAD :]
            right = tail[-PAD - 1 : -1][::-1]  # reflect padding as torch.stft does it
            frames = torch.from_numpy(np.concatenate([tail, right])).to(self.mel.device)
            spec = self._power(frames)[:, :-1]  # the last frame is dropped, as offline
        self.frames_computed += spec.shape[1]
        return spec.clamp(min=1e-10).log10()

    def _power(self, wav: torch.Tensor) -> torch.Tensor:
        m = self.mel
        power = torch.stft(wav, N_FFT, HOP, window=m.window, center=False, return_complex=True).abs() ** 2
        n = power.shape[1]
        # matmuls of fewer than ~15 columns take another kernel with other rounding; padding with zero
        # columns keeps every frame bit-identical to the offline extractor's
        return (m.filters @ torch.nn.functional.pad(power, (0, max(0, MIN_COLUMNS - n))))[:, :n]

    def peak(self) -> float:
        tail = self._tail.max().item() if self._tail.shape[1] else -float("inf")
        return max(self._final_peak, tail)

    def features(self, first: int, last: int, peak: float | None = None) -> torch.Tensor:
        """Normalised features of frames [first, last) of the current prefix: (n_mels, last - first)."""
        n = self.final_frames
        raw = self._final[:, first:last]  # a view: no copy of the whole segment per call
        if last > n:
            raw = torch.cat([raw, self._tail[:, max(0, first - n) : last - n]], 1)
        floor = (self.peak() if peak is None else peak) - 8.0
        return (torch.clamp(raw, min=floor) + 4.0) / 4.0
