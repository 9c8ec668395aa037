"""Log-mel features equal the reference's Whisper feature extractor."""
import numpy as np
import pytest
import torch

from asrstream.encoder.features import LogMel, mel_filters, num_frames

from .reference import speechlike


@pytest.fixture(scope="module")
def whisper_fe():
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400)


def test_mel_filters_equal_transformers_slaney_bank():
    from transformers.audio_utils import mel_filter_bank

    ref = mel_filter_bank(num_frequency_bins=201, num_mel_filters=128, min_frequency=0.0, max_frequency=8000.0,
                          sampling_rate=16000, norm="slaney", mel_scale="slaney")
    assert np.abs(ref - mel_filters(128)).max() < 1e-12


@pytest.mark.parametrize("seconds", [0.3, 1.0, 7.99, 8.0, 8.01, 17.3, 65.0, 0.0131])
def test_log_mel_matches_reference_extractor(whisper_fe, seconds):
    wav = speechlike(seconds, seed=int(seconds * 100))
    ref = whisper_fe(wav, sampling_rate=16000, padding=True, truncation=False, return_attention_mask=True,
                     return_tensors="pt")
    ours = LogMel()(wav)
    n = int(ref["attention_mask"].sum())
    assert ours.shape == (128, n) == (128, num_frames(len(wav)))
    assert (ref["input_features"][0, :, :n] - ours).abs().max().item() <= 1e-4


def test_too_short_audio_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        LogMel()(np.zeros(100, dtype=np.float32))


def test_normalisation_is_per_utterance():
    """The max-8 floor depends on the loudest frame, so a quiet prefix alone differs from within a loud clip."""
    quiet = speechlike(2.0, seed=1) * 0.001
    loud = np.concatenate([quiet, speechlike(2.0, seed=2)])
    alone = LogMel()(quiet)
    within = LogMel()(loud)[:, : alone.shape[1] - 2]
    assert not torch.allclose(alone[:, :-2], within, atol=1e-3)


def test_a_batch_of_clips_equals_each_clip_alone():
    clips = np.stack([speechlike(3.0, seed=i) * (10.0 ** -i) for i in range(3)])
    batch = LogMel()(clips)
    for i, clip in enumerate(clips):
        assert torch.equal(batch[i], LogMel()(clip))
