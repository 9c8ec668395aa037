"""A preallocated, position-indexed KV cache for one sequence (one row of a batch).

A forward pass writes the new keys/values at positions `length .. length + n - 1` of every layer,
then `advance(n)` moves the length on. Rolling back is setting the length lower (`truncate`): later
writes overwrite what lies beyond and attention never reads past the length, so nothing is copied.
Rows of a batch each own a cache, so rows of any lengths can be batched, join or leave.

Memory is reserved with `torch.empty`: pages the row never reaches are never touched.
"""
from __future__ import annotations

import torch


class KVCache:
    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, max_len: int,
                 dtype: torch.dtype, device: torch.device | str):
        shape = (n_layers, n_kv_heads, max_len, head_dim)
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)
        self.length = 0
        self.max_len = max_len

    def check_room(self, n: int) -> None:
        if self.length + n > self.max_len:
            raise ValueError(f"KV cache full: {self.length} + {n} tokens > max_len {self.max_len}")

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (kv, n, hd) after the cached tokens; return all keys/values to attend over."""
        s, e = self.length, self.length + k.shape[1]
        self.k[layer, :, s:e] = k
        self.v[layer, :, s:e] = v
        return self.k[layer, :, :e], self.v[layer, :, :e]

    def advance(self, n: int) -> None:
        """After every layer wrote a step: the row holds n more tokens."""
        self.length += n

    def truncate(self, length: int) -> None:
        """Roll the row back to `length` tokens."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of length {self.length} to {length}")
        self.length = length
