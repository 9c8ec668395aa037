"""On-the-fly augmentation of 16 kHz training audio, reproducible from a seed.

Each example of each epoch draws from its own generator seeded by (seed, epoch, example index), so a
resumed run augments exactly as an uninterrupted one. Speed perturbation resamples (pitch and tempo
change together, as in Kaldi's 0.9/1.0/1.1 recipe) and scales word times with it; gain is in dB;
noise is white or pink at a random SNR; reverb convolves with a synthetic exponentially decaying
impulse response of a random RT60; vocal tract length perturbation (VTLP) draws a frequency warp
factor that the features apply (encoder/features.py: formants and harmonics move, tempo does not);
SpecAugment masks (Park et al. 2019) blank random bands of mel bins and runs of frames in the
features (`mask_features`): they are drawn here as fractions, so they fit whatever length speed
perturbation gave the example. A lead-in puts up to `lead_in` seconds of silence (which the reverb
and noise then fill) before the audio: where the speech starts within the encoder's 1 s conv chunks
then varies, as it does in a stream, whose segments start wherever the endpointer put them. Word
times move with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SR = 16000
N_MELS = 128  # the feature extractor's mel bins (encoder/features.py)


@dataclass(frozen=True)
class AugmentOptions:
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)  # speed perturbation factors, one drawn per example
    gain_db: float = 6.0  # gain drawn uniformly in +-gain_db
    noise_prob: float = 0.5  # share of examples with added noise
    snr_db: tuple[float, float] = (10.0, 40.0)  # noise level range
    reverb_prob: float = 0.0  # share of examples with reverb (optional: off by default)
    rt60: tuple[float, float] = (0.2, 0.8)  # seconds
    vtlp: float = 0.0  # frequency warp drawn in [1 - vtlp, 1 + vtlp] per example, in steps of 0.01 (0: off)
    freq_masks: int = 0  # SpecAugment: bands of mel bins blanked per example, each up to freq_mask_bins wide
    freq_mask_bins: int = 27
    time_masks: int = 0  # SpecAugment: runs of frames blanked per example, each up to time_mask_share of them
    time_mask_share: float = 0.05
    lead_in: float = 0.0  # silence put before the audio, drawn in [0, lead_in] seconds per example (0: off)

    def __post_init__(self):
        if not self.speeds or any(not 0.5 <= s <= 2.0 for s in self.speeds):
            raise ValueError(f"speeds must be factors in [0.5, 2], got {self.speeds}")
        if not 0.0 <= self.vtlp <= 0.3:
            raise ValueError(f"vtlp must be in [0, 0.3], got {self.vtlp}")
        for name in ("freq_masks", "time_masks"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.freq_mask_bins <= N_MELS:
            raise ValueError(f"freq_mask_bins must be in [0, {N_MELS}], got {self.freq_mask_bins}")
        if not 0.0 <= self.time_mask_share <= 0.5:
            raise ValueError(f"time_mask_share must be in [0, 0.5], got {self.time_mask_share}")
        if not 0.0 <= self.lead_in <= 5.0:
            raise ValueError(f"lead_in must be in [0, 5] seconds, got {self.lead_in}")
        for name in ("noise_prob", "reverb_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


NO_AUGMENT = AugmentOptions(speeds=(1.0,), gain_db=0.0, noise_prob=0.0, reverb_prob=0.0)


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class Augmented(NamedTuple):
    wav: np.ndarray  # float32 audio
    speed: float  # word times t become t / speed
    warp: float  # the features' VTLP factor (LogMel(wav, warp))
    masks: tuple[tuple[str, float, float], ...] = ()  # ("freq" | "time", start, width) as shares of the axis
    lead: float = 0.0  # seconds of silence put first: word times t become t / speed + lead


def augment(wav: np.ndarray, opts: AugmentOptions, rng: np.random.Generator) -> Augmented:
    """One example's augmentation; draws from `rng` in a fixed order (speed, lead-in, reverb, noise, gain,
    warp, masks). Each option that is off draws nothing, so the others draw what they did without it."""
    speed = float(rng.choice(opts.speeds))
    if speed != 1.0:  # played `speed` times faster: fewer samples at the same rate
        import soxr  # a server/train dependency: the client-side CLI never imports it
        wav = soxr.resample(wav, SR * speed, SR).astype(np.float32)
    lead = 0
    if opts.lead_in:
        lead = int(rng.integers(0, int(opts.lead_in * SR) + 1))
        wav = np.concatenate([np.zeros(lead, np.float32), wav])
    if opts.reverb_prob and rng.random() < opts.reverb_prob:
        wav = _reverb(wav, rng.uniform(*opts.rt60), rng)
    if opts.noise_prob and rng.random() < opts.noise_prob:
        level = _rms(wav[lead:])  # the SNR is against the speech, not the silence put before it
        wav = wav + _noise(len(wav), rng) * level / 10 ** (rng.uniform(*opts.snr_db) / 20)
    if opts.gain_db:
        wav = wav * 10 ** (rng.uniform(-opts.gain_db, opts.gain_db) / 20)
    warp = round(float(rng.uniform(1 - opts.vtlp, 1 + opts.vtlp)), 2) if opts.vtlp else 1.0
    return Augmented(np.clip(wav, -1.0, 1.0).astype(np.float32), speed, warp, _masks(opts, rng), lead / SR)


def _masks(opts: AugmentOptions, rng: np.random.Generator) -> tuple[tuple[str, float, float], ...]:
    bands = [("freq", rng.random(), rng.integers(0, opts.freq_mask_bins + 1) / N_MELS) for _ in range(opts.freq_masks)]
    runs = [("time", rng.random(), rng.uniform(0, opts.time_mask_share)) for _ in range(opts.time_masks)]
    return tuple((axis, float(start), float(width)) for axis, start, width in bands + runs)


def mask_features(mel, masks: tuple[tuple[str, float, float], ...]):
    """A copy of log-mel features [bins, frames] with each mask's band or run set to their mean (the
    value that carries no information); `masks` from `augment`. Without masks, `mel` itself."""
    if not masks:
        return mel
    out, fill = mel.clone(), mel.mean()
    for axis, start, width in masks:
        size = out.shape[0 if axis == "freq" else 1]
        n = int(round(width * size))
        a = int(start * (size - n + 1))
        if axis == "freq":
            out[a : a + n, :] = fill
        else:
            out[:, a : a + n] = fill
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white or pink (1/f power) noise."""
    white = rng.standard_normal(n)
    if rng.random() < 0.5:
        spec = np.fft.rfft(white)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        white = np.fft.irfft(spec, n)
    return (white / max(_rms(white), 1e-12)).astype(np.float32)


def _reverb(wav: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with noise decaying by 60 dB over rt60 seconds; keeps the dry signal's RMS."""
    t = np.arange(int(rt60 * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0
    n = 1 << (len(wav) + len(ir) - 1).bit_length()  # FFT convolution: O(n log n), not O(n * len(ir))
    wet = np.fft.irfft(np.fft.rfft(wav, n) * np.fft.rfft(ir, n), n)[: len(wav)]
    return (wet * _rms(wav) / max(_rms(wet), 1e-12)).astype(np.float32)
