"""Binary audio frames: any split (even inside a sample) decodes like the whole; resampling streams."""
from __future__ import annotations

import numpy as np
import pytest
import soxr

from asrstream.protocol.audio import PcmDecoder
from asrstream.protocol.messages import ProtocolError


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i : i + n])
        i, k = i + n, k + 1
    return out


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le"])
def test_frames_split_anywhere_decode_like_the_whole(encoding):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000) * 0.2).clip(-1, 1)
    data = (x * 32767).astype("<i2").tobytes() if encoding == "pcm_s16le" else x.astype("<f4").tobytes()
    whole = PcmDecoder(encoding).decode(data)
    d = PcmDecoder(encoding)
    assert d.decode(b"").size == 0  # an empty frame is fine
    parts = np.concatenate([d.decode(p) for p in _split(data, [1, 3, 7, 1000, 2])])
    assert np.array_equal(parts, whole) and d.rest == b"" and len(whole) == 16000
    if encoding == "pcm_s16le":
        assert np.allclose(whole, x, atol=1 / 16000)
    else:
        assert np.array_equal(whole, x.astype(np.float32))


def test_other_rates_are_resampled_as_a_stream():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(48000 * 2) * 0.1).astype(np.float32)
    d = PcmDecoder("pcm_f32le", 48000)
    got = np.concatenate([d.decode(p) for p in _split(x.tobytes(), [4 * 480, 4 * 1000 + 2])] + [d.flush()])
    ref = soxr.resample(x, 48000, 16000, quality="HQ")
    assert abs(len(got) - len(ref)) <= 1
    n = min(len(got), len(ref))
    assert np.abs(got[:n] - ref[:n]).max() < 1e-3


def test_nan_audio_and_bad_encodings_are_protocol_errors():
    with pytest.raises(ProtocolError) as e:
        PcmDecoder("pcm_f32le").decode(np.array([0.0, np.nan], dtype="<f4").tobytes())
    assert e.value.code == "bad_audio"
    with pytest.raises(ProtocolError) as e:
        PcmDecoder("mulaw")
    assert e.value.code == "invalid_field"
