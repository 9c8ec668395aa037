"""Training augmentation: vocal tract length perturbation (VTLP), SpecAugment masks, the lead-in and the
per-example draws."""
import dataclasses

import numpy as np
import pytest
import torch

from asrstream.encoder.features import LogMel, vtlp_warp
from asrstream.training.augment import AugmentOptions, augment, example_rng, mask_features

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


def test_masks_are_drawn_after_everything_else_within_their_limits():
    wav = speechlike(1.5, seed=3)
    on, off = AugmentOptions(vtlp=0.2, freq_masks=2, time_masks=3), AugmentOptions(vtlp=0.2)
    widths = {"freq": [], "time": []}
    for i in range(40):
        a, again, plain = (augment(wav, o, example_rng(0, 2, i)) for o in (on, on, off))
        assert a.masks == again.masks and plain.masks == ()
        assert np.array_equal(a.wav, plain.wav) and (a.speed, a.warp) == (plain.speed, plain.warp)
        assert [m[0] for m in a.masks] == ["freq", "freq", "time", "time", "time"]
        for axis, start, width in a.masks:
            assert 0.0 <= start < 1.0
            widths[axis].append(width)
    assert 0.0 <= min(widths["freq"]) and max(widths["freq"]) <= 27 / 128 and max(widths["freq"]) > 20 / 128
    assert 0.0 <= min(widths["time"]) and 0.04 < max(widths["time"]) <= 0.05


def test_mask_features_blanks_exactly_the_band_and_the_run():
    mel = torch.arange(128 * 200, dtype=torch.float32).reshape(128, 200)
    out = mask_features(mel, (("freq", 0.5, 10 / 128), ("time", 0.0, 0.1)))
    fill = mel.mean()
    band = (out == fill).all(dim=1).nonzero().ravel().tolist()
    run = (out == fill).all(dim=0).nonzero().ravel().tolist()
    assert band == list(range(59, 69)) and run == list(range(20))
    rest = torch.ones_like(mel, dtype=torch.bool)
    rest[59:69, :], rest[:, :20] = False, False
    assert torch.equal(out[rest], mel[rest]) and not torch.equal(mel, out)  # the input is not changed
    assert mask_features(mel, ()) is mel


def test_the_lead_in_puts_silence_before_the_audio_as_drawn():
    wav = speechlike(1.5, seed=4)
    on = AugmentOptions(speeds=(1.0,), gain_db=0.0, noise_prob=0.0, lead_in=1.0)
    off = dataclasses.replace(on, lead_in=0.0)
    leads = []
    for i in range(40):
        a, again, plain = (augment(wav, o, example_rng(0, 3, i)) for o in (on, on, off))
        n = round(a.lead * SR)
        assert a.lead == again.lead and np.array_equal(a.wav, again.wav) and plain.lead == 0.0
        assert not a.wav[:n].any() and np.array_equal(a.wav[n:], plain.wav)
        leads.append(a.lead)
    assert 0.0 <= min(leads) < 0.2 and 0.8 < max(leads) <= 1.0


def test_noise_over_the_lead_in_is_at_the_speechs_snr():
    wav = speechlike(1.5, seed=5)
    opts = AugmentOptions(speeds=(1.0,), gain_db=0.0, noise_prob=1.0, snr_db=(20.0, 20.0), lead_in=3.0)
    leads = []
    for i in range(10):
        a = augment(wav, opts, example_rng(0, 4, i))
        noise = a.wav - np.concatenate([np.zeros(round(a.lead * SR), np.float32), wav])
        snr = 20 * np.log10(np.sqrt(np.mean(wav**2)) / np.sqrt(np.mean(noise**2)))
        assert abs(snr - 20.0) < 0.01, (a.lead, snr)  # measured against speech and silence together, the
        leads.append(a.lead)  # noise would be 10 log10(1 + lead / 1.5 s) dB quieter: 1.5 dB at a 0.6 s lead
    assert max(leads) > 1.0 and min(leads) >= 0.0


@pytest.mark.parametrize("bad", [dict(freq_masks=-1), dict(time_masks=-2), dict(time_mask_share=0.6),
                                 dict(freq_mask_bins=129), dict(lead_in=-0.5), dict(lead_in=6.0)])
def test_bad_mask_options_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        AugmentOptions(**bad)
