"""Longer timed utterances for the aligner: utterances of timed manifests joined end to end, with a
pause between them, and their word times shifted to match.

    python -m asrstream.training.concat OUT IN.jsonl [IN2.jsonl ...] --count 1000 [--sizes 2 3]
        [--gap 0.2 0.8] [--max-seconds 20] [--seed 0]

The aligner predicts each word's time as one of its classes counted from the start of the audio; on
corpora of 2-6 s sentences it rarely sees a word late in a segment, and its error grows with the
word's distance from the start. Writes OUT/joined.jsonl and its audio, OUT/wav/<n>.wav (16 kHz).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from ..encoder.audio import load_audio
from .manifest import Example, read_manifest, write_manifest

SR = 16000


def join(examples: list[Example], gaps: list[float]) -> tuple[np.ndarray, str, list[dict]]:
    """(audio, text, words) of `examples` spoken one after another, gaps[i] seconds of silence after
    the i-th (one gap fewer than examples)."""
    parts, words, offset = [], [], 0.0
    for i, ex in enumerate(examples):
        audio = load_audio(ex.audio)
        words += [{**w, "start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)} for w in ex.words]
        pause = np.zeros(int(round(gaps[i] * SR)) if i < len(gaps) else 0, np.float32)
        parts += [audio, pause]
        offset += (len(audio) + len(pause)) / SR
    return np.concatenate(parts), " ".join(ex.text for ex in examples), words


def build(out: Path, sources: list[Path], count: int, sizes: tuple[int, ...] = (2, 3),
          gap: tuple[float, float] = (0.2, 0.8), max_seconds: float = 20.0, seed: int = 0) -> int:
    """Write `count` joined utterances (each of a random size in `sizes`, drawn from the sources' timed
    rows without repeating one inside a group, at most `max_seconds` long) to OUT/joined.jsonl."""
    pool = [ex for src in sources for ex in read_manifest(src, need_words=True) if ex.words]
    if min(sizes) < 1 or len(pool) < max(sizes):
        raise ValueError(f"groups of {', '.join(map(str, sizes))} from {len(pool)} timed utterances: sizes must be "
                         "1 or more and at most the utterances there are")
    rng = np.random.default_rng(seed)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    rows, tries = [], 0
    while len(rows) < count:
        tries += 1
        if tries > 100 * count:
            raise ValueError(f"too few groups fit in {max_seconds:g} s: raise --max-seconds or use smaller --sizes")
        group = [pool[i] for i in rng.choice(len(pool), int(rng.choice(sizes)), replace=False)]
        gaps = [float(g) for g in rng.uniform(*gap, len(group) - 1)]
        if sum(ex.duration for ex in group) + sum(gaps) > max_seconds:
            continue
        audio, text, words = join(group, gaps)
        name = f"wav/{len(rows):06d}.wav"
        sf.write(out / name, audio, SR, subtype="PCM_16")
        rows.append({"audio": name, "text": text, "language": group[0].language,
                     "duration": round(len(audio) / SR, 3), "words": words})
    write_manifest(out / "joined.jsonl", rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asrstream.training.concat", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("manifests", type=Path, nargs="+")
    p.add_argument("--count", type=int, required=True, help="joined utterances to write")
    p.add_argument("--sizes", type=int, nargs="+", default=[2, 3], help="utterances per joined one")
    p.add_argument("--gap", type=float, nargs=2, default=[0.2, 0.8], metavar=("MIN", "MAX"), help="pause, seconds")
    p.add_argument("--max-seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        n = build(args.out, args.manifests, args.count, tuple(args.sizes), tuple(args.gap), args.max_seconds, args.seed)
    except ValueError as e:
        p.error(str(e))
    print(f"{n} joined utterances in {args.out / 'joined.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
