"""`asrstream corpus`: synthesise the English training corpus (training/corpus.py) with every
offline voice installed here."""
from __future__ import annotations

import argparse
from pathlib import Path

from .training.texts import TEXTS

HELP_VOICES = "voices held out of training (default: the slt speaker, festival-slt and flite-slt)"


def add_corpus(sub) -> None:
    p = sub.add_parser("corpus", help="synthesise an English speech corpus with the offline TTS voices")
    p.add_argument("out", type=Path, help="output folder (wav/, train.jsonl, heldout.jsonl, dev.jsonl)")
    p.add_argument("--utterances", type=int, default=6000, help="training utterances")
    p.add_argument("--held-out-utterances", type=int, default=300, help="utterances of the held-out voices")
    p.add_argument("--held-out", nargs="+", default=None, metavar="VOICE", help=HELP_VOICES)
    p.add_argument("--voices", nargs="+", default=(), metavar="VOICE",
                   help="voices of the training and dev sentences (default: every voice not held out); "
                        "e.g. festival-kal festival-ked for an aligner corpus, all with word times")
    p.add_argument("--text", choices=TEXTS, default="fortunes",
                   help="training sentences: the fortune sentences (at most ~21,000), as many new ones "
                        "walked along their word bigrams (held-out sentences never feed them), or sentences "
                        "drawn from the GCIDE dictionary (apt-get install dict-gcide; a wider vocabulary); "
                        "the held-out and dev rows are the same every way")
    p.add_argument("--seed", type=int, default=0, help="draws the held-out split, speeds and pitches")
    p.add_argument("--chain-seed", type=int, default=None,
                   help="--text chain or gcide: seeds the walks or the draw (default: --seed + 1); another "
                        "value gives new training sentences over the same held-out split")
    p.add_argument("--workers", type=int, default=2, help="synthesis processes")
    p.add_argument("--list-voices", action="store_true", help="print the voices and exit")
    p.set_defaults(func=run_corpus)


def run_corpus(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .training.corpus import HELD_OUT, build
    from .training.voices import VOICES

    if args.list_voices:
        for v in VOICES:
            print(f"{v.name}\t{v.engine}\t{'word times' if v.timed else ''}")
        return 0
    if args.utterances < 1 or args.held_out_utterances < 0:
        raise ValueError("--utterances must be >= 1 and --held-out-utterances >= 0")
    total = args.utterances + args.held_out_utterances + args.held_out_utterances // 2
    with tqdm(total=total, unit="utt") as bar:
        counts = build(args.out, args.utterances, args.held_out_utterances, tuple(args.held_out or HELD_OUT),
                       args.seed, args.workers, bar.update, tuple(args.voices), args.text,
                       args.chain_seed)
    print(" ".join(f"{k} {v}" for k, v in counts.items()), f"-> {args.out}")
    return 0
