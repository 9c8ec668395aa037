"""Tests for asrstream.encoder.audio: loading, resampling, validation, low-energy splitting."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from asrstream.encoder.audio import (
    SAMPLE_RATE,
    AudioError,
    check_samples,
    load_audio,
    split_at_low_energy,
    to_mono_16k,
)


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """qwen_asr/inference/utils.py loaded on its own: the package __init__ imports torch."""
    pytest.importorskip("librosa")
    spec = importlib.util.find_spec("qwen_asr")
    if spec is None or spec.origin is None:
        pytest.skip("reference package qwen_asr is not installed")
    path = Path(spec.origin).parent / "inference" / "utils.py"
    module_spec = importlib.util.spec_from_file_location("qwen_asr_reference_utils", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def tone(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


# ---- loading and resampling -------------------------------------------------------------


def test_int16_wav_at_8k_is_resampled_to_16k_float32(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440, 8000, 1.0), 8000, subtype="PCM_16")
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.shape == (16000,)


@pytest.mark.parametrize("name, sr", [("b.flac", 44100), ("c.wav", 44100), ("d.ogg", 8000)])
def test_resampled_length_is_ceil_of_rate_ratio(tmp_path, name, sr):
    path = tmp_path / name
    n = 12345
    sf.write(path, tone(440, sr, n / sr), sr)
    assert load_audio(path).shape == (-(-n * SAMPLE_RATE // sr),)


@pytest.mark.parametrize("name, sr", [("t.wav", 44100), ("t.flac", 8000), ("t.ogg", 22050)])
def test_resampled_440hz_tone_keeps_its_frequency(tmp_path, name, sr):
    path = tmp_path / name
    sf.write(path, tone(440, sr, 2.0), sr)
    assert abs(peak_hz(load_audio(path)) - 440) < 1.0


def test_stereo_file_is_averaged_to_mono(tmp_path):
    left = tone(440, SAMPLE_RATE, 0.5)
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), left / 2, atol=1e-7)


def test_float_wav_at_16k_is_returned_unchanged(tmp_path):
    x = tone(300, SAMPLE_RATE, 0.25, amp=0.9)
    path = tmp_path / "f.wav"
    sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), x)


@pytest.mark.parametrize(
    "name, sr, channels, subtype",
    [("r.wav", 44100, 2, "PCM_16"), ("r.flac", 48000, 1, "PCM_24"), ("r.wav", 8000, 1, "FLOAT")],
)
def test_load_audio_matches_reference_normalize_audio_input(
    reference, tmp_path, name, sr, channels, subtype
):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.5 if subtype == "FLOAT" else -1, 1, (sr, channels)).astype(np.float32)
    path = tmp_path / name
    sf.write(path, x, sr, subtype=subtype)
    np.testing.assert_array_equal(load_audio(path), reference.normalize_audio_input(str(path)))


# ---- amplitude and dtype handling -------------------------------------------------------


def test_int16_and_int32_samples_are_scaled_to_unit_range():
    np.testing.assert_array_equal(
        check_samples(np.array([16384, -32768], np.int16), "x"), [0.5, -1.0]
    )
    np.testing.assert_array_equal(
        check_samples(np.array([2**30, -(2**31)], np.int32), "x"), [0.5, -1.0]
    )


def test_float_audio_peaking_above_one_is_divided_by_peak():
    out = to_mono_16k(np.array([0.5, 2.0, -1.0], np.float64), SAMPLE_RATE)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.25, 1.0, -0.5])


def test_float_audio_within_unit_range_is_not_rescaled():
    x = np.array([0.1, -0.8, 0.3], np.float32)
    np.testing.assert_array_equal(to_mono_16k(x, SAMPLE_RATE), x)


def test_to_mono_16k_averages_t_by_c_channels_and_resamples():
    x = np.stack([tone(440, 32000, 1.0), tone(440, 32000, 1.0)], axis=1)
    out = to_mono_16k(x, 32000)
    assert out.shape == (16000,)
    assert abs(peak_hz(out) - 440) < 1.0


# ---- errors -----------------------------------------------------------------------------


def test_missing_file_raises_no_such_file(tmp_path):
    with pytest.raises(AudioError, match="no such file: .*missing.wav"):
        load_audio(tmp_path / "missing.wav")


def test_text_file_named_wav_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("hello, not audio")
    with pytest.raises(AudioError, match=r"notes.wav is not an audio file soundfile can read \("):
        load_audio(path)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)


def test_empty_wav_raises_empty(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"empty.wav is empty \(0 samples\)"):
        load_audio(path)


def test_nan_float_wav_raises(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.1, np.nan, 0.2], np.float32), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav contains NaN or Inf"):
        load_audio(path)


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.array([0.0, np.inf], np.float32), "NaN or Inf"),
        (np.zeros(0, np.float32), "empty"),
        (np.zeros((2, 4000), np.float32), "more channels than samples"),
        (np.zeros((4, 2, 2), np.float32), "shape"),
        (np.array([1, 2], np.uint8), "unsupported sample dtype"),
    ],
)
def test_check_samples_rejects_bad_arrays_naming_the_input(bad, pattern):
    with pytest.raises(AudioError, match=pattern) as info:
        check_samples(bad, "mic")
    assert str(info.value).startswith("mic")


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)


# ---- split_at_low_energy ----------------------------------------------------------------


def assert_exact_cover(spans: list[tuple[int, int]], total: int) -> None:
    assert spans[0][0] == 0 and spans[-1][1] == total
    assert all(a < b for a, b in spans) or total == 0
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_25_minutes_with_silent_gaps_is_cut_exactly_at_the_gaps():
    rng = np.random.default_rng(0)
    total = 25 * 60 * SAMPLE_RATE
    wav = rng.random(total, dtype=np.float32) - np.float32(0.5)
    gaps, g = [], 0
    while total - g > 60 * SAMPLE_RATE:  # next gap 56-64 s after the previous cut
        g += int(rng.uniform(56, min(64, (total - g) / SAMPLE_RATE - 1)) * SAMPLE_RATE)
        width = int(rng.uniform(0.3, 1.0) * SAMPLE_RATE)
        wav[g : g + width] = 0.0
        gaps.append((g, g + width))
    spans = split_at_low_energy(wav, max_seconds=60, search_seconds=5)
    assert_exact_cover(spans, total)
    assert all(b - a <= 65 * SAMPLE_RATE for a, b in spans)
    cuts = [b for _, b in spans[:-1]]
    assert all(any(a <= c < b for a, b in gaps) for c in cuts)
    assert cuts == [a for a, _ in gaps]


def test_spans_never_exceed_max_plus_search_seconds():
    rng = np.random.default_rng(3)
    wav = rng.standard_normal(300 * SAMPLE_RATE).astype(np.float32)
    spans = split_at_low_energy(wav, max_seconds=20, search_seconds=2)
    assert_exact_cover(spans, len(wav))
    assert all(b - a <= 22 * SAMPLE_RATE for a, b in spans)


def test_audio_no_longer_than_max_is_one_span():
    assert split_at_low_energy(np.zeros(30 * SAMPLE_RATE, np.float32), 30) == [(0, 480000)]
    assert split_at_low_energy(np.zeros(0, np.float32), 30) == [(0, 0)]


def test_short_tail_is_not_padded():
    wav = np.ones(10 * SAMPLE_RATE + 100, np.float32)
    spans = split_at_low_energy(wav, max_seconds=10, search_seconds=0)
    assert spans == [(0, 160000), (160000, 160100)]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_seconds": 0}, {"max_seconds": 5, "search_seconds": -1}, {"max_seconds": 5, "window_ms": 0}],
)
def test_split_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        split_at_low_energy(np.zeros(100 * SAMPLE_RATE, np.float32), **kwargs)


def test_split_rejects_multichannel_input():
    with pytest.raises(ValueError, match="mono"):
        split_at_low_energy(np.zeros((1000, 2), np.float32), 0.01)


def reference_spans(reference: ModuleType, wav: np.ndarray, *args: float) -> list[tuple[int, int]]:
    chunks = reference.split_audio_into_chunks(wav, SAMPLE_RATE, *args)
    starts = [round(offset * SAMPLE_RATE) for _, offset in chunks]
    return list(zip(starts, starts[1:] + [len(wav)]))


@pytest.mark.parametrize(
    "seed, seconds, args",
    [
        (0, 200, (30.0,)),
        (1, 95, (20.0, 3.0, 50.0)),
        (2, 40, (3.0, 5.0, 100.0)),  # search window wider than a piece
        (3, 61, (30.0, 5.0, 0.1)),  # 4-sample minimum window
    ],
)
def test_spans_match_reference_split_audio_into_chunks(reference, seed, seconds, args):
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    envelope = np.repeat(rng.uniform(0.01, 1.0, n // 800 + 1), 800)[:n]
    wav = (rng.standard_normal(n) * envelope).astype(np.float32)
    assert split_at_low_energy(wav, *args) == reference_spans(reference, wav, *args)


def test_audio_module_does_not_import_torch():
    code = "import sys, asrstream.encoder.audio; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
