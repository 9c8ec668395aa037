"""Training manifests: JSON Lines, one utterance a line.

    {"audio": "clips/0001.wav", "text": "Hello there.", "language": "English",
     "words": [{"word": "Hello", "start": 0.31, "end": 0.62}, {"word": "there", "start": 0.66, "end": 0.98}]}

`audio` is a path (relative paths are relative to the manifest's folder) to any file soundfile reads,
at any sample rate; `text` is the transcript; `language` (optional) is written into the target as
the model's `language X<asr_text>` header (omitted: "English"); `words` (needed to train an aligner)
are word times in seconds. `duration` (optional, seconds) saves reading the file header.
Errors name the file, the line and the field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf


@dataclass(frozen=True)
class Example:
    audio: Path
    text: str
    duration: float  # seconds
    language: str = "English"
    words: tuple[dict, ...] = field(default=())


def read_manifest(path: str | Path, need_words: bool = False) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest {path} does not exist")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                out.append(_example(_parse(line, path, n), path, n, need_words))
    if not out:
        raise ValueError(f"manifest {path} has no examples")
    return out


def _parse(line: str, path: Path, n: int) -> dict:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}:{n}: each line must be a JSON object")
    return d


def _example(d: dict, path: Path, n: int, need_words: bool) -> Example:
    where = f"{path}:{n}"
    if not isinstance(d.get("audio"), str) or not isinstance(d.get("text"), str):
        raise ValueError(f"{where}: 'audio' and 'text' must be strings")
    audio = (path.parent / d["audio"]).resolve()
    if not audio.is_file():
        raise ValueError(f"{where}: audio file {audio} does not exist")
    duration = d.get("duration")
    if duration is None:
        duration = sf.info(str(audio)).duration
    words = tuple(_words(d.get("words"), where)) if d.get("words") is not None else ()
    if need_words and not words:
        raise ValueError(f"{where}: training an aligner needs 'words' with times")
    return Example(audio, d["text"], float(duration), str(d.get("language") or "English"), words)


def _words(words, where: str) -> list[dict]:
    if not isinstance(words, list):
        raise ValueError(f"{where}: 'words' must be a list")
    out = []
    for w in words:
        ok = isinstance(w, dict) and isinstance(w.get("word"), str)
        ok = ok and all(isinstance(w.get(k), (int, float)) for k in ("start", "end")) and 0 <= w["start"] <= w["end"]
        if not ok:
            raise ValueError(f"{where}: each word needs 'word', and 0 <= 'start' <= 'end' in seconds: {w!r}")
        out.append({"word": w["word"], "start": float(w["start"]), "end": float(w["end"])})
    return out


def write_manifest(path: str | Path, rows: list[dict]) -> None:
    """Write rows (dicts as above) as JSON Lines."""
    with Path(path).open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
