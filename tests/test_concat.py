"""Joined utterances for the aligner (training/concat.py): the words' shifted times still lie where
their sound is in the joined audio, text and duration add up, and bad requests get clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asrstream.training.concat import SR, build, main
from asrstream.training.manifest import read_manifest, write_manifest

from .speech import silent_runs


def _tone_manifest(folder, n: int = 4) -> list[dict]:
    """n utterances: silence, then one 440 Hz "word" of known span, then silence."""
    rows, rng = [], np.random.default_rng(3)
    for i in range(n):
        lead, length, tail = (float(x) for x in rng.uniform([0.1, 0.3, 0.1], [0.5, 0.9, 0.4]))
        t = np.arange(int(length * SR)) / SR
        audio = np.concatenate([np.zeros(int(lead * SR)), 0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(int(tail * SR))])
        sf.write(folder / f"u{i}.wav", audio, SR, subtype="PCM_16")
        rows.append({"audio": f"u{i}.wav", "text": f"word{i}", "duration": round(len(audio) / SR, 3),
                     "words": [{"word": f"word{i}", "start": round(lead, 3), "end": round(lead + length, 3)}]})
    write_manifest(folder / "in.jsonl", rows)
    return rows


def test_joined_words_lie_where_their_sound_is(tmp_path):
    src = _tone_manifest(tmp_path)
    assert build(tmp_path / "out", [tmp_path / "in.jsonl"], 6, sizes=(2, 3), gap=(0.3, 0.3)) == 6
    joined = read_manifest(tmp_path / "out" / "joined.jsonl", need_words=True)
    assert {len(ex.words) for ex in joined} == {2, 3}
    by_text = {r["text"]: r for r in src}
    for ex in joined:
        audio, sr = sf.read(ex.audio, dtype="float32")
        parts = [by_text[t] for t in ex.text.split()]
        assert sr == SR and [w["word"] for w in ex.words] == ex.text.split()
        assert ex.duration == pytest.approx(sum(p["duration"] for p in parts) + 0.3 * (len(parts) - 1), abs=0.01)
        quiet = silent_runs(audio, SR)  # every utterance starts and ends with >= 0.1 s of silence
        spans = [(a[1], b[0]) for a, b in zip(quiet, quiet[1:])]  # the sound between them
        assert len(spans) == len(ex.words)
        for (a, b), w in zip(spans, ex.words):
            assert abs(a - w["start"]) <= 0.01 and abs(b - w["end"]) <= 0.01, (spans, ex.words)


def test_bad_requests_get_clear_errors(tmp_path, capsys):
    _tone_manifest(tmp_path, n=2)
    with pytest.raises(ValueError, match="sizes must be 1 or more and at most the utterances there are"):
        build(tmp_path / "out", [tmp_path / "in.jsonl"], 3, sizes=(3,))
    with pytest.raises(ValueError, match="too few groups fit in 1 s"):
        build(tmp_path / "out", [tmp_path / "in.jsonl"], 3, sizes=(2,), max_seconds=1.0)
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "out"), str(tmp_path / "missing.jsonl"), "--count", "2"])
    assert e.value.code == 2 and "missing.jsonl does not exist" in capsys.readouterr().err
    main([str(tmp_path / "out"), str(tmp_path / "in.jsonl"), "--count", "2", "--sizes", "2"])
    assert len((tmp_path / "out" / "joined.jsonl").read_text().splitlines()) == 2
    assert all(len(json.loads(line)["words"]) == 2 for line in (tmp_path / "out" / "joined.jsonl").open())
