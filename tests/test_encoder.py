"""The AuT encoder equals the reference (windowed), and its window API composes."""
import numpy as np
import pytest
import torch

from asrstream.encoder.config import EncoderConfig
from asrstream.encoder.features import LogMel

from .reference import reference_and_ours, speechlike, windowed_reference

LENGTHS = [0.3, 1.0, 7.99, 8.0, 8.01, 17.3, 65.0]


@pytest.fixture(scope="module", params=[800, 400], ids=["window800", "window400"])
def pair(request, tmp_path_factory):
    return reference_and_ours(tmp_path_factory.mktemp("enc"), audio={"n_window_infer": request.param})


def _ref_encode(ref, mel):
    with torch.no_grad():
        return ref.thinker.audio_tower(mel, feature_lens=torch.tensor([mel.shape[1]])).last_hidden_state


@pytest.mark.parametrize("seconds", LENGTHS)
def test_encoder_output_matches_windowed_reference(pair, seconds):
    ref, net = pair
    mel = LogMel()(speechlike(seconds, seed=3))
    with windowed_reference():
        expected = _ref_encode(ref, mel)
    with torch.no_grad():
        ours = net.thinker.audio_tower([mel])[0]
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max().item() <= 1e-4


def test_unpatched_reference_attends_across_windows(pair):
    """The reference's SDPA path ignores its windows: it equals our layers run over one whole-utterance window."""
    ref, net = pair
    mel = LogMel()(speechlike(17.3, seed=4))
    tower = net.thinker.audio_tower
    with torch.no_grad():
        whole = tower.encode_windows([tower.embed(mel)])[0]
        windowed = tower([mel])[0]
    expected = _ref_encode(ref, mel)
    assert (whole - expected).abs().max().item() <= 1e-4
    assert (windowed - expected).abs().max().item() > 1e-4


def test_windows_encode_independently(pair):
    """Encoding closed windows one call at a time equals encoding the utterance at once."""
    _, net = pair
    tower = net.thinker.audio_tower
    mel = LogMel()(speechlike(20.0, seed=5))
    with torch.no_grad():
        emb = tower.embed(mel)
        parts = emb.split(tower.cfg.window_lengths(emb.shape[0]))
        one_by_one = torch.cat([tower.encode_windows([p])[0] for p in parts])
        whole = tower([mel])[0]
    assert torch.allclose(one_by_one, whole, atol=1e-5)


def test_batch_of_utterances_equals_each_alone(pair):
    _, net = pair
    tower = net.thinker.audio_tower
    mels = [LogMel()(speechlike(s, seed=i)) for i, s in enumerate([0.4, 3.0, 9.5])]
    with torch.no_grad():
        batch = tower(mels)
        alone = [tower([m])[0] for m in mels]
    for b, a in zip(batch, alone):
        assert torch.allclose(b, a, atol=1e-5)


def test_conv_chunks_are_independent_of_later_audio(pair):
    """A full 1 s conv chunk's embeddings do not change when more audio follows."""
    _, net = pair
    tower = net.thinker.audio_tower
    mel = LogMel()(speechlike(5.0, seed=6))
    with torch.no_grad():
        first = tower.embed_chunks(mel[None, :, :100])[0]
        within = tower.embed(mel)[:13]
    assert torch.allclose(first, within, atol=1e-6)


def test_token_arithmetic_matches_reference_formula():
    from qwen_asr.core.transformers_backend.processing_qwen3_asr import _get_feat_extract_output_lengths

    cfg = EncoderConfig(d_model=896, encoder_layers=18, encoder_attention_heads=14, encoder_ffn_dim=3584,
                        output_dim=1024)
    for n in [1, 30, 99, 100, 101, 799, 800, 801, 1730, 6500]:
        assert cfg.tokens_for_frames(n) == int(_get_feat_extract_output_lengths(np.array(n)))
    assert cfg.tokens_per_chunk == 13 and cfg.window_tokens == 104
    assert cfg.window_lengths(104 * 2 + 5) == [104, 104, 5]


def test_bad_encoder_config_names_the_field():
    with pytest.raises(ValueError, match="n_window_infer"):
        EncoderConfig(d_model=64, encoder_layers=1, encoder_attention_heads=4, encoder_ffn_dim=8, output_dim=8,
                      n_window_infer=450)
