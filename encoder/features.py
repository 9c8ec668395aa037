"""Log-mel features, computed as the reference's Whisper feature extractor does.

16 kHz audio, 400-point periodic Hann window, hop 160, centred STFT with reflect padding, the last
frame dropped (so `frames = samples // 160`), power spectrum, 128 Slaney mel bins up to 8 kHz,
log10 with a 1e-10 floor, then the whole-utterance normalisation `max(x, max(x) - 8)` followed by
`(x + 4) / 4`. That normalisation depends on the loudest frame of the utterance, so features are
always computed for one whole utterance at a time (never padded together with another).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
MIN_SAMPLES = N_FFT // 2 + 1  # reflect padding needs more than n_fft / 2 samples


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    logstep = 27.0 / math.log(6.4)
    return np.where(f < 1000.0, 3.0 * f / 200.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * logstep)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp(logstep * (m - 15.0)))


VTLP_HIGH = 4800.0  # Hz: above warp * this the warp bends linearly back to the Nyquist frequency


def vtlp_warp(f: np.ndarray, warp: float, nyquist: float) -> np.ndarray:
    """Vocal tract length perturbation's frequency map (Jaitly & Hinton 2013, as Kaldi's VTLN):
    f -> warp * f up to a boundary, then linear to the Nyquist frequency, which stays put."""
    boundary = VTLP_HIGH * min(warp, 1.0) / warp
    top = nyquist - (nyquist - warp * boundary) / (nyquist - boundary) * (nyquist - f)
    return np.where(f <= boundary, warp * f, top)


@lru_cache(maxsize=64)
def mel_filters(n_mels: int = 128, n_fft: int = N_FFT, sr: int = SAMPLE_RATE, warp: float = 1.0) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_fft // 2 + 1, n_mels), float64. `warp` != 1
    (training augmentation only) reads each frequency f as vtlp_warp(f): warp > 1 moves formants
    and harmonics up by that factor, as a shorter vocal tract would."""
    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    if warp != 1.0:
        fft_freqs = vtlp_warp(fft_freqs, warp, sr / 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    width = np.diff(edges)
    slopes = edges[None, :] - fft_freqs[:, None]
    rising = -slopes[:, :-2] / width[:-1]
    falling = slopes[:, 2:] / width[1:]
    tri = np.maximum(0.0, np.minimum(rising, falling))
    return tri * (2.0 / (edges[2:] - edges[:-2]))[None, :]


def num_frames(samples: int) -> int:
    """Mel frames for `samples` samples at 16 kHz."""
    return samples // HOP


class LogMel:
    """Log-mel extractor bound to a device; `__call__(wav)` returns (n_mels, frames) float32."""

    def __init__(self, n_mels: int = 128, device: str | torch.device = "cpu"):
        self.n_mels = n_mels
        self.device = torch.device(device)
        self.window = torch.hann_window(N_FFT, device=self.device)
        self.filters = torch.from_numpy(mel_filters(n_mels)).to(self.device, torch.float32).T.contiguous()

    def power_mel(self, wav: torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        """([B,] samples) float32 -> ([B,] n_mels, samples // 160) mel power, before log and
        normalisation; `warp`: mel_filters' vocal tract length perturbation (training)."""
        if wav.shape[-1] < MIN_SAMPLES:
            raise ValueError(f"audio is too short for features: {wav.shape[-1]} samples, need {MIN_SAMPLES}")
        spec = torch.stft(wav, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        power = spec[..., :-1].abs() ** 2  # (freq, frames)
        if warp == 1.0:
            return self.filters @ power
        warped = torch.from_numpy(mel_filters(self.n_mels, warp=warp)).to(self.device, torch.float32).T
        return warped @ power

    def __call__(self, wav: np.ndarray | torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        """(samples,) -> (n_mels, frames), or a batch of equal-length clips (B, samples) -> (B, n_mels, frames).

        Each clip is normalised by its own loudest frame, so a batch equals its clips done one by one.
        `warp` != 1: vocal tract length perturbation (training augmentation; mel_filters).
        """
        wav = torch.as_tensor(wav, dtype=torch.float32, device=self.device)
        log_spec = self.power_mel(wav, warp).clamp_(min=1e-10).log10_()
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0
