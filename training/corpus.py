"""A synthetic English speech corpus: fortune sentences (or new sentences chained from their word
bigrams, or dictionary sentences) spoken by every offline voice installed here.

Policy. Sentences are shuffled with the seed and split: the held-out set's sentences never occur in
training. Training utterances go round-robin over the training voices, each with a random speed
(0.85-1.2x) and pitch shift; held-out voices (default: the slt speaker, both its festival HTS and
flite versions) speak only the held-out sentences, so evaluation measures an unseen speaker on
unseen text. Festival and espeak-ng voices give exact word times. Output, under OUT:
    wav/<voice>/<n>.wav   16 kHz mono 16-bit PCM
    train.jsonl           training voices (manifest format of manifest.py, plus voice, speed)
    heldout.jsonl         held-out voices on held-out sentences
    dev.jsonl             training voices on held-out sentences (tracks text generalisation)
    train_timed.jsonl, heldout_timed.jsonl   the utterances with word times (festival, espeak-ng), for the aligner
"""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from .manifest import write_manifest
from .texts import TEXTS, chain_sentences, fortune_sentences, gcide_sentences
from .voices import SR, VOICES, synthesize, voice

HELD_OUT = ("festival-slt", "flite-slt")
BATCH = 40  # utterances per synthesis task (one festival process each)


def plan(n_train: int, n_held_out: int, held_out: tuple[str, ...], seed: int,
         train_voices: tuple[str, ...] = (), text: str = "fortunes", chain_seed: int | None = None) -> list[dict]:
    """Every utterance to make: {split, voice, text, speed, pitch, id}. `train_voices` (default: every
    voice not held out) speak the training and dev sentences. text="chain": the training sentences
    are new ones walked along the word bigrams of every sentence not held out (texts.chain_sentences,
    seeded by `chain_seed`, default seed + 1: another chain seed gives other sentences over the same
    split); text="gcide": GCIDE's sentences (texts.gcide_sentences) that are not held out, drawn with
    `chain_seed` the same way. The held-out and dev rows are those of text="fortunes" with the same
    seed and counts."""
    if text not in TEXTS:
        raise ValueError(f"text must be one of {', '.join(TEXTS)}, got {text!r}")
    if chain_seed is not None and text == "fortunes":
        raise ValueError("a chain seed applies only to text='chain' or 'gcide' (--text chain|gcide)")
    for name in held_out + train_voices:
        voice(name)  # names must exist
    if set(held_out) & set(train_voices):
        raise ValueError(f"voices both held out and trained on: {sorted(set(held_out) & set(train_voices))}")
    sentences = fortune_sentences()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sentences))
    n_text = max(1, n_held_out)
    if text == "fortunes" and n_train + n_text > len(sentences):
        raise ValueError(f"{n_train} + {n_text} sentences asked for; the sources hold {len(sentences)}")
    test_text = [sentences[i] for i in order[:n_text]]
    pool = [sentences[i] for i in order[n_text:]]
    train_text = _training_text(text, pool, n_train, chain_seed_of(seed, text, chain_seed), test_text)
    trainers = list(train_voices) or [v.name for v in VOICES if v.name not in held_out]
    rows = [_row("train", trainers[i % len(trainers)], t, rng) for i, t in enumerate(train_text)]
    rows += [_row("heldout", held_out[i % len(held_out)], t, rng) for i, t in enumerate(test_text[:n_held_out])]
    rows += [_row("dev", trainers[(7 * i) % len(trainers)], t, rng) for i, t in enumerate(test_text[: n_held_out // 2])]
    for i, r in enumerate(rows):
        r["id"] = i
    return rows


def _training_text(text: str, pool: list[str], n: int, text_seed: int | None, test_text: list[str]) -> list[str]:
    if text == "fortunes":
        return pool[:n]
    if text == "chain":
        return chain_sentences(pool, n, text_seed, avoid=test_text)
    held = {t.lower() for t in test_text}
    dictionary = [t for t in gcide_sentences() if t.lower() not in held]
    if n > len(dictionary):
        raise ValueError(f"{n} sentences asked for; GCIDE holds {len(dictionary)}")
    return [dictionary[i] for i in np.random.default_rng(text_seed).choice(len(dictionary), n, replace=False)]


def chain_seed_of(seed: int, text: str, chain_seed: int | None) -> int | None:
    """The seed of the chained sentences' walks or of the dictionary draw (None for the fortunes)."""
    if text == "fortunes":
        return None
    return seed + 1 if chain_seed is None else chain_seed


def _row(split: str, name: str, text: str, rng) -> dict:
    return {"split": split, "voice": name, "text": text, "speed": round(float(rng.uniform(0.85, 1.2)), 3),
            "pitch": round(float(rng.uniform(-1, 1)), 3)}


def build(out: Path, n_train: int, n_held_out: int, held_out: tuple[str, ...] = HELD_OUT, seed: int = 0,
          workers: int = 2, progress=None, train_voices: tuple[str, ...] = (), text: str = "fortunes",
          chain_seed: int | None = None) -> dict[str, int]:
    """Synthesise the corpus into `out`; returns utterances per split."""
    rows = plan(n_train, n_held_out, held_out, seed, train_voices, text, chain_seed)
    tasks = _tasks(rows)
    out.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for made in pool.map(_make, [(out, t) for t in tasks]):
            done += made
            if progress:
                progress(len(made))
    done.sort(key=lambda r: r["id"])
    counts = {}
    for split in ("train", "heldout", "dev"):
        part = [_manifest_row(r) for r in done if r["split"] == split]
        write_manifest(out / f"{split}.jsonl", part)
        counts[split] = len(part)
        if split != "dev":  # for the aligner: the utterances with exact word times
            write_manifest(out / f"{split}_timed.jsonl", [r for r in part if "words" in r])
    about = {"seed": seed, "text": text, "chain_seed": chain_seed_of(seed, text, chain_seed),
             "held_out": list(held_out), "counts": counts, "voices": sorted({r["voice"] for r in done})}
    (out / "corpus.json").write_text(json.dumps(about, indent=2) + "\n")
    return counts


def _tasks(rows: list[dict]) -> list[list[dict]]:
    by_voice: dict[str, list[dict]] = {}
    for r in rows:
        by_voice.setdefault(r["voice"], []).append(r)
    return [rs[i : i + BATCH] for rs in by_voice.values() for i in range(0, len(rs), BATCH)]


def _make(job: tuple[Path, list[dict]]) -> list[dict]:
    out, rows = job
    v = voice(rows[0]["voice"])
    folder = out / "wav" / v.name
    folder.mkdir(parents=True, exist_ok=True)
    made = synthesize(v, [r["text"] for r in rows], [r["speed"] for r in rows], [r["pitch"] for r in rows])
    res = []
    for r, (wav, words) in zip(rows, made):
        path = folder / f"{r['id']:06d}.wav"
        sf.write(path, wav, SR, subtype="PCM_16")
        res.append({**r, "audio": str(path.relative_to(out)), "duration": round(len(wav) / SR, 3), "words": words})
    return res


def _manifest_row(r: dict) -> dict:
    row = {"audio": r["audio"], "text": r["text"], "language": "English", "duration": r["duration"],
           "voice": r["voice"], "speed": r["speed"]}
    if r["words"]:
        row["words"] = r["words"]
    return row
