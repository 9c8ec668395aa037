"""Test speech: synthesized here with espeak-ng (Debian package, installed by .ci/run), never downloaded."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from asrstream.encoder.audio import load_audio

SR = 16000
_DIR = Path(tempfile.gettempdir()) / "asrstream-test-speech"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet again tomorrow morning at seven o'clock in the old library.",
    "Streaming speech recognition turns spoken words into text while people are still talking.",
)


def tts(text: str, voice: str = "en-us", speed: int = 165) -> np.ndarray:
    """16 kHz float32 speech for `text`, cached on disk by (text, voice, speed)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng (.ci/run does this)")
    key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    path = _DIR / f"{key}.wav"
    if not path.exists():
        _DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(tmp), text], check=True)
        tmp.rename(path)
    return load_audio(path)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def noise(seconds: float, level: float = 0.003, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * level).astype(np.float32)


def spans_of(parts: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Concatenate parts; (audio, [(start, end) seconds of each part])."""
    out, t = [], 0
    spans = []
    for p in parts:
        spans.append((t / SR, (t + len(p)) / SR))
        out.append(p)
        t += len(p)
    return np.concatenate(out), spans


def silent_runs(wav: np.ndarray, sr: int = 16000, least: float = 0.1) -> list[tuple[float, float]]:
    """(start, end) of every run of >= `least` s whose 5 ms frames are 40 dB under the peak."""
    f = sr // 200
    quiet = np.sqrt(np.mean(wav[: len(wav) // f * f].reshape(-1, f) ** 2, axis=1)) < 0.01 * np.abs(wav).max()
    runs, start = [], None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * f >= least * sr:
                runs.append((start * f / sr, i * f / sr))
            start = None
    return runs
