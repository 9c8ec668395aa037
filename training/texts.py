"""English sentences for synthetic speech, and their normalisation for speaking.

Sources: the fortune databases Debian ships (`fortunes-min`, `fortunes`: quotations, literature,
riddles) under /usr/share/games/fortunes. Each cookie is cut into sentences; attributions
("-- Author") and lines that look like verse, code or dialogue markup are dropped. For a wider
vocabulary, the definitions and quotations of GCIDE (`dict-gcide`: Webster's 1913 and additions,
213,000 sentences) under /usr/share/dictd: labels, etymologies, sense numbers and attributions dropped.

Normalisation writes what a speaker says: numbers as words (years in pairs: "1984" -> "nineteen
eighty-four"; ordinals; decimals with "point"; "$5.50" -> "five dollars fifty cents"; "50%" ->
"fifty percent"; "7:30" -> "seven thirty"), common abbreviations expanded (Mr., Dr., St., etc.),
"&" -> "and"; quotes and brackets dropped. A sentence survives only if what is left is letters,
spaces and the punctuation . , ? ! ; : ' - and it has 3 to 24 words.
"""
from __future__ import annotations

import gzip
import re
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

FORTUNES = Path("/usr/share/games/fortunes")
GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
# a corpus's training sentences: fortune sentences, new ones chained from them, or dictionary sentences
TEXTS = ("fortunes", "chain", "gcide")
CITATION = re.compile(r"\b(i{1,3}|iv|vi{0,3}|ix|xi{0,3}|xiv|xv|xx)\.")  # "Tim. iii. 3.": a verse cited, not prose
ABBREVIATIONS = {"Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Dr.": "Doctor", "St.": "Saint",
                 "Jr.": "Junior", "Sr.": "Senior", "Prof.": "Professor", "Gen.": "General", "Capt.": "Captain",
                 "Lt.": "Lieutenant", "Col.": "Colonel", "Sgt.": "Sergeant", "Rev.": "Reverend", "Mt.": "Mount",
                 "vs.": "versus", "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "&": "and",
                 "No.": "number", "approx.": "approximately", "Jan.": "January", "Feb.": "February",
                 "Aug.": "August", "Sept.": "September", "Oct.": "October", "Nov.": "November", "Dec.": "December"}
ALLOWED = re.compile(r"^[A-Za-z ,.?!;:'-]+$")
DIALOGUE = re.compile(r"^[A-Za-z]+( [A-Z][a-z]+)?:")  # "Sam: ..." is a script, not speech
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


@lru_cache(maxsize=1)
def _inflect():
    import inflect

    return inflect.engine()


def say_number(text: str) -> str:
    """Digits in `text` as spoken words."""
    p = _inflect()

    def words(n: str, **kw) -> str:
        return p.number_to_words(n, andword="", **kw).replace(",", "")

    text = re.sub(r"\$(\d[\d,]*)(?:\.(\d\d))?", lambda m: words(m[1].replace(",", "")) + " dollars"
                  + (f" {words(m[2].lstrip('0') or '0')} cents" if m[2] and m[2] != "00" else ""), text)
    text = re.sub(r"(\d+(?:\.\d+)?)%", lambda m: words(m[1], decimal="point") + " percent", text)
    text = re.sub(r"\b(\d{1,2}):(\d\d)\b", lambda m: words(m[1]) + ("" if m[2] == "00" else
                  " oh " + words(m[2][1]) if m[2][0] == "0" else " " + words(m[2])), text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: words(p.ordinal(m[1])), text)
    text = re.sub(r"\b(1[1-9]|20)(\d\d)s?\b(?![.,]\d)", _year, text)
    text = re.sub(r"\b\d{1,3}(?:,\d{3})+\b", lambda m: words(m[0].replace(",", "")), text)
    return re.sub(r"\b\d+(?:\.\d+)?\b", lambda m: words(m[0], decimal="point"), text)


def _year(m: re.Match) -> str:
    p, a, b = _inflect(), m[1], m[2]
    if a == "20" and b < "10":
        spoken = p.number_to_words(a + b, andword="")
    else:
        second = "hundred" if b == "00" else ("oh " + p.number_to_words(b[1]) if b[0] == "0" else p.number_to_words(b))
        spoken = f"{p.number_to_words(a)} {second}"
    if m[0].endswith("s"):
        spoken = spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"
    return spoken.replace(",", "")


def normalize_for_speech(sentence: str) -> str | None:
    """The sentence as a speaker says it, or None if it cannot be spoken cleanly."""
    s = " ".join(sentence.replace("\u2019", "'").replace("`", "'").split())
    for short, full in ABBREVIATIONS.items():
        s = re.sub(rf"(?<![\w.]){re.escape(short)}", full, s)
    s = say_number(s)
    s = re.sub(r"[\"()\[\]{}*_]|''", "", s).replace("--", ", ").strip(" -'")
    s = re.sub(r"\s+([,.?!;:])", r"\1", " ".join(s.split()))
    if not s or not ALLOWED.match(s) or not 3 <= len(s.split()) <= 24 or not s[0].isalpha() or DIALOGUE.match(s):
        return None
    return s[0].upper() + s[1:]


def fortune_sentences(folder: Path = FORTUNES) -> list[str]:
    """Normalised, distinct sentences from every fortune database in `folder`, in a stable order."""
    files = sorted(f for f in folder.glob("*") if f.is_file() and not f.suffix)
    if not files:
        raise RuntimeError(f"no fortune databases in {folder}: apt-get install fortunes-min fortunes")
    out, seen = [], set()
    for f in files:
        for cookie in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            for s in _sentences(cookie):
                if s.lower() not in seen:
                    seen.add(s.lower())
                    out.append(s)
    return out


def gcide_sentences(path: Path | None = None) -> list[str]:
    """Normalised, distinct sentences (4 words or more, ending in . ? or !) of the definitions and
    quotations in the GCIDE dictionary at `path` (default GCIDE), in a stable order."""
    path = path or GCIDE
    if not path.is_file():
        raise RuntimeError(f"no GCIDE dictionary at {path}: apt-get install dict-gcide")
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:  # dictzip is gzip
        blocks = re.split(r"\n\s*\n", f.read())
    out, seen = [], set()
    for block in blocks:  # an entry's headword line starts at column 0, its text is indented
        body = _gcide_plain(" ".join(ln.strip() for ln in block.splitlines() if ln.startswith("   ")))
        for s in SENTENCE_END.split(body):
            n = normalize_for_speech(s)
            n = n and re.sub(r"([,;:.?!])[,;:.]+", r"\1", re.sub(r",(?=\w)", ", ", n))  # "one;, two", "a,b", "son?."
            if n and n[-1] in ".?!" and len(n.split()) >= 4 and not CITATION.search(n) and n.lower() not in seen:
                seen.add(n.lower())
                out.append(n)
    return out


def _gcide_plain(text: str) -> str:
    text = re.sub(r"\[[^\]]*\]", "", text)  # [1913 Webster], [R.], [L. abdicatio.]
    text = re.sub(r"\([A-Z][a-z]*\.?( [A-Za-z]+\.?)*\)", "", text)  # (Anat.), (Zool.) field labels
    text = re.sub(r"--\s*[A-Z][\w. ]*\.?", ".", text)  # --Milton. attributions
    text = re.sub(r"(^|\s)\d+\.\s", " ", text)  # sense numbers
    text = text.replace("{", "").replace("}", "")
    return text


def _sentences(cookie: str) -> list[str]:
    lines = [ln for ln in cookie.splitlines() if ln.strip() and not ln.lstrip().startswith(("--", "-- "))]
    if any(len(ln) - len(ln.lstrip()) > 8 or ":" in ln[:12] and ln[:12].split(":")[0].isupper() for ln in lines):
        return []  # verse laid out, a dialogue script or code
    text = " ".join(ln.strip() for ln in lines)
    return [n for s in SENTENCE_END.split(text) if (n := normalize_for_speech(s))]


def chain_sentences(sources: list[str], n: int, seed: int, avoid: Sequence[str] = (), min_words: int = 4,
                    max_words: int = 20) -> list[str]:
    """`n` distinct new sentences walked along the word bigrams of `sources`: each starts with a word
    that starts a source sentence, each next word follows the one before it somewhere in the sources,
    and it stops where a source sentence stops. None is a source sentence or in `avoid` (held-out
    text, compared without case). Their words and local grammar are those of the sources, their
    content is not, so a model trained on them must listen instead of recalling memorised sentences."""
    starts, follow = [], defaultdict(list)
    for sentence in sources:
        words = sentence.split()
        starts.append(words[0])
        for a, b in zip(words, [*words[1:], None]):
            follow[a].append(b)
    rng = np.random.default_rng(seed)
    known, out = {s.lower() for s in [*sources, *avoid]}, []
    for _ in range(50 * n):
        words = [starts[rng.integers(len(starts))]]
        while len(words) <= max_words and (nxt := follow[words[-1]][rng.integers(len(follow[words[-1]]))]):
            words.append(nxt)
        text = " ".join(words)
        if nxt is None and min_words <= len(words) <= max_words and text.lower() not in known:
            known.add(text.lower())
            out.append(text)
            if len(out) == n:
                return out
    raise ValueError(f"the sources gave {len(out)} of {n} new sentences of {min_words}-{max_words} words")
