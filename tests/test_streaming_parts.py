"""The streaming layer's parts alone: options, rollback policy, endpointing, incremental features/encoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from asrstream import load_model
from asrstream.encoder.features import LogMel
from asrstream.streaming.encoder import OFFLINE, STEP, SegmentEncoder, encode
from asrstream.streaming.endpoint import Endpointer, VoiceDetector
from asrstream.streaming.features import IncrementalMel
from asrstream.streaming.options import StreamOptions
from asrstream.streaming.rollback import next_prefix, split_stable

from .reference import speechlike
from .speech import SENTENCES, noise, silence, tts


@pytest.mark.parametrize("field,value", [
    ("chunk_seconds", 0.3), ("chunk_seconds", 4.5), ("chunk_seconds", 0.55), ("chunk_seconds", "1"),
    ("rollback_tokens", -1), ("rollback_tokens", 2.5), ("unfixed_chunks", -1), ("window_seconds", 0),
    ("window_seconds", 9), ("window_seconds", 2.0), ("encoder_mode", "fast"), ("final_pass", "none"),
    ("vad_aggressiveness", 4), ("vad_frame_ms", 25), ("silence_ms", 50), ("max_segment_seconds", 2),
    ("max_segment_seconds", float("nan")), ("word_timestamps", 1), ("interim_results", "yes"),
    ("language", 5), ("context", "x" * 10001), ("max_new_tokens", 0), ("max_tokens_per_second", 0.5),
])
def test_options_are_validated_with_the_field_named(field, value):
    with pytest.raises(ValueError, match=f"option {field} "):
        StreamOptions(**{field: value})


def test_default_options_and_token_limit():
    o = StreamOptions()
    assert (o.chunk_seconds, o.rollback_tokens, o.unfixed_chunks, o.silence_ms, o.max_segment_seconds) == (1.0, 5, 2, 600, 30.0)
    assert o.token_limit(2.0) == 8 + 30
    assert StreamOptions(max_tokens_per_second=None).token_limit(100.0) == o.max_new_tokens


def _decode(ids: list[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def test_no_prefix_during_the_first_unfixed_chunks():
    hyp = list(b"hello world")
    assert next_prefix([], hyp, steps_done=1, unfixed_chunks=2, rollback=5, decode=_decode) == []
    assert next_prefix([], hyp, steps_done=2, unfixed_chunks=2, rollback=5, decode=_decode) == list(b"hello ")


def test_prefix_never_ends_inside_a_multibyte_character():
    hyp = list("añb€cd".encode())  # a, ñ (2 bytes), b, € (3 bytes), c, d
    for k in range(len(hyp)):
        p = next_prefix([], hyp, 5, 0, k, _decode)
        assert "\ufffd" not in _decode(p) and hyp[: len(p)] == p
    assert next_prefix([], hyp, 5, 0, 4, _decode) == list("añb".encode())  # cut back out of the euro sign


def test_prefix_only_grows():
    prev = list(b"hello wor")
    assert next_prefix(prev, prev + list(b"ld"), 9, 2, 5, _decode) == prev  # short hypothesis: keep all of prev
    assert next_prefix(prev, prev + list(b"ld again!"), 9, 2, 5, _decode) == list(b"hello world a")
    assert next_prefix([7], [7], 9, 2, 5, _decode) == [7]  # at least one token once past unfixed chunks


def test_split_stable_keeps_stable_text_a_prefix():
    raw = "language English<asr_text>hello world again"
    assert split_stable("language English<asr_text>hello ", raw, None, "") == ("hello", " world again", "English")
    assert split_stable("language Eng", raw, None, "")[0] == ""  # the tag is not stable yet: nothing is
    assert split_stable("hello ", "hello world", "English", "") == ("hello", " world", "English")
    # a stable text never shrinks, whatever parsing does to the later hypothesis
    assert split_stable("language English<asr_text>hel", "language English<asr_text>help", None, "hello") == ("hello", "", "English")


def _endpoints(flags: list[bool], frame_ms=30, silence_ms=600):
    ep = Endpointer(frame_ms, silence_ms)
    return [e for f in flags for e in ep.push(f)]


def test_endpointer_starts_with_preroll_and_ends_after_silence():
    flags = [False] * 50 + [True] * 40 + [False] * 30
    ev = _endpoints(flags)
    frame = 480
    assert ev[0] == ("start", 50 * frame - 3200)
    assert ev[1] == ("end", 90 * frame + 2400)  # last voiced frame end + 150 ms hangover
    assert len(ev) == 2


def test_endpointer_ignores_isolated_voiced_frames_and_short_pauses():
    clicks = ([True] + [False] * 6) * 30
    assert _endpoints(clicks) == []
    talk = [True] * 30 + [False] * 15 + [True] * 30 + [False] * 25  # a 450 ms pause does not end it
    assert [k for k, _ in _endpoints(talk)] == ["start", "end"]


def test_vad_on_synthesized_speech_silence_and_noise():
    vad = VoiceDetector(2, 30)
    speech = np.mean(vad.frames(tts(SENTENCES[0])))
    assert speech > 0.5
    assert not any(VoiceDetector(2, 30).frames(silence(3.0)))
    assert np.mean(VoiceDetector(2, 30).frames(noise(3.0))) < 0.1
    # frames may arrive split anywhere: same decisions
    a, b = VoiceDetector(2, 10), VoiceDetector(2, 10)
    x = tts(SENTENCES[1])
    whole = a.frames(x)
    parts = [f for i in range(0, len(x), 77) for f in b.frames(x[i : i + 77])]
    assert whole == parts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_features_equal_offline_features_of_every_prefix(seed):
    mel = LogMel()
    wav = speechlike(6.0, seed=seed)
    inc = IncrementalMel(mel)
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(wav):
        k = int(rng.integers(1, 6000))
        inc.append(wav[i : i + k])
        i += k
        if inc.audio.size >= 201:
            assert torch.equal(inc.features(0, inc.frames), mel(wav[: inc.audio.size]))
    assert inc.frames_computed <= inc.frames + 2 * 60  # each frame once, plus <= 2 provisional per call


def test_truncated_features_equal_offline_features_of_the_prefix():
    mel = LogMel()
    wav = speechlike(5.0, seed=4)
    for n in (201, 4000, 16000 + 77, 40003):
        inc = IncrementalMel(mel)
        for i in range(0, len(wav), 3000):
            inc.append(wav[i : i + 3000])
        inc.truncate(n)
        assert inc.audio.size == n and torch.equal(inc.features(0, inc.frames), mel(wav[:n]))
        if n >= 16000:  # and it grows on from there as if never cut
            inc.append(wav[n : n + 5000])
            assert torch.equal(inc.features(0, inc.frames), mel(wav[: n + 5000]))


@pytest.fixture(scope="module")
def tiny_w2(tmp_path_factory):
    from asrstream.testmodel import make_test_model
    d = make_test_model(tmp_path_factory.mktemp("w2"), "asr", "tiny", seed=0, overrides={"audio": {"n_window_infer": 200}})
    return load_model(str(d), dtype="float32")


def _stream_encoder(model, wav, mode, step_samples):
    tower = model.net.thinker.audio_tower
    enc = SegmentEncoder(tower, IncrementalMel(model.mel), tower.cfg.window_tokens, mode)
    outs = []
    for end in range(step_samples, len(wav) + step_samples, step_samples):
        end = min(end, len(wav))
        enc.mel.append(wav[enc.mel.audio.size : end])
        outs.append((end, encode(tower, [(enc, STEP)])[0]))
    return enc, outs


def test_exact_mode_equals_the_offline_encoder_at_every_step(tiny_w2):
    wav = speechlike(7.3, seed=1)
    tower = tiny_w2.net.thinker.audio_tower
    enc, outs = _stream_encoder(tiny_w2, wav, "exact", 8000)
    with torch.inference_mode():
        for end, out in outs:
            off = tower([tiny_w2.mel(wav[:end])])[0]
            assert out.tokens.shape == off.shape
            assert (out.tokens - off).abs().max().item() < 1e-5
            # closed windows are whole 2 s windows; what is open is less than a window plus a chunk
            assert out.fixed % 26 == 0 and off.shape[0] - 26 - 13 < out.fixed <= off.shape[0]
    # work: every token encoded at most (1 + window / step) times, closed windows never again
    tokens = outs[-1][1].tokens.shape[0]
    assert enc.tokens_encoded <= (1 + 2.0 / 0.5) * tokens
    assert enc.chunks_embedded == 7


def test_cached_mode_encodes_each_token_once_and_offline_pass_is_exact(tiny_w2):
    wav = speechlike(7.0, seed=2)
    tower = tiny_w2.net.thinker.audio_tower
    enc, outs = _stream_encoder(tiny_w2, wav, "cached", 16000 + 40)
    final_tokens = outs[-1][1].tokens
    assert enc.tokens_encoded == final_tokens.shape[0] == 6 * 13  # complete chunks only, each once
    with torch.inference_mode():
        off = tower([tiny_w2.mel(wav)])[0]
        approx = (final_tokens - off[: final_tokens.shape[0]]).abs().max().item()
        exact = encode(tower, [(enc, OFFLINE)])[0]
    assert 1e-4 < approx  # cached mode really is an approximation ...
    assert (exact.tokens - off).abs().max().item() < 1e-5  # ... and the offline pass is exact


def test_offline_pass_re_embeds_chunks_whose_floor_moved(tiny_w2):
    """Quiet first seconds, then a much louder part: the normalisation floor rises; the final is exact."""
    wav = np.concatenate([speechlike(3.0, seed=3) * 1e-4, speechlike(3.0, seed=4)])
    tower = tiny_w2.net.thinker.audio_tower
    enc, _ = _stream_encoder(tiny_w2, wav, "exact", 16040)
    before = enc.chunks_embedded
    with torch.inference_mode():
        final = encode(tower, [(enc, OFFLINE)])[0]
        off = tower([tiny_w2.mel(wav)])[0]
    assert enc.chunks_embedded > before  # moved chunks were embedded again
    assert final.unchanged < 26  # and the windows over them were not reused
    assert (final.tokens - off).abs().max().item() < 1e-5


def test_a_truncated_segment_encodes_exactly_its_prefix(tiny_w2):
    """Steps took 7 s; the segment ends at 3.71 s (before a loud part, so the floor moves back)."""
    wav = np.concatenate([speechlike(4.0, seed=5) * 0.01, speechlike(3.0, seed=6)])
    tower = tiny_w2.net.thinker.audio_tower
    enc, _ = _stream_encoder(tiny_w2, wav, "exact", 8000)
    n = 59360
    enc.truncate(n)
    with torch.inference_mode():
        final = encode(tower, [(enc, OFFLINE)])[0]
        off = tower([tiny_w2.mel(wav[:n])])[0]
    assert final.tokens.shape == off.shape
    assert (final.tokens - off).abs().max().item() < 1e-5
