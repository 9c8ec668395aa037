"""espeak-ng through its C library (Debian `libespeak-ng1`, ctypes): the audio of a text and each
word's start and end, read off the synthesiser's own events, so every espeak voice gives exact word
times the way festival's do.

The library reports a WORD event where a word's first phoneme starts and a PHONEME event at the start
of every phoneme (pauses are phonemes named `_...`). A word ends where the phoneme after its last
spoken phoneme starts: a pause, the next word or the end of the text. Times are in milliseconds of
the synthesised audio. The library keeps one global synthesiser, so calls are serialised per
process (corpus synthesis uses processes, not threads).
"""
from __future__ import annotations

import ctypes
import threading
from ctypes import CFUNCTYPE, POINTER, Structure, Union, c_char, c_char_p, c_int, c_short, c_uint, c_void_p
from functools import lru_cache

import numpy as np

SYNCHRONOUS, PHONEME_EVENTS = 2, 0x0001
RATE, PITCH = 1, 3
WORD, END, MSG_TERMINATED, PHONEME = 1, 5, 6, 7
CHARS_UTF8, POS_CHARACTER = 1, 1
_lock = threading.Lock()


class _Id(Union):
    _fields_ = [("number", c_int), ("name", c_char_p), ("string", c_char * 8)]


class _Event(Structure):
    _fields_ = [("type", c_int), ("unique_identifier", c_uint), ("text_position", c_int), ("length", c_int),
                ("audio_position", c_int), ("sample", c_int), ("user_data", c_void_p), ("id", _Id)]


_CALLBACK = CFUNCTYPE(c_int, POINTER(c_short), c_int, POINTER(_Event))


@lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL, int]:
    try:
        lib = ctypes.CDLL("libespeak-ng.so.1")
    except OSError:
        raise RuntimeError("libespeak-ng is not installed (Debian package libespeak-ng1)") from None
    rate = lib.espeak_Initialize(SYNCHRONOUS, 500, None, PHONEME_EVENTS)
    if rate <= 0:
        raise RuntimeError("espeak-ng did not initialise (is espeak-ng-data installed?)")
    lib.espeak_Synth.argtypes = [c_char_p, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint, c_void_p, c_void_p]
    return lib, rate


def speak(voice: str, text: str, rate: int, pitch: int) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
    """(int16 audio, sample rate, [(word, start s, end s)]) of `text` in espeak voice `voice`
    ("en-us+f2"), at `rate` words per minute and `pitch` 0-99."""
    lib, sr = _library()
    chunks: list[np.ndarray] = []
    events: list[tuple[int, int, int, int, str]] = []  # (type, ms, text position, length, phoneme)

    def collect(wav, n, ev):
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while ev[i].type != 0:
            e = ev[i]
            name = e.id.string.decode("ascii", "replace") if e.type == PHONEME else ""
            events.append((e.type, e.audio_position, e.text_position, e.length, name))
            i += 1
        return 0

    callback = _CALLBACK(collect)
    data = text.encode("utf-8")
    with _lock:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(RATE, rate, 0)
        lib.espeak_SetParameter(PITCH, pitch, 0)
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None) != 0:
            raise RuntimeError(f"espeak-ng could not synthesise {text!r}")
        lib.espeak_Synchronize()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return audio, sr, _word_times(data, events, len(audio) / sr)


def _word_times(data: bytes, events: list, duration: float) -> list[tuple[str, float, float]]:
    """Each WORD event's text, its start, and the start of the phoneme after its last spoken one."""
    events = _real_words(events)
    starts = [pos - 1 for kind, _, pos, _, _ in events if kind == WORD] + [len(data)]  # positions count from 1
    out: list[list] = []  # [text, start, end or None, whether a spoken phoneme came yet]
    for kind, ms, _, _, name in events:
        if kind == WORD:
            # the text up to the next WORD event: the library's lengths stop at "-" and "'", and it
            # gives some unstressed words no event of their own ("was the" is one), so that
            # utterance's words cannot be told apart and the caller leaves it untimed
            text = data[starts[len(out)] : starts[len(out) + 1]].decode("utf-8", "replace").strip()
            out.append([text, ms / 1000, None, False])
        elif out and kind in (PHONEME, END, MSG_TERMINATED):
            word = out[-1]
            if word[3] and word[2] is None:
                word[2] = ms / 1000  # the phoneme after the word's last spoken one starts here
            if kind == PHONEME and not name.startswith("_"):  # a spoken phoneme: the word goes on
                word[2], word[3] = None, True
    for a, b in zip(out, out[1:] + [[None, duration]]):
        a[2] = min(a[2] if a[2] is not None else duration, b[1])
    return [(w, s, e) for w, s, e, _ in out]


def _real_words(events: list) -> list:
    """The events without stray WORD events (empty, or pointing back into the text: seen after a
    question, when the library sometimes repeats a clause's start)."""
    kept, seen = [], 0
    for e in events:
        if e[0] == WORD:
            if e[3] == 0 or e[2] <= seen:
                continue
            seen = e[2]
        kept.append(e)
    return kept
