"""Training augmentation: vocal tract length perturbation (VTLP) and the per-example draws."""
import numpy as np
import pytest
import torch

from asrstream.encoder.features import LogMel, vtlp_warp
from asrstream.training.augment import AugmentOptions, augment, example_rng

from .reference import speechlike

SR = 16000


def _tone(hz: float, seconds: float = 0.5) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def _peak_bin(mel: torch.Tensor) -> int:
    return int(mel.mean(dim=1).argmax())


@pytest.mark.parametrize("warp", [0.85, 1.1, 1.2])
def test_vtlp_moves_a_tone_by_the_warp_factor(warp):
    mel = LogMel()  # 800 Hz and 800 * warp are on the 40 Hz grid of the STFT's bins: no leakage between them
    moved = _peak_bin(mel(_tone(800.0), warp))
    assert moved == _peak_bin(mel(_tone(800.0 * warp))) and moved != _peak_bin(mel(_tone(800.0)))


def test_warp_one_is_the_plain_features():
    wav = speechlike(2.0, seed=1)
    assert torch.equal(LogMel()(wav, 1.0), LogMel()(wav))


@pytest.mark.parametrize("warp", [0.8, 0.93, 1.0, 1.17, 1.3])
def test_vtlp_map_is_monotonic_and_keeps_the_band(warp):
    f = np.linspace(0.0, 8000.0, 401)
    w = vtlp_warp(f, warp, 8000.0)
    assert w[0] == 0.0 and w[-1] == pytest.approx(8000.0) and np.all(np.diff(w) > 0)
    assert w[40] == pytest.approx(warp * f[40])  # 800 Hz: inside the scaled range


def test_augment_draws_the_warp_last_in_range_and_reproducibly():
    wav = speechlike(1.5, seed=2)
    on, off = AugmentOptions(vtlp=0.2), AugmentOptions()
    warps = []
    for i in range(40):
        a, b = augment(wav, on, example_rng(0, 1, i)), augment(wav, on, example_rng(0, 1, i))
        plain = augment(wav, off, example_rng(0, 1, i))
        assert a.warp == b.warp and np.array_equal(a.wav, b.wav) and plain.warp == 1.0
        assert np.array_equal(a.wav, plain.wav) and a.speed == plain.speed  # the other draws are unchanged
        warps.append(a.warp)
    assert 0.8 <= min(warps) < 0.95 and 1.05 < max(warps) <= 1.2
    assert all(round(w, 2) == w for w in warps)


@pytest.mark.parametrize("vtlp", [-0.1, 0.31])
def test_out_of_range_vtlp_is_refused(vtlp):
    with pytest.raises(ValueError, match="vtlp"):
        AugmentOptions(vtlp=vtlp)
