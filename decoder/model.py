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
    # x: (B, H, T, hd); cos/sin: (B, 1, T, hd)
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

    def forward(self, x, rope, mask, cache: KVCache, layer: int) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, T, self.nq, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(B, T, self.nkv, self.hd)).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        K, V = cache.write(layer, k, v)  # (B, kv, S, hd)
        gqa = self.nq != self.nkv
        if isinstance(mask, str):
            o = F.scaled_dot_product_attention(q, K, V, is_causal=True, enable_gqa=gqa)
        else:
            o = F.scaled_dot_product_attention(q, K, V, attn_mask=mask, enable_gqa=gqa)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, -1))


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

    def forward(self, x, rope, mask, cache: KVCache, layer: int) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


def attention_mask(lengths: list[int], pos: torch.Tensor) -> torch.Tensor | str | None:
    """What each query may attend to: None (everything cached), "causal", or a bool mask.

    Rows are right-padded, so when every row starts at the same length a plain causal mask is right
    for all of them; only rows of different lengths need a per-row mask (B, 1, T, S).
    """
    T = pos.shape[1]
    if len(set(lengths)) == 1:
        if T == 1:
            return None
        if lengths[0] == 0:
            return "causal"
        pos = pos[:1]
    keys = torch.arange(max(lengths) + T, device=pos.device)
    return (keys[None, None, :] <= pos[:, :, None]).unsqueeze(1)


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
        """cos, sin (B, 1, T, hd) for positions pos (B, T)."""
        need = int(pos.max()) + 1
        if self._rope is None or self._rope[0].shape[0] < need or self._rope[0].device != pos.device:
            self._rope = rope_table(self.cfg, max(need, 4096), pos.device)
        cos, sin = self._rope
        return cos[pos].unsqueeze(1).to(dtype), sin[pos].unsqueeze(1).to(dtype)

    def forward(self, x: torch.Tensor, counts: list[int], cache: KVCache) -> torch.Tensor:
        """x: (B, T, D) embeddings, row b has counts[b] real tokens (right-padded) -> (B, T, D)."""
        B, T, _ = x.shape
        cache.check_room(T)
        start = torch.tensor(cache.lengths, device=x.device)
        pos = start[:, None] + torch.arange(T, device=x.device)[None, :]  # (B, T)
        rope = self.rope(pos, x.dtype)
        mask = attention_mask(cache.lengths, pos)
        for i, layer in enumerate(self.layers):
            x = layer(x, rope, mask, cache, i)
        cache.advance(counts)
        return self.norm(x)
