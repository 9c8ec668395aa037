"""Output parsing, loop collapsing and languages behave as the reference's."""
import random

import pytest

from asrstream.decoder.prompt import LANGUAGES, fix_repetitions, normalize_language, parse_output


@pytest.fixture(scope="module")
def ref_utils():
    from qwen_asr.inference import utils

    return utils


def _random_texts(n: int, seed: int = 0):
    rng = random.Random(seed)
    alphabet = ["a", "b", "ab", "abc", " ", "你", "好", "!", "language ", "<asr_text>", "\n", "None", "English"]
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 12)):
            piece = rng.choice(alphabet)
            parts.append(piece * (rng.choice([1, 1, 2, 5, 19, 20, 21, 45]) if rng.random() < 0.4 else 1))
        yield "".join(parts)


def test_fix_repetitions_matches_reference(ref_utils):
    for text in _random_texts(3000):
        assert fix_repetitions(text) == ref_utils.detect_and_fix_repetitions(text), text


def test_fix_repetitions_collapses_loops():
    assert fix_repetitions("ha" * 30 + " end") == "ha end"
    assert fix_repetitions("a" * 25) == "a"
    assert fix_repetitions("ok " * 5) == "ok " * 5


@pytest.mark.parametrize("forced", [None, "English"])
def test_parse_output_matches_reference(ref_utils, forced):
    samples = ["language English<asr_text>Hello there.", "language None<asr_text>", "  plain text ",
               "language chinese\n<asr_text>你好", "junk\nlanguage french<asr_text> Bonjour ", "", "language <asr_text>x",
               *list(_random_texts(500, seed=1))]
    for raw in samples:
        assert parse_output(raw, forced) == ref_utils.parse_asr_output(raw, user_language=forced), raw


def test_no_speech_output_gives_empty_result():
    assert parse_output("language None<asr_text>") == ("", "")


def test_language_names_are_normalised_and_validated():
    assert normalize_language("eNGLISH") == "English"
    assert len(LANGUAGES) == 30
    with pytest.raises(ValueError, match="unsupported language 'Klingon'; supported: Chinese, English"):
        normalize_language("Klingon")
    with pytest.raises(ValueError, match="unsupported language"):
        normalize_language("German", ("English",))
