"""Word error rate with a stated English text normaliser.

Normaliser (applied to reference and hypothesis alike): Unicode NFKC; lower case; curly quotes and
dashes to ASCII; every character other than a letter, a digit, an apostrophe inside a word or a
space becomes a space; whitespace collapsed. Numbers are compared as written (the corpus writes
them as words). WER = (substitutions + deletions + insertions) / reference words, over all pairs
together (jiwer's corpus-level measure).
"""
from __future__ import annotations

import re
import unicodedata

_DROP = re.compile(r"[^\w' ]|_")
_APOS = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).lower()
    s = s.translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u2013": " ", "\u2014": " "}))
    s = _APOS.sub(" ", _DROP.sub(" ", s))
    return " ".join(s.split())


def wer(references: list[str], hypotheses: list[str]) -> float:
    import jiwer  # the `train` extra: training runs without it until it evaluates
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]
    if not keep:
        raise ValueError("WER needs at least one non-empty reference")
    return jiwer.wer([refs[i] for i in keep], [hyps[i] for i in keep])
