"""A preallocated, position-indexed KV cache for a batch of rows.

Each row has its own length: a step writes the new keys/values of row b at positions
`lengths[b] .. lengths[b] + n_b - 1` and then advances `lengths[b]` by n_b. Rolling a row back is
setting its length lower: later writes overwrite what lies beyond, and attention never reads past
a row's length, so nothing is copied.
"""
from __future__ import annotations

import torch


class KVCache:
    def __init__(self, n_layers: int, batch: int, n_kv_heads: int, head_dim: int, max_len: int,
                 dtype: torch.dtype, device: torch.device | str):
        shape = (batch, n_kv_heads, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.lengths = [0] * batch
        self.max_len = max_len

    @property
    def batch(self) -> int:
        return len(self.lengths)

    def check_room(self, n: int) -> None:
        if max(self.lengths) + n > self.max_len:
            raise ValueError(f"KV cache full: {max(self.lengths)} + {n} tokens > max_len {self.max_len}")

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, kv, T, hd) at each row's length; return the cache views to attend over."""
        T = k.shape[2]
        end = max(self.lengths) + T
        K, V = self.k[layer], self.v[layer]
        if len(set(self.lengths)) == 1:
            s = self.lengths[0]
            K[:, :, s : s + T] = k
            V[:, :, s : s + T] = v
        else:
            for b, s in enumerate(self.lengths):
                K[b, :, s : s + T] = k[b]
                V[b, :, s : s + T] = v[b]
        return K[:, :, :end], V[:, :, :end]

    def advance(self, counts: list[int]) -> None:
        """After all layers wrote a step: row b now holds counts[b] more tokens."""
        self.lengths = [s + n for s, n in zip(self.lengths, counts)]

    def truncate(self, row: int, length: int) -> None:
        """Roll row `row` back to `length` tokens."""
        if not 0 <= length <= self.lengths[row]:
            raise ValueError(f"cannot truncate row {row} of length {self.lengths[row]} to {length}")
        self.lengths[row] = length
