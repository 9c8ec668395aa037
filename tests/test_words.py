"""Word units and timestamp repair, checked against the reference qwen_asr forced-aligner processor."""
from __future__ import annotations

import importlib
import os
import random
import sys
import types

import pytest

from asrstream.decoder.words import (
    MissingSegmenterError, aligner_text, repair_monotonic, split_words, words_with_times,
)

SEED = 20240601


def _nagisa_importable() -> bool:
    try:
        importlib.import_module("nagisa")
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def ref():
    """The reference processor; a stub `nagisa` is put in place only while importing it if the real one
    cannot be imported (the processor needs nagisa for Japanese alone)."""
    pytest.importorskip("torch")
    pytest.importorskip("qwen_asr")
    stub = None if _nagisa_importable() else types.ModuleType("nagisa")
    if stub is not None:
        sys.modules["nagisa"] = stub
    try:
        from qwen_asr.inference.qwen3_forced_aligner import Qwen3ForceAlignProcessor
    finally:
        if stub is not None and sys.modules.get("nagisa") is stub:
            del sys.modules["nagisa"]
    return Qwen3ForceAlignProcessor()


# --- generated text ------------------------------------------------------------------------------

POOLS = {
    "english": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.,!?;:-\"()/&%$",
    "mixed_zh_en": "你好世界我们的中文测试abcXYZ0129'，。！？、：；“”（）《》１２３ ",
    "chinese": "的一是不了人我在有他这为之大来以个中上们，。！？、“”…",
    "accented": "éèêëçñüößøåæœÉÀÇÑÜ\u0301\u0308eaiou'-.,",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЁ-—«».,!?'",
    "arabic": "ابتثجحخدذرسشصضطظعغفقكلمنهوي\u064b\u064e\u064f\u0650\u0651٠١٢٣،؟.",
    "emoji_symbols": "😀👍🏽❤\ufe0f\u200d©®™€$%&*@#+=<>^~|\\😂🎉ab1'",
    "cjk_extensions": "\u3400\u4dbf\U00020000\U0002a6df\U0002b740\U0002b820\uf900\ufaff\u3042\u30a2ｱ",
}
SPACES = [" ", "  ", "\t", "\n", "\u3000", "\u00a0", " \t\n "]


def _generate(pool: str, rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(0, 12)):
        pieces.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        pieces.append(rng.choice(SPACES))
    return rng.choice(["", " ", "\n"]) + "".join(pieces)


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("language", ["English", "Chinese", "Russian", "arabic", "FRENCH"])
def test_split_words_matches_reference_for_space_languages(ref, kind, language):
    rng = random.Random(f"{SEED}-{kind}-{language}")
    for _ in range(200):
        text = _generate(POOLS[kind], rng)
        assert split_words(text, language) == ref.encode_timestamp(text, language)[0], repr(text)


def test_split_words_with_no_language_splits_like_a_space_language(ref):
    text = "Don't stop, 2 people! 你好世界 café — «да»"
    assert split_words(text, None) == ref.encode_timestamp(text, "English")[0]
    assert split_words(text, None) == ["Don't", "stop", "2", "people", "你", "好", "世", "界", "café", "да"]


def test_split_words_drops_combining_marks_like_the_reference():
    assert split_words("cafe\u0301 naïve", "French") == ["cafe", "naïve"]


@pytest.mark.parametrize("words", [[], ["a"], ["Hello", "world", "你", "好"], ["it's", "42"]])
def test_aligner_text_equals_reference_input_string(ref, words):
    text = " ".join(words)
    ref_words, ref_text = ref.encode_timestamp(text, "English")
    assert ref_words == words
    assert aligner_text(words) == ref_text


# --- Korean and Japanese -------------------------------------------------------------------------

KOREAN = ["안녕하세요 반갑습니다", "저는 학생입니다. 학교에 갑니다!", "오늘 날씨가 정말 좋네요, 그렇죠?",
          "서울특별시 강남구에서 2024년 회의가 열렸습니다", "가 나 다라 마바사아"]


def test_korean_with_reference_dictionary_matches_reference(ref):
    module = sys.modules[type(ref).__module__]
    ko_dict = os.path.join(os.path.dirname(module.__file__), "assets", "korean_dict_jieba.dict")
    for text in KOREAN:
        assert split_words(text, "Korean", ko_dict=ko_dict) == ref.encode_timestamp(text, "korean")[0]


def test_korean_without_dictionary_keeps_each_piece_whole(monkeypatch):
    pytest.importorskip("soynlp")
    monkeypatch.delenv("ASRSTREAM_KO_DICT", raising=False)
    assert split_words("안녕하세요, 반갑습니다! 네", "Korean") == ["안녕하세요", "반갑습니다", "네"]


def test_korean_dictionary_is_read_from_environment(monkeypatch, tmp_path):
    pytest.importorskip("soynlp")
    path = tmp_path / "ko.dict"
    path.write_text("안녕하세요 10 x\n\n반갑습 3 y\n", encoding="utf-8")
    monkeypatch.setenv("ASRSTREAM_KO_DICT", str(path))
    assert split_words("안녕하세요 반갑습니다", "korean") == ["안녕하세요", "반갑습", "니다"]


def test_korean_unreadable_dictionary_raises_runtime_error(tmp_path):
    pytest.importorskip("soynlp")
    with pytest.raises(RuntimeError, match="Korean dictionary"):
        split_words("안녕하세요", "Korean", ko_dict=tmp_path / "missing.dict")


def test_korean_without_soynlp_raises_missing_segmenter_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "soynlp", None)
    monkeypatch.setitem(sys.modules, "soynlp.tokenizer", None)
    with pytest.raises(MissingSegmenterError, match=r"pip install 'asrstream\[ko\]'"):
        split_words("안녕하세요", "Korean")


def test_japanese_without_nagisa_raises_missing_segmenter_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nagisa", None)
    with pytest.raises(MissingSegmenterError) as info:
        split_words("今日は良い天気です", "Japanese")
    assert str(info.value).startswith("Japanese word splitting needs nagisa: pip install 'asrstream[ja]'")
    assert isinstance(info.value, RuntimeError)


@pytest.mark.skipif(not _nagisa_importable(), reason="nagisa cannot be imported here")
def test_japanese_matches_reference(ref):
    for text in ["今日は良い天気ですね。", "私はPythonが好きです！", "東京タワー、3時に会いましょう"]:
        assert split_words(text, "Japanese") == ref.encode_timestamp(text, "Japanese")[0]


# --- timestamp repair ----------------------------------------------------------------------------

def _ref_fix(ref, values):
    import numpy as np
    return ref.fix_timestamp(np.array(values))


def _random_sequences(rng: random.Random):
    for _ in range(1500):  # small integer ranges: many ties and equal-length subsequences
        yield [rng.randint(0, rng.choice([1, 3, 10])) for _ in range(rng.randint(1, 25))]
    for _ in range(1000):  # floats
        yield [rng.uniform(-50.0, 500.0) for _ in range(rng.randint(1, 40))]
    for _ in range(1000):  # realistic: rising times in 80 ms steps with outliers and bursts
        n, t, seq = rng.randint(1, 120), 0.0, []
        for _ in range(n):
            t += 80.0 * rng.randint(0, 3)
            seq.append(rng.choice([t, t, t, t, 80.0 * rng.randint(0, n * 2)]))
        yield seq


def test_repair_monotonic_matches_reference_on_random_sequences(ref):
    rng = random.Random(SEED)
    for values in _random_sequences(rng):
        assert repair_monotonic(values) == _ref_fix(ref, values), values


EDGE_CASES = [
    [5], [5, 5, 5, 5], [9, 8, 7, 6, 5, 4, 3, 2, 1], [100, 1, 2, 3, 4], [1, 2, 3, 4, 0],
    [1, 2, 3, 4, 0, 0], [0, 0, 9, 1, 2], [1, 3, 2], [2, 1, 3], [0, 9, 9, 9, 1, 2, 3, 4, 5, 6],
    [0, 10, 1, 2, 3, 4, 5, 20], [0.5, -0.5, 1.5, 1.2], [0, 80, 800, 900, 1000, 160, 240, 320, 400],
]


@pytest.mark.parametrize("values", EDGE_CASES)
def test_repair_monotonic_matches_reference_on_edge_cases(ref, values):
    assert repair_monotonic(values) == _ref_fix(ref, values)


def test_repair_monotonic_of_empty_is_empty_where_the_reference_raises(ref):
    assert repair_monotonic([]) == []
    with pytest.raises(ValueError):
        _ref_fix(ref, [])


def test_repair_monotonic_keeps_first_longest_subsequence_and_snaps_ties_left():
    assert repair_monotonic([1, 3, 2]) == [1, 3, 3]        # [1, 3] ends first among length-2 runs
    assert repair_monotonic([2, 1, 3]) == [2, 2, 3]        # equidistant neighbours: the left one wins
    assert repair_monotonic([0, 9, 9, 9, 1, 2, 3]) == [0, 9, 9, 9, 9, 9, 9]  # first of equal lengths
    assert repair_monotonic([0, 9, 9, 9, 1, 2, 3, 4]) == [0, 0, 0, 0, 1, 2, 3, 4]  # 0.25, 0.5, 0.75
    assert repair_monotonic([0, 90, 95, 99, 40, 50, 60, 70]) == [0, 10, 20, 30, 40, 50, 60, 70]  # interpolated
    assert repair_monotonic([7, 1, 2]) == [1, 1, 2] and repair_monotonic([1, 2, 0]) == [1, 2, 2]
    assert repair_monotonic([1.9, -0.5, 3.7]) == [1, 1, 3]  # int() truncates


def test_repair_monotonic_output_is_non_decreasing():
    rng = random.Random(SEED + 1)
    for values in _random_sequences(rng):
        out = repair_monotonic(values)
        assert len(out) == len(values) and all(a <= b for a, b in zip(out, out[1:]))


# --- words with times ----------------------------------------------------------------------------

def _ref_align_times(ref, words, class_ids, segment_ms):
    """The tail of the reference's align(): torch product, parse_timestamp, ms -> s rounded to 3."""
    import torch
    ms = (torch.tensor(class_ids, dtype=torch.int64) * float(segment_ms)).numpy()
    return [{"word": it["text"], "start": round(it["start_time"] / 1000.0, 3),
             "end": round(it["end_time"] / 1000.0, 3)} for it in ref.parse_timestamp(words, ms)]


@pytest.mark.parametrize("segment_ms", [80.0, 80, 33.3, 0.1, 12.345678])
def test_words_with_times_matches_reference_align(ref, segment_ms):
    rng = random.Random(f"{SEED}-{segment_ms}")
    for _ in range(300):
        words = [f"w{k}" for k in range(rng.randint(1, 60))]
        t, ids = 0, []
        for _ in range(2 * len(words)):
            t += rng.randint(0, 4)
            ids.append(t if rng.random() > 0.15 else rng.randint(0, 2 * t + 5))
        assert words_with_times(words, ids, segment_ms) == _ref_align_times(ref, words, ids, segment_ms)


def test_words_with_times_converts_class_ids_to_rounded_seconds():
    out = words_with_times(["a", "b"], [0, 2, 3, 5], 80.0)
    assert out == [{"word": "a", "start": 0.0, "end": 0.16}, {"word": "b", "start": 0.24, "end": 0.4}]


def test_words_with_times_of_no_words_uses_the_single_pair_and_returns_nothing():
    assert words_with_times([], [3, 1], 80.0) == []


@pytest.mark.parametrize("ids", [[0, 1, 2], [0, 1, 2, 3, 4], []])
def test_words_with_times_rejects_wrong_number_of_class_ids(ids):
    with pytest.raises(ValueError, match="class_ids"):
        words_with_times(["a", "b"], ids, 80.0)
