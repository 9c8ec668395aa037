"""Tests for asrstream.protocol.formats: cues from words, text/JSON/SRT/VTT output."""
from __future__ import annotations

import json
import sys

import pytest

from asrstream.protocol.formats import (
    RESULT_KEYS,
    Segment,
    Word,
    format_timestamp,
    segments_from_words,
    to_json,
    to_srt,
    to_text,
    to_vtt,
)

CUES = [
    Segment("Hello, world.", 0.0, 1.5),
    Segment("Second line here", 61.25, 3723.4567),
]


def words_of(*items: tuple[str, float, float]) -> list[Word]:
    return [Word(w, s, e) for w, s, e in items]


# ---- timestamps -------------------------------------------------------------------------


def test_format_timestamp_uses_comma_for_srt_and_dot_for_vtt():
    assert format_timestamp(1.5, ",") == "00:00:01,500"
    assert format_timestamp(1.5, ".") == "00:00:01.500"
    assert format_timestamp(0.0) == "00:00:00,000"


def test_format_timestamp_past_one_hour():
    assert format_timestamp(3723.4567, ",") == "01:02:03,457"
    assert format_timestamp(360000.0, ".") == "100:00:00.000"


def test_format_timestamp_rounds_to_nearest_millisecond_with_carry():
    assert format_timestamp(59.9996, ",") == "00:01:00,000"
    assert format_timestamp(3599.9999, ",") == "01:00:00,000"
    assert format_timestamp(1.0004, ",") == "00:00:01,000"
    assert format_timestamp(1.0006, ",") == "00:00:01,001"


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_format_timestamp_rejects_negative_and_non_finite(bad):
    with pytest.raises(ValueError):
        format_timestamp(bad, ",")


# ---- SRT / VTT / text -------------------------------------------------------------------


def test_to_srt_exact_output():
    assert to_srt(CUES) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello, world.\n"
        "\n"
        "2\n00:01:01,250 --> 01:02:03,457\nSecond line here\n"
    )


def test_to_vtt_exact_output():
    assert to_vtt(CUES) == (
        "WEBVTT\n"
        "\n"
        "00:00:00.000 --> 00:00:01.500\nHello, world.\n"
        "\n"
        "00:01:01.250 --> 01:02:03.457\nSecond line here\n"
    )


def test_no_cues_give_empty_srt_and_header_only_vtt():
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n"


def test_vtt_escapes_markup_and_cue_text_never_spans_lines():
    cue = [Segment("a < b &\n\nc > d", 0.0, 1.0)]
    assert to_vtt(cue).endswith("\na &lt; b &amp; c &gt; d\n")
    assert to_srt(cue) == "1\n00:00:00,000 --> 00:00:01,000\na < b & c > d\n"


def test_to_text_is_stripped_transcript_with_newline():
    assert to_text({"text": "  Hello there. \n"}) == "Hello there.\n"
    assert to_text({"text": ""}) == ""


# ---- JSON -------------------------------------------------------------------------------


def make_result() -> dict:
    return {
        "text": "你好, world.",
        "language": "Chinese,English",
        "raw": "language Chinese<asr_text>你好, world.",
        "token_ids": [151644, 8948, 42],
        "words": [
            {"word": "你", "start": 0.0, "end": 0.2},
            {"word": "好", "start": 0.2, "end": 0.4},
            {"word": "world", "start": 0.6, "end": 1.123},
        ],
        "segments": [{"text": "你好, world.", "start": 0.0, "end": 1.123}],
    }


def test_to_json_round_trips_with_exactly_the_result_keys():
    result = make_result()
    parsed = json.loads(to_json({**result, "extra": "dropped"}))
    assert tuple(parsed) == RESULT_KEYS
    assert parsed == result


def test_to_json_keeps_non_ascii_and_is_indented():
    out = to_json(make_result())
    assert "你好" in out
    assert out.startswith('{\n  "text": ')


def test_to_json_accepts_word_and_segment_objects_and_rounds_times():
    result = make_result()
    result["words"] = [Word("world", 0.6000000001, 1.1234)]
    result["segments"] = [Segment("world.", 0.6, 1.1234, tuple(result["words"]))]
    parsed = json.loads(to_json(result))
    assert parsed["words"] == [{"word": "world", "start": 0.6, "end": 1.123}]
    assert parsed["segments"] == [{"text": "world.", "start": 0.6, "end": 1.123}]


def test_to_json_missing_key_names_it():
    result = make_result()
    del result["token_ids"]
    with pytest.raises(ValueError, match="token_ids"):
        to_json(result)


# ---- segments_from_words ----------------------------------------------------------------


def test_segments_break_after_sentence_final_punctuation():
    words = words_of(("Hi", 0.0, 0.3), ("there", 0.3, 0.6), ("How", 0.7, 0.9), ("are", 0.9, 1.0),
                     ("you", 1.0, 1.2), ("Fine", 1.3, 1.5))
    segs = segments_from_words(words, "Hi there! How are you? Fine", duration=2.0)
    assert [(s.text, s.start, s.end) for s in segs] == [
        ("Hi there!", 0.0, 0.6),
        ("How are you?", 0.7, 1.2),
        ("Fine", 1.3, 1.5),
    ]


def test_segments_break_on_a_long_gap():
    words = words_of(("one", 0.0, 0.5), ("two", 0.6, 1.0), ("three", 2.5, 3.0))
    segs = segments_from_words(words, "one, two, three", duration=3.0, max_gap=1.0)
    assert [s.text for s in segs] == ["one, two,", "three"]
    assert segs[1].words == (words[2],)


def test_segments_respect_max_chars_and_max_seconds():
    words = [Word("word", float(i), i + 0.5) for i in range(12)]
    text = " ".join(w.word for w in words)
    by_chars = segments_from_words(words, text, duration=12, max_chars=14, max_seconds=100)
    assert [s.text for s in by_chars] == ["word word word"] * 4
    by_time = segments_from_words(words, text, duration=12, max_chars=1000, max_seconds=4)
    assert [len(s.words) for s in by_time] == [4, 4, 4]  # a 5th word would end 4.5 s in
    assert all(s.end - s.start <= 4 for s in by_time)


def test_segments_keep_transcript_punctuation_and_casing():
    text = '"Don\'t," she said -- (quietly) to U.S. staff.'
    words = words_of(("Don't", 0, 0.4), ("she", 0.5, 0.7), ("said", 0.7, 1.0),
                     ("quietly", 1.1, 1.6), ("to", 1.6, 1.7), ("US", 1.8, 2.1), ("staff", 2.1, 2.5))
    segs = segments_from_words(words, text, duration=3.0)
    assert " ".join(s.text for s in segs) == text
    assert segs[0].text.startswith('"Don\'t," she said -- (quietly)')


def test_cjk_characters_map_onto_text_with_full_width_punctuation():
    words = words_of(("你", 0.0, 0.2), ("好", 0.2, 0.4), ("世", 0.5, 0.7), ("界", 0.7, 0.9))
    segs = segments_from_words(words, "你好。世界！", duration=1.0)
    assert [(s.text, s.start, s.end) for s in segs] == [("你好。", 0.0, 0.4), ("世界！", 0.5, 0.9)]


def test_no_words_gives_one_cue_spanning_the_duration():
    assert segments_from_words([], "  Just text. ", duration=12.5) == [
        Segment("Just text.", 0.0, 12.5)
    ]
    assert segments_from_words([], "   ", duration=12.5) == []


def test_words_that_do_not_match_the_text_fall_back_to_joined_words():
    words = words_of(("hello", 0.0, 0.5), ("world", 0.6, 1.0))
    segs = segments_from_words(words, "Something else entirely", duration=1.0)
    assert [(s.text, s.start, s.end) for s in segs] == [("hello world", 0.0, 1.0)]


def test_segments_from_words_rejects_bad_limits():
    with pytest.raises(ValueError, match="max_chars"):
        segments_from_words([], "x", duration=1.0, max_chars=0)


def test_formats_module_imports_neither_numpy_nor_torch():
    import subprocess

    code = (
        "import sys, asrstream.protocol.formats; "
        "assert 'numpy' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
