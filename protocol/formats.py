# Transcript output formats: plain text, JSON, SRT and WebVTT. Pure Python (no numpy/torch).
#
# Policy: cue text is always cut out of the transcript itself, so punctuation and casing
# survive; aligner words (cleaned tokens: letters, digits and apostrophes, CJK one per char)
# only supply the times. Each word is located in the transcript in order, skipping the
# characters the aligner dropped; punctuation glued to a word ("world.", "(so") travels with
# it. If the words do not match the transcript, cues fall back to the words joined by spaces.
# A cue ends after sentence-final punctuation, before a silence longer than max_gap, or
# before a word that would push it past max_chars characters or max_seconds seconds.
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..decoder.words import kept_char, unspaced

RESULT_KEYS = ("text", "language", "raw", "token_ids", "words", "segments")
SENTENCE_END = frozenset(".!?…。！？؟।")


@dataclass(frozen=True)
class Word:
    """One aligned word (or CJK character) with times in seconds."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    """One subtitle cue: transcript text between start and end seconds, plus its words."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()


def segments_from_words(
    words: Sequence[Word],
    text: str,
    *,
    duration: float,
    max_chars: int = 42,
    max_gap: float = 1.0,
    max_seconds: float = 7.0,
) -> list[Segment]:
    """Group aligned words into subtitle cues whose text is taken from `text`.

    `duration` is the audio length in seconds: with no words (no aligner) the whole
    stripped text becomes one cue spanning [0, duration]; an empty text gives no cues.
    A single word longer than the limits still gets a cue of its own.
    """
    if max_chars < 1 or max_gap < 0 or max_seconds <= 0:
        raise ValueError(
            f"need max_chars >= 1, max_gap >= 0, max_seconds > 0; "
            f"got {max_chars}, {max_gap}, {max_seconds}"
        )
    if not words:
        body = _clean(text)
        return [Segment(body, 0.0, float(duration))] if body else []
    spans = _locate(words, text)
    if spans is None:
        text = _join_words(words)
        spans = _locate(words, text)
        assert spans is not None, "words must always locate in their own join"
    pieces = _pieces(spans, text)
    stops = [any(c in SENTENCE_END for c in text[e:pe]) for (_, e), (_, pe) in zip(spans, pieces)]
    groups = _group(words, text, pieces, stops, max_chars, max_gap, max_seconds)
    return [
        Segment(
            _clean(text[pieces[g[0]][0] : pieces[g[-1]][1]]),
            float(words[g[0]].start),
            float(words[g[-1]].end),
            tuple(words[i] for i in g),
        )
        for g in groups
    ]


def _locate(words: Sequence[Word], text: str) -> list[tuple[int, int]] | None:
    """[start, end) of each word in text, in order; None if text has other kept chars."""
    spans: list[tuple[int, int]] = []
    p = 0
    for w in words:
        start = p
        for k, ch in enumerate(w.word):
            while p < len(text) and text[p] != ch:
                if kept_char(text[p]):
                    return None
                p += 1
            if p == len(text):
                return None
            if k == 0:
                start = p
            p += 1
        spans.append((start, p))
    return spans


def _pieces(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Extend word spans over their punctuation: text before a gap's last space belongs to
    the word before it ("world." / "so ,"), text after it to the word after ("(so")."""
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    lead = text[: starts[0]]
    starts[0] = len(lead) - len(lead.lstrip())
    ends[-1] = max(ends[-1], len(text.rstrip()))
    for i in range(len(spans) - 1):
        e, s = spans[i][1], spans[i + 1][0]
        gap = text[e:s]
        ws = [k for k, ch in enumerate(gap) if ch.isspace()]
        if ws:
            ends[i], starts[i + 1] = e + len(gap[: ws[-1]].rstrip()), e + ws[-1] + 1
        else:
            ends[i] = s
    return list(zip(starts, ends))


def _group(
    words: Sequence[Word],
    text: str,
    pieces: list[tuple[int, int]],
    stops: list[bool],
    max_chars: int,
    max_gap: float,
    max_seconds: float,
) -> list[list[int]]:
    """Greedy cue boundaries over word indices (see the module policy)."""
    groups: list[list[int]] = []
    cur: list[int] = []
    for i, w in enumerate(words):
        if cur:
            first, last = cur[0], cur[-1]
            if (
                stops[last]
                or w.start - words[last].end > max_gap
                or len(_clean(text[pieces[first][0] : pieces[i][1]])) > max_chars
                or w.end - words[first].start > max_seconds
            ):
                groups.append(cur)
                cur = []
        cur.append(i)
    groups.append(cur)
    return groups


def _join_words(words: Sequence[Word]) -> str:
    """Fallback text: words joined by spaces, CJK characters joined directly."""
    out = ""
    for w in words:
        if out and not (unspaced(out[-1]) and w.word and unspaced(w.word[0])):
            out += " "
        out += w.word
    return out


def _clean(s: str) -> str:
    """Collapse whitespace runs (newlines included) to single spaces."""
    return " ".join(s.split())


def format_timestamp(seconds: float, sep: str = ",") -> str:
    """'HH:MM:SS,mmm' (SRT, sep=',') or 'HH:MM:SS.mmm' (VTT, sep='.'), rounded to the ms."""
    if not math.isfinite(seconds):
        raise ValueError(f"timestamp must be finite, got {seconds}")
    ms = round(seconds * 1000)
    if ms < 0:
        raise ValueError(f"timestamp must be >= 0, got {seconds}")
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_text(result: Mapping[str, Any]) -> str:
    """The transcript text plus a newline ('' for an empty transcript)."""
    text = str(result["text"]).strip()
    return f"{text}\n" if text else ""


def to_json(result: Mapping[str, Any]) -> str:
    """JSON with exactly RESULT_KEYS (others dropped), times rounded to the ms.

    `words` / `segments` may hold Word / Segment objects or dicts with the same fields;
    segments are written as {text, start, end} (their words are under `words`).
    """
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise ValueError(f"result is missing keys {missing}; expected {list(RESULT_KEYS)}")
    out = {
        "text": str(result["text"]),
        "language": str(result["language"]),
        "raw": str(result["raw"]),
        "token_ids": [int(t) for t in result["token_ids"]],
        "words": [_timed(w, "word") for w in result["words"]],
        "segments": [_timed(s, "text") for s in result["segments"]],
    }
    return json.dumps(out, ensure_ascii=False, indent=2) + "\n"


def _timed(item: Any, label: str) -> dict[str, Any]:
    """{label, start, end} from a dataclass or a mapping, times rounded to the ms."""
    get = item.get if isinstance(item, Mapping) else lambda k: getattr(item, k)
    return {
        label: str(get(label)),
        "start": round(float(get("start")), 3),
        "end": round(float(get("end")), 3),
    }


def to_srt(segments: Sequence[Segment]) -> str:
    """SubRip: numbered cues separated by blank lines ('' when there are none)."""
    return "\n".join(
        f"{i}\n{format_timestamp(s.start, ',')} --> {format_timestamp(s.end, ',')}\n"
        f"{_clean(s.text)}\n"
        for i, s in enumerate(segments, 1)
    )


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT: 'WEBVTT' header, then cues separated by blank lines; &, <, > escaped."""
    cues = [
        f"{format_timestamp(s.start, '.')} --> {format_timestamp(s.end, '.')}\n"
        f"{_escape_vtt(_clean(s.text))}\n"
        for s in segments
    ]
    return "\n".join(["WEBVTT\n", *cues])


def _escape_vtt(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
