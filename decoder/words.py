# Word units and timestamps for the Qwen3 forced aligner.
#
# Policy: the aligner predicts one time class per <timestamp> token, two tokens per word (start, end).
# Everything here reproduces the reference qwen_asr 0.0.6 forced-aligner processor bit for bit, so the
# same transcript gives the same aligner input and the same times:
#   - word units: Japanese via nagisa, Korean via soynlp's LTokenizer, every other language by
#     whitespace, keeping letters/digits/apostrophes, one unit per CJK ideograph;
#   - the predicted times are made non-decreasing by keeping one longest non-decreasing subsequence
#     (the reference's choice among equals) and repairing the values outside it.
# Two deliberate differences: the longest-subsequence search is O(n log n) instead of O(n^2), and the
# Korean score dictionary is not shipped (see `split_words`). Pure Python: no torch here.
from __future__ import annotations

import functools
import os
import struct
import unicodedata
from bisect import bisect_left, bisect_right

__all__ = [
    "MissingSegmenterError", "split_words", "aligner_text", "repair_monotonic", "words_with_times",
]

AUDIO_PREFIX = "<|audio_start|><|audio_pad|><|audio_end|>"
TIMESTAMP_PAIR = "<timestamp><timestamp>"
KO_DICT_ENV = "ASRSTREAM_KO_DICT"

# Code-point ranges the reference treats as CJK ideographs (one word unit each).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF),
)


class MissingSegmenterError(RuntimeError):
    """A language needs an optional word segmenter (nagisa, soynlp) that cannot be imported."""


# ---------------------------------------------------------------------------------------------------
# Word units

def kept_char(ch: str) -> bool:
    """True for characters the aligner keeps in a word: letters, digits, apostrophe."""
    return ch == "'" or unicodedata.category(ch)[0] in "LN"


def _clean(piece: str) -> str:
    return "".join(filter(kept_char, piece))


def unspaced(ch: str) -> bool:
    """True for characters of scripts written without spaces between words (CJK ideographs, kana).

    Used to join transcript pieces and subtitle words; word *splitting* uses the reference's
    narrower ideograph ranges (`_is_cjk`).
    """
    return unicodedata.name(ch, "").startswith(("CJK", "HIRAGANA", "KATAKANA"))


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _split_cjk(piece: str) -> list[str]:
    """Cut one cleaned piece into runs of non-CJK characters and single CJK ideographs."""
    units: list[str] = []
    start = 0
    for i, ch in enumerate(piece):
        if _is_cjk(ch):
            if i > start:
                units.append(piece[start:i])
            units.append(ch)
            start = i + 1
    if start < len(piece):
        units.append(piece[start:])
    return units


def _space_words(text: str) -> list[str]:
    return [u for piece in text.split() for u in _split_cjk(_clean(piece))]


def _japanese_words(text: str) -> list[str]:
    try:
        import nagisa
    except ImportError as e:
        raise MissingSegmenterError(
            f"Japanese word splitting needs nagisa: pip install 'asrstream[ja]' (import failed: {e})"
        ) from e
    return [w for w in map(_clean, nagisa.tagging(text).words) if w]


@functools.lru_cache(maxsize=4)
def _ko_scores(path: str) -> dict[str, float]:
    """Read a jieba-style dictionary (first field of each line is a word) into LTokenizer scores."""
    try:
        with open(path, encoding="utf-8") as f:
            return {line.split()[0]: 1.0 for line in f if line.strip()}
    except OSError as e:
        raise RuntimeError(f"cannot read Korean dictionary {path!r}; fix the path or unset "
                           f"{KO_DICT_ENV}") from e


def _korean_words(text: str, ko_dict: str | os.PathLike | None) -> list[str]:
    try:
        from soynlp.tokenizer import LTokenizer
    except ImportError as e:
        raise MissingSegmenterError(
            f"Korean word splitting needs soynlp: pip install 'asrstream[ko]' (import failed: {e})"
        ) from e
    path = ko_dict if ko_dict is not None else os.environ.get(KO_DICT_ENV)
    scores = _ko_scores(os.fspath(path)) if path else None
    return [w for w in map(_clean, LTokenizer(scores=scores).tokenize(text)) if w]


def split_words(text: str, language: str | None, ko_dict: str | os.PathLike | None = None) -> list[str]:
    """The forced aligner's word units for `text`.

    `language` is a Qwen language name, compared case-insensitively: "Japanese" splits with nagisa,
    "Korean" with soynlp's LTokenizer; any other value (or None) splits on whitespace, keeps only
    letters, digits and apostrophes of each piece and makes every CJK ideograph a unit of its own.
    Japanese and Korean units are cleaned the same way; empty units are dropped.

    Korean: the reference scores LTokenizer with a dictionary shipped inside qwen_asr. That file is not
    shipped here; pass its path (or any file whose lines start with a word) as `ko_dict` or through the
    environment variable ASRSTREAM_KO_DICT to get identical units. Without one, LTokenizer has no scores
    and keeps each space-separated piece whole ("안녕하세요" rather than the reference's "안녕", "하세요").

    Raises MissingSegmenterError when nagisa (Japanese) or soynlp (Korean) cannot be imported, and
    RuntimeError when the Korean dictionary cannot be read.
    """
    lang = (language or "").lower()
    if lang == "japanese":
        return _japanese_words(text)
    if lang == "korean":
        return _korean_words(text, ko_dict)
    return _space_words(text)


def aligner_text(words: list[str]) -> str:
    """The aligner's text input: the audio placeholder, then each word followed by two <timestamp>.

    As in the reference, an empty word list still yields one trailing timestamp pair.
    """
    return AUDIO_PREFIX + TIMESTAMP_PAIR.join(words) + TIMESTAMP_PAIR


# ---------------------------------------------------------------------------------------------------
# Timestamps

def _longest_non_decreasing(values: list[float]) -> list[bool]:
    """Mark the members of the reference's longest non-decreasing subsequence, in O(n log n).

    The reference's O(n^2) dynamic programme gives each i its length dp[i], links i to the FIRST j < i
    with values[j] <= values[i] and dp[j] == dp[i] - 1, and starts the traceback at the first i of
    maximal dp. dp comes from patience sorting (bisect_right on the tails for non-decreasing order).
    For the link: indices sharing one dp value have strictly decreasing values (a later, not smaller
    value would extend the earlier one), so the valid j of level dp[i] - 1 form a suffix of that level,
    and the first of them is found by bisecting the level's negated values.
    """
    tails: list[float] = []         # tails[d]: smallest last value of a subsequence of length d + 1
    levels: list[list[int]] = []    # levels[d]: indices with dp == d + 1, in index order
    negs: list[list[float]] = []    # negs[d]: -values of levels[d], hence ascending
    parent = [-1] * len(values)
    for i, x in enumerate(values):
        d = bisect_right(tails, x)  # dp[i] == d + 1
        if d == len(tails):
            tails.append(x)
            levels.append([])
            negs.append([])
        else:
            tails[d] = x
        if d:
            parent[i] = levels[d - 1][bisect_left(negs[d - 1], -x)]
        levels[d].append(i)
        negs[d].append(-x)
    normal = [False] * len(values)
    i = levels[-1][0] if levels else -1
    while i != -1:
        normal[i] = True
        i = parent[i]
    return normal


def _fill_run(out: list[float], i: int, j: int, left: float | None, right: float | None) -> None:
    """Replace the anomalous run out[i:j] from its normal neighbours out[i-1] and out[j]."""
    if left is None or right is None:
        fill = right if left is None else left
        out[i:j] = [fill] * (j - i)
    elif j - i <= 2:  # snap to the nearer neighbour, the left one on a tie
        out[i:j] = [left if k - (i - 1) <= j - k else right for k in range(i, j)]
    else:  # interpolate linearly, with the reference's float operations
        step = (right - left) / (j - i + 1)
        out[i:j] = [left + step * (k - i + 1) for k in range(i, j)]


def repair_monotonic(values: list[float]) -> list[int]:
    """Make predicted times non-decreasing, exactly as the reference's timestamp fix does.

    One longest non-decreasing subsequence is kept as is (the reference's pick among equals). Each run
    of other values is replaced: runs of one or two take the nearer kept neighbour (left on a tie),
    longer runs are interpolated linearly between the kept neighbours; a run at either end copies its
    single neighbour. Results are truncated with int(). An empty list gives [] (the reference raises).
    Values must be comparable numbers (no NaN).
    """
    n = len(values)
    normal = _longest_non_decreasing(values)
    out = list(values)
    i = 0
    while i < n:
        if normal[i]:
            i += 1
            continue
        j = i
        while j < n and not normal[j]:
            j += 1
        _fill_run(out, i, j, out[i - 1] if i > 0 else None, out[j] if j < n else None)
        i = j
    return [int(v) for v in out]


def _f32(x: float) -> float:
    """Round a double to the nearest float32, as torch stores the aligner's times."""
    return struct.unpack("f", struct.pack("f", x))[0]


def words_with_times(words: list[str], class_ids: list[int], segment_ms: float) -> list[dict]:
    """Pair each word with its start and end time in seconds, as the reference's align() does.

    `class_ids` are the aligner's predicted classes at the <timestamp> tokens of `aligner_text(words)`
    (two per word; two for an empty list). Each becomes class_id * segment_ms milliseconds, computed in
    float32 like the reference's torch product; all values are repaired together by `repair_monotonic`,
    then each truncated millisecond value is divided by 1000 and rounded to 3 decimals.
    Returns [{"word": str, "start": float, "end": float}, ...].
    """
    expected = 2 * max(len(words), 1)
    if len(class_ids) != expected:
        raise ValueError(f"class_ids has {len(class_ids)} values; {len(words)} words need {expected} "
                         "(one per <timestamp> token of aligner_text(words))")
    seg = _f32(float(segment_ms))
    ms = repair_monotonic([_f32(_f32(float(c)) * seg) for c in class_ids])  # exact f32 product
    return [{"word": w, "start": round(ms[2 * k] / 1000.0, 3), "end": round(ms[2 * k + 1] / 1000.0, 3)}
            for k, w in enumerate(words)]
