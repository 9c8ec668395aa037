"""The synthetic corpus: text normalised for speaking, every voice engine speaks, festival, espeak and
Kokoro word times line up with the aligner's word units and the speech, the held-out speaker and
sentences stay out of training."""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asrstream.decoder.words import split_words
from asrstream.training.corpus import build, plan
from asrstream.training.engine import run_engine
from asrstream.training.manifest import read_manifest
from asrstream.training import texts
from asrstream.training.texts import chain_sentences, fortune_sentences, gcide_sentences, normalize_for_speech
from asrstream.training.voices import VOICES, synthesize, voice


@pytest.mark.parametrize("raw,spoken", [
    ("In 1984 he paid $5.50 for 3 apples.", "In nineteen eighty-four he paid five dollars fifty cents for three apples."),
    ("It was the 23rd of May, 2005, at 7:30.", "It was the twenty-third of May, two thousand five, at seven thirty."),
    ("About 50% of 1,250,000 people.", "About fifty percent of one million two hundred fifty thousand people."),
    ("Mr. Smith met Dr. Jones at 10:05 & left.", "Mister Smith met Doctor Jones at ten oh five and left."),
    ("The 1960s were loud (very).", "The nineteen sixties were loud very."),
])
def test_numbers_and_abbreviations_are_spoken(raw, spoken):
    assert normalize_for_speech(raw) == spoken


@pytest.mark.parametrize("raw", ["Sam: What will you have?", "x = y + 2;", "Hi.", "See http://x.org now please"])
def test_unspeakable_sentences_are_dropped(raw):
    assert normalize_for_speech(raw) is None


def test_fortune_sentences_are_many_clean_and_distinct():
    s = fortune_sentences()
    assert len(s) > 5000 and len({x.lower() for x in s}) == len(s)
    assert all(normalize_for_speech(x) == x for x in s[:500])


@pytest.mark.parametrize("engine", ["espeak", "flite", "festival", "piper", "kokoro"])
def test_every_engine_speaks_at_16khz_with_speed_control(engine):
    v = next(x for x in VOICES if x.engine == engine)
    text = "Streaming speech recognition turns spoken words into text."
    (slow, words), (fast, _) = synthesize(v, [text, text], [0.85, 1.2], [0.0, 0.0])
    # Nominal ratio 0.85 / 1.2 = 0.71. Piper's duration predictor samples (noise_w) and rounds each
    # phoneme to whole frames, so its ratio was 0.81-0.87 over 10 runs; without speed control it is ~1.
    assert 0.5 < np.abs(slow).max() <= 0.91 and len(fast) < 0.92 * len(slow)
    assert (words is not None) == v.timed


@pytest.mark.parametrize("name,text", [
    ("festival-slt", "It was the twenty-third of May, don't you know? Mister O'Neill's cat."),
    ("espeak-en-us+m3", "Rain fell on May twenty-third, don't you know? Mister O'Neill's cat."),
    ("kokoro-af_heart", "It was the twenty-third of May, don't you know? Mister O'Neill's cat."),
    ("kokoro-bm_george", "It was the twenty-third of May, don't you know? Mister O'Neill's cat."),
])
def test_word_times_are_the_aligner_units_in_order_inside_the_audio(name, text):
    (wav, words), = synthesize(voice(name), [text], [1.0], [0.0])
    assert [w["word"] for w in words] == split_words(text, "English")
    starts, ends = [w["start"] for w in words], [w["end"] for w in words]
    assert all(a < b for a, b in zip(starts, ends)) and starts == sorted(starts)
    assert all(b <= a for b, a in zip(ends, starts[1:]))
    assert 0 <= starts[0] and ends[-1] <= len(wav) / 16000


@pytest.mark.parametrize("name", ["espeak-en-us+f2", "espeak-en-gb-scotland+m7"])
def test_espeak_word_times_fall_on_the_speech_and_pauses_fall_between_words(name):
    (wav, words), = synthesize(voice(name), ["Hello there. Good morning, my old friend. See you soon."], [1.0], [0.0])

    def rms(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(wav[int(a * 16000) : int(b * 16000)] ** 2)))

    assert min(rms(w["start"], w["end"]) for w in words) > 0.05
    pauses = [(a["end"], b["start"]) for a, b in zip(words, words[1:]) if b["start"] - a["end"] >= 0.05]
    assert len(pauses) >= 3  # after "there.", "morning," and "friend."
    assert all(rms(a, b) < 0.01 for a, b in pauses)


def test_espeak_leaves_untimed_what_it_does_not_time_word_by_word():
    # espeak-ng gives "the" here no event of its own ("was the" is one word to it): no times, not wrong ones
    (wav, words), = synthesize(voice("espeak-en-us+m3"), ["It was the twenty-third of May."], [1.0], [0.0])
    assert words is None and len(wav) > 16000


def test_espeak_through_its_library_sounds_as_its_command_line_does():
    # in a fresh process: the library keeps some state between texts (a clause after a question can
    # gain a short pause), which moves its word events with the audio, so times stay right
    text = "Streaming speech recognition turns spoken words into text."
    code = ("import sys; from asrstream.training.espeak import speak; "
            f"a, sr, _ = speak('en-us+f4', {text!r}, 180, 60); sys.stdout.buffer.write(a.tobytes())")
    lib = np.frombuffer(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout, np.int16)
    cli = subprocess.run(["espeak-ng", "-v", "en-us+f4", "-s", "180", "-p", "60", "--stdout", text],
                         capture_output=True, check=True).stdout
    ref, _ = sf.read(io.BytesIO(cli), dtype="int16")
    n = min(len(lib), len(ref))
    assert n > 0.9 * len(ref) and np.array_equal(lib[:n], ref[:n])
    from asrstream.training.espeak import speak

    with pytest.raises(ValueError, match="no voice"):
        speak("xx-nobody", text, 180, 60)


def test_a_failing_or_hung_speech_engine_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"^sh failed \(exit status 3\): no such voice$"):
        run_engine(["sh", "-c", "echo 'no such voice' >&2; exit 3"])
    with pytest.raises(RuntimeError, match=r"^sleep gave no speech within 0.2 s: sleep 5$"):
        run_engine(["sleep", "5"], timeout=0.2)


def test_corpus_keeps_the_held_out_speaker_and_sentences_out_of_training(tmp_path):
    counts = build(tmp_path, 24, 6, workers=2)
    assert counts == {"train": 24, "heldout": 6, "dev": 3}
    rows = {s: [json.loads(x) for x in (tmp_path / f"{s}.jsonl").read_text().splitlines()] for s in counts}
    assert {r["voice"] for r in rows["heldout"]} == {"festival-slt", "flite-slt"}
    assert not {r["voice"] for r in rows["train"] + rows["dev"]} & {"festival-slt", "flite-slt"}
    assert len({r["voice"] for r in rows["train"]}) == 24  # round-robin over the 76 training voices
    assert not {r["text"] for r in rows["train"]} & {r["text"] for r in rows["heldout"] + rows["dev"]}
    for split in counts:
        for ex in read_manifest(tmp_path / f"{split}.jsonl"):
            info = sf.info(str(ex.audio))
            assert info.samplerate == 16000 and info.channels == 1 and abs(info.duration - ex.duration) < 1e-3
    timed = read_manifest(tmp_path / "heldout_timed.jsonl", need_words=True)
    assert len(timed) == 3 and all(ex.words for ex in timed)  # festival-slt's half of the held-out set


def test_cli_lists_voices_and_rejects_bad_counts(tmp_path):
    r = subprocess.run([sys.executable, "-m", "asrstream", "corpus", str(tmp_path), "--list-voices"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "festival-slt\tfestival\tword times" in r.stdout
    r = subprocess.run([sys.executable, "-m", "asrstream", "corpus", str(tmp_path), "--utterances", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "--utterances" in r.stderr


def test_plan_can_limit_training_to_chosen_voices():
    rows = plan(40, 4, ("festival-slt",), 0, ("festival-kal", "festival-ked"))
    assert {r["voice"] for r in rows if r["split"] != "heldout"} == {"festival-kal", "festival-ked"}
    assert {r["voice"] for r in rows if r["split"] == "heldout"} == {"festival-slt"}
    with pytest.raises(ValueError, match="both held out and trained on"):
        plan(4, 2, ("festival-slt",), 0, ("festival-slt",))
    with pytest.raises(ValueError, match="unknown voice"):
        plan(4, 2, ("festival-slt",), 0, ("festival-nobody",))


def test_chained_sentences_are_new_walks_along_the_sources_word_bigrams():
    sources = fortune_sentences()[:3000]
    held_out = fortune_sentences()[3000:3100]
    out = chain_sentences(sources, 300, seed=3, avoid=held_out)
    words = [s.split() for s in sources]
    starts, ends = {w[0] for w in words}, {w[-1] for w in words}
    bigrams = {(a, b) for w in words for a, b in zip(w, w[1:])}
    assert len({s.lower() for s in out}) == 300
    assert not {s.lower() for s in out} & {s.lower() for s in sources + held_out}
    for s in out:
        w = s.split()
        assert 4 <= len(w) <= 20 and w[0] in starts and w[-1] in ends, s
        assert all(pair in bigrams for pair in zip(w, w[1:])), s
    assert chain_sentences(sources, 300, seed=3, avoid=held_out) == out
    assert chain_sentences(sources, 300, seed=4, avoid=held_out) != out
    with pytest.raises(ValueError, match="0 of 2 new sentences"):
        chain_sentences(["One two three four."], 2, seed=0)  # its only walk is the source itself


def test_plan_with_chained_text_changes_only_the_training_sentences():
    fortunes = plan(30, 6, ("festival-slt",), 0)
    chained = plan(30, 6, ("festival-slt",), 0, text="chain")
    assert [r for r in chained if r["split"] != "train"] == [r for r in fortunes if r["split"] != "train"]
    train = [r for r in chained if r["split"] == "train"]
    assert [(r["voice"], r["speed"]) for r in train] == [(r["voice"], r["speed"]) for r in fortunes[:30]]
    assert not {r["text"].lower() for r in train} & {s.lower() for s in fortune_sentences()}
    other = plan(30, 6, ("festival-slt",), 0, text="chain", chain_seed=9)  # a second corpus, same split
    assert [r for r in other if r["split"] != "train"] == [r for r in chained if r["split"] != "train"]
    assert not {r["text"] for r in other[:30]} & {r["text"] for r in train}
    assert plan(30, 6, ("festival-slt",), 0, text="chain", chain_seed=1) == chained  # the default is seed + 1
    with pytest.raises(ValueError, match="text must be one of"):
        plan(4, 2, ("festival-slt",), 0, text="bible")
    with pytest.raises(ValueError, match="chain seed applies only"):
        plan(4, 2, ("festival-slt",), 0, chain_seed=3)


GCIDE_SAMPLE = """Abdicate \\Ab"di*cate\\, v. t. [L. abdicatus, p. p. of abdicare.]
   1. To surrender or relinquish, as sovereign power; to
      withdraw from filling or exercising, as a high office.
      [1913 Webster]

            Wherefore should he abdicate his own right to his
            son? --Milton.
      [1913 Webster]

Abdomen \\Ab*do"men\\, n.
   2. (Zool.) The posterior section of the body, behind the
      thorax, in insects. Also called the belly. Not continent; incontinent. 2
      Tim. iii. 3. A place for hiding articles,things of value;, or letters.
      [1913 Webster]

Abdicate \\Ab"di*cate\\, v. i.
   To surrender or relinquish, as sovereign power; to withdraw from filling or exercising, as a high office.
"""


def _gcide(tmp_path, text: str):
    path = tmp_path / "gcide.dict.dz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


def test_gcide_sentences_are_the_dictionarys_prose_without_its_apparatus(tmp_path):
    assert gcide_sentences(_gcide(tmp_path, GCIDE_SAMPLE)) == [
        "To surrender or relinquish, as sovereign power; to withdraw from filling or exercising, as a high office.",
        "Wherefore should he abdicate his own right to his son?",
        "The posterior section of the body, behind the thorax, in insects.",
        "Also called the belly.",
        "A place for hiding articles, things of value; or letters.",
    ]  # headwords, [etymologies], sense numbers, (labels), --attributions, cited verses, repeats: dropped
    with pytest.raises(RuntimeError, match="apt-get install dict-gcide"):
        gcide_sentences(tmp_path / "none.dz")


def test_plan_with_gcide_text_draws_dictionary_sentences_that_are_not_held_out(tmp_path, monkeypatch):
    fortunes = plan(6, 4, ("festival-slt",), 0)
    held = [r["text"] for r in fortunes if r["split"] == "heldout"]
    own = [f"The number {w} is a word of this test dictionary." for w in ("one", "two", "three", "four", "five",
                                                                         "six", "seven", "eight", "nine")]
    lines = "\n".join(f"   {s}" for s in [held[0], *own])
    monkeypatch.setattr(texts, "GCIDE", _gcide(tmp_path, f"Word \\Word\\, n.\n{lines}\n"))
    drawn = plan(6, 4, ("festival-slt",), 0, text="gcide")
    assert [r for r in drawn if r["split"] != "train"] == [r for r in fortunes if r["split"] != "train"]
    train = [r["text"] for r in drawn if r["split"] == "train"]
    assert len(set(train)) == 6 and set(train) <= set(own)  # the held-out sentence is never drawn
    assert plan(6, 4, ("festival-slt",), 0, text="gcide", chain_seed=1) == drawn  # the default is seed + 1
    other = [r["text"] for r in plan(6, 4, ("festival-slt",), 0, text="gcide", chain_seed=5) if r["split"] == "train"]
    assert other != train and set(other) <= set(own)
    with pytest.raises(ValueError, match="GCIDE holds 9"):
        plan(10, 4, ("festival-slt",), 0, text="gcide")


def test_the_installed_gcide_gives_two_hundred_thousand_speakable_sentences():
    out = gcide_sentences()  # .ci/run installs dict-gcide
    assert len(out) > 200_000
    assert all(normalize_for_speech(s) == s and len(s.split()) >= 4 for s in out[::97])
    assert not [s for s in out if "[" in s or "--" in s]  # no [1913 Webster] markers, no --attributions
