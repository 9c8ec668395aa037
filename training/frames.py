"""Frame labels for the CTC head from a transcript's word times (ASR from scratch: `frame_weight`).

CTC alone has to find where each token is spoken before it can learn what a token sounds like, and a
fresh encoder sits on the all-blank plateau for thousands of steps. The synthesisers know where
every word is (festival, espeak-ng, Kokoro: the manifest's `words`), so the head can be told
directly: each encoder frame whose centre lies inside a word is labelled with one of that word's
text tokens (the word's frames shared out in order, token by token), each frame at least one frame
away from every word with blank, and every other frame (word edges, words shorter than their
tokens) is not scored. The labels of a word form a valid CTC path of its tokens (repeats merge), so
the frame loss trains the same head towards one of CTC's own alignments.

Geometry: the encoder emits `tokens_per_chunk` frames per conv chunk of `chunk_seconds` (13 per
1 s for the released layout), frame j of chunk c centred at c * chunk_seconds + (j + 0.5) *
chunk_seconds / tokens_per_chunk. Punctuation-only tokens get no frames.
"""
from __future__ import annotations

IGNORE = -100  # cross-entropy's ignore_index: the frame is not scored


def frame_times(n_frames: int, tokens_per_chunk: int, chunk_seconds: float) -> list[float]:
    """Centre time in seconds of each of an utterance's `n_frames` encoder frames."""
    step = chunk_seconds / tokens_per_chunk
    return [(i // tokens_per_chunk) * chunk_seconds + (i % tokens_per_chunk + 0.5) * step for i in range(n_frames)]


def word_tokens(tokenizer, text: str, n_words: int) -> list[list[int]] | None:
    """The text's tokens grouped by the whitespace-separated word they fall in, keeping only tokens
    with a letter or digit (what is spoken); None when the text does not split into `n_words` spoken
    words (the manifest's words are `split_words` units: whitespace pieces with a letter or digit)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts, pos = [], 0
    for piece in text.split():
        pos = text.index(piece, pos)
        if any(ch.isalnum() for ch in piece):
            starts.append((pos, pos + len(piece)))
        pos += len(piece)
    if len(starts) != n_words:
        return None
    groups: list[list[int]] = [[] for _ in starts]
    w = 0
    for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]):
        if not any(ch.isalnum() for ch in text[a:b]):
            continue
        while w < len(starts) and a >= starts[w][1]:
            w += 1
        if w == len(starts):
            return None
        groups[w].append(tok)
    return groups


def frame_labels(groups: list[list[int]], spans: list[tuple[float, float]], times: list[float],
                 blank: int) -> list[int]:
    """One label per frame (see the module's policy): `groups` the spoken tokens of each word, `spans`
    each word's (start, end) in seconds in the audio as heard, `times` the frames' centres."""
    labels = [IGNORE] * len(times)
    step = times[1] - times[0] if len(times) > 1 else 0.08
    for i, t in enumerate(times):
        if all(t < s - step or t > e + step for s, e in spans):
            labels[i] = blank
    for tokens, (s, e) in zip(groups, spans):
        inside = [i for i, t in enumerate(times) if s <= t <= e]
        if not tokens or len(inside) < len(tokens):
            continue
        for k, i in enumerate(inside):
            labels[i] = tokens[k * len(tokens) // len(inside)]
    return labels
