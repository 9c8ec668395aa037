"""Greedy decoding of a batch of prompts with a preallocated KV cache.

A row stops at an EOS id, at `max_new_tokens`, or when its newest tokens are one n-gram repeated
`repeat_limit` times in a row (a decoding loop; the loop's tokens beyond the first copy are dropped).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .kvcache import KVCache
from .thinker import Qwen3ASRNet


@dataclass(frozen=True)
class DecodingOptions:
    max_new_tokens: int = 512  # per utterance, EOS excluded
    repeat_limit: int = 20  # stop when an n-gram repeats this many times in a row; 0 turns the guard off
    max_ngram: int = 10  # longest n-gram the guard looks for
    min_new_tokens: int = 0  # EOS is suppressed until this many tokens exist (fixed-length benchmarks)

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.repeat_limit < 0 or self.repeat_limit == 1:
            raise ValueError(f"repeat_limit must be 0 (off) or >= 2, got {self.repeat_limit}")
        if self.max_ngram < 1:
            raise ValueError(f"max_ngram must be >= 1, got {self.max_ngram}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}")


def loop_length(tokens: list[int], limit: int, max_ngram: int) -> int:
    """n if the last n * limit tokens are one n-gram repeated `limit` times, else 0."""
    if limit < 2:
        return 0
    for n in range(1, max_ngram + 1):
        span = n * limit
        if span > len(tokens):
            return 0
        tail = tokens[-span:]
        if tail == tail[:n] * limit:
            return n
    return 0


@dataclass
class Row:
    """One sequence being decoded greedily, step by step, in a batch whose rows may come and go.

    `feed` holds the embeddings not yet run (a prefill, later the newest token). `draft` proposes
    tokens to follow the feed (e.g. the previous streaming hypothesis): they are run in the same pass
    and each is kept only while it equals the greedy choice, so the result is greedy decoding, in
    fewer passes when the draft is right. Rejected draft tokens are rolled out of the cache.
    """
    cache: KVCache
    feed: torch.Tensor  # (T, D)
    opts: DecodingOptions
    draft: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    done: bool = False
    drafted: int = 0  # draft tokens offered / accepted over the row's life
    accepted: int = 0


def step(net: Qwen3ASRNet, rows: list[Row], eos: tuple[int, ...]) -> None:
    """One forward pass over the unfinished rows (packed), then greedy choices and stop checks."""
    rows = [r for r in rows if not r.done]
    embed = net.thinker.model.embed_tokens
    dev = net.device
    inputs = [torch.cat([r.feed, embed(torch.tensor(r.draft, device=dev))]) if r.draft else r.feed for r in rows]
    hidden = net.forward_rows(inputs, [r.cache for r in rows])
    heads = [h[r.feed.shape[0] - 1 :] for r, h in zip(rows, hidden)]  # positions that predict new tokens
    logits = net.logits(torch.cat(heads))
    short = [len(r.out) + i < r.opts.min_new_tokens for r, h in zip(rows, heads) for i in range(h.shape[0])]
    picks = _pick(logits, short, eos)
    i = 0
    for r, h in zip(rows, heads):
        _advance(r, picks[i : i + h.shape[0]], eos)
        i += h.shape[0]
        if not r.done:
            r.feed = embed(torch.tensor(r.out[-1:], device=dev))


def _advance(r: Row, picks: list[int], eos: tuple[int, ...]) -> None:
    """Accept the greedy picks of one row: draft tokens while they match, then one new token."""
    m, kept = len(r.draft), 0
    for i, tok in enumerate(picks):
        r.done = _accept(r.out, tok, r.opts, eos)
        if r.done or i == m or tok != r.draft[i]:
            break
        kept += 1
    r.cache.truncate(r.cache.length - (m - kept))
    r.drafted += m
    r.accepted += kept
    r.draft = []


def greedy(net: Qwen3ASRNet, rows: list[torch.Tensor], opts: DecodingOptions, eos: tuple[int, ...]) -> list[list[int]]:
    """Decode each row of prompt embeddings (T_i, D): -> generated ids per row (EOS not included)."""
    batch = [Row(net.new_cache(x.shape[0] + opts.max_new_tokens), x, opts) for x in rows]
    while not all(r.done for r in batch):  # each row finishes by max_new_tokens at the latest
        step(net, batch, eos)
    return [r.out for r in batch]


def _pick(logits: torch.Tensor, short: list[bool], eos: tuple[int, ...]) -> list[int]:
    """Greedy choice per position; EOS masked at positions whose row is still short of min_new_tokens."""
    rows = [i for i, s in enumerate(short) if s]
    if rows and eos:
        dev = logits.device
        logits[torch.tensor(rows, device=dev)[:, None], torch.tensor(eos, device=dev)] = float("-inf")
    return logits.argmax(-1).tolist()


def _accept(tokens: list[int], tok: int, opts: DecodingOptions, eos: tuple[int, ...]) -> bool:
    """Append tok to tokens unless it ends the row; True when the row is finished."""
    if tok in eos:
        return True
    tokens.append(tok)
    n = loop_length(tokens, opts.repeat_limit, opts.max_ngram)
    if n:
        del tokens[len(tokens) - n * (opts.repeat_limit - 1) :]
        return True
    return len(tokens) >= opts.max_new_tokens
