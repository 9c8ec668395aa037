"""Greedy decoding of a batch of prompts with a preallocated KV cache.

A row stops at an EOS id, at `max_new_tokens`, or when its newest tokens are one n-gram repeated
`repeat_limit` times in a row (a decoding loop; the loop's tokens beyond the first copy are dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

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


def greedy(net: Qwen3ASRNet, rows: list[torch.Tensor], opts: DecodingOptions, eos: tuple[int, ...]) -> list[list[int]]:
    """Decode each row of prompt embeddings (T_i, D): -> generated ids per row (EOS not included)."""
    B = len(rows)
    cache = net.new_cache(B, max(r.shape[0] for r in rows) + opts.max_new_tokens)
    hidden = net.forward_rows(rows, cache)
    last = torch.tensor([r.shape[0] - 1 for r in rows], device=hidden.device)
    out: list[list[int]] = [[] for _ in range(B)]
    nxt = _pick(net.logits(hidden[torch.arange(B), last]), out, eos, opts)
    done = [False] * B
    embed = net.thinker.model.embed_tokens
    while True:  # each row finishes by max_new_tokens at the latest (_accept)
        for b in range(B):
            if not done[b]:
                done[b] = _accept(out[b], nxt[b], eos, opts)
        if all(done):
            break
        x = embed(torch.tensor(nxt, device=hidden.device))[:, None, :]
        hidden = net.thinker.model(x, [1] * B, cache)
        nxt = _pick(net.logits(hidden[:, 0]), out, eos, opts)
    return out


def _pick(logits: torch.Tensor, out: list[list[int]], eos: tuple[int, ...], opts: DecodingOptions) -> list[int]:
    """Greedy choice per row; EOS masked for rows still short of min_new_tokens."""
    if opts.min_new_tokens and eos:
        short = torch.tensor([len(t) < opts.min_new_tokens for t in out], device=logits.device)
        logits[short.nonzero().squeeze(1)[:, None], torch.tensor(eos, device=logits.device)] = float("-inf")
    return logits.argmax(-1).tolist()


def _accept(tokens: list[int], tok: int, eos: tuple[int, ...], opts: DecodingOptions) -> bool:
    """Append tok to tokens unless it ends the row; True when the row is finished."""
    if tok in eos:
        return True
    tokens.append(tok)
    n = loop_length(tokens, opts.repeat_limit, opts.max_ngram)
    if n:
        del tokens[len(tokens) - n * (opts.repeat_limit - 1) :]
        return True
    return len(tokens) >= opts.max_new_tokens
