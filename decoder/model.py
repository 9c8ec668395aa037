"""The Qwen3 decoder: RMSNorm, GQA attention with per-head q/k RMSNorm and RoPE, SwiGLU.

Parameter names follow the checkpoint's `thinker.model.*`. Positions are explicit per row, and the
KV cache is passed in, so the same code serves prefill, decoding, batched rows of different
lengths and rollback.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TextConfig
from .kvcache import KVCache


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_table(cfg: TextConfig, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (n, head_dim) in float32 for positions 0..n-1."""
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.int64).float() / cfg.head_dim))
    f = torch.arange(n, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([f, f], dim=-1).to(device)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (N, H, hd); cos/sin: (N, 1, hd)
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos + rot * sin


class Attention(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        hd, nq, nkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        self.nq, self.nkv, self.hd = nq, nkv, hd
        self.q_proj = nn.Linear(cfg.hidden_size, nq * hd, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, nkv * hd, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, nkv * hd, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(nq * hd, cfg.hidden_size, bias=cfg.attention_bias)
        self.q_norm = RMSNorm(hd, cfg.rms_norm_eps)
        self.k_norm = RMSNorm(hd, cfg.rms_norm_eps)

    def forward(self, x, rope, rows: list[tuple[KVCache, int]], layer: int) -> torch.Tensor:
        # x: (N, D) tokens of all rows packed; row b owns the next n_b of them
        N = x.shape[0]
        q = self.q_norm(self.q_proj(x).view(N, self.nq, self.hd))
        k = self.k_norm(self.k_proj(x).view(N, self.nkv, self.hd))
        v = self.v_proj(x).view(N, self.nkv, self.hd)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)  # (N, H, hd)
        if len(rows) > 1 and all(getattr(cache, "whole", False) for cache, _ in rows):
            lens = [n for _, n in rows]
            return self.o_proj(padded_causal_attention(q, k, v, lens, self.nq != self.nkv).reshape(N, -1))
        outs, s = [], 0
        for cache, n in rows:
            K, V = cache.write(layer, k[s : s + n].transpose(0, 1), v[s : s + n].transpose(0, 1))
            o = row_attention(q[s : s + n].transpose(0, 1), K, V, cache.length, self.nq != self.nkv)
            outs.append(o.transpose(0, 1).reshape(n, -1))
            s += n
        return self.o_proj(torch.cat(outs))


def row_attention(q, K, V, start: int, gqa: bool) -> torch.Tensor:
    """One row's causal attention: q (H, n, hd) at positions start.., over K, V (kv, start + n, hd)."""
    H, n, hd = q.shape
    if n == 1:  # decoding: two small matmuls, ~5x faster than SDPA's kernel for one query on CPU
        kv = K.shape[0]
        scores = torch.matmul(q.view(kv, H // kv, hd), K.transpose(1, 2)) * hd**-0.5
        return torch.matmul(scores.softmax(-1), V).view(H, 1, hd)
    if start == 0:
        return F.scaled_dot_product_attention(q, K, V, is_causal=True, enable_gqa=gqa)
    keys = torch.arange(start + n, device=q.device)
    mask = keys[None, :] <= torch.arange(start, start + n, device=q.device)[:, None]
    return F.scaled_dot_product_attention(q, K, V, attn_mask=mask, enable_gqa=gqa)


def padded_causal_attention(q, k, v, lens: list[int], gqa: bool) -> torch.Tensor:
    """Causal attention of rows packed in q (N, H, hd) and k, v (N, kv, hd), each starting at position 0
    with no cache: one padded call for all rows, not one per row (training's batches of many rows,
    where per-row calls were most of a step's kernels) -> (N, H, hd)."""
    B, L = len(lens), max(lens)
    slot = torch.arange(L, device=q.device)
    valid = slot[None, :] < torch.tensor(lens, device=q.device)[:, None]  # (B, L)
    where = valid.flatten().nonzero().squeeze(1)  # row-major: the packed order

    def pad(t: torch.Tensor) -> torch.Tensor:
        grid = t.new_zeros(B * L, *t.shape[1:]).index_copy(0, where, t)
        return grid.view(B, L, *t.shape[1:]).transpose(1, 2)  # (B, heads, L, hd)

    mask = (slot[None, :] <= slot[:, None])[None] & valid[:, None, :]  # causal, real keys; no row is empty
    o = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=mask[:, None], enable_gqa=gqa)
    return o.transpose(1, 2).reshape(B * L, *q.shape[1:])[where]


class MLP(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, rope, rows: list[tuple[KVCache, int]], layer: int) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, rows, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """`thinker.model`: token embeddings, decoder layers, final norm."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self._rope: tuple[torch.Tensor, torch.Tensor] | None = None

    def rope(self, pos: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (N, 1, hd) for positions pos (N,)."""
        need = int(pos.max()) + 1
        if self._rope is None or self._rope[0].shape[0] < need or self._rope[0].device != pos.device:
            self._rope = rope_table(self.cfg, max(need, 4096), pos.device)
        cos, sin = self._rope
        return cos[pos].unsqueeze(1).to(dtype), sin[pos].unsqueeze(1).to(dtype)

    def forward(self, x: torch.Tensor, rows: list[tuple[KVCache, int]]) -> torch.Tensor:
        """x: (N, D) embeddings of all rows packed; rows: (cache, n) per row, in order -> (N, D).

        Each row's tokens continue its own cache at its own positions: prefills, single decode
        tokens and rows of any lengths run in one pass, with no padding.
        """
        for cache, n in rows:
            cache.check_room(n)
        pos = torch.cat([torch.arange(c.length, c.length + n) for c, n in rows]).to(x.device)
        rope = self.rope(pos, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, rope, rows, i)
        for cache, n in rows:
            cache.advance(n)
        return self.norm(x)
