"""The AuT audio encoder of Qwen3-ASR.

Mel features are cut into conv chunks of `2 * n_window` frames (1 s). Each chunk goes through a
3-layer stride-2 Conv2d stem and gets sinusoidal positions that restart at 0 in every chunk, so a
chunk's embeddings depend on that chunk alone. The transformer layers attend only inside windows
of `window_tokens` tokens (8 s for the released models); a window's output depends only on its own
chunks. Both facts are what make incremental streaming exact: closed chunks and closed windows never
need recomputing.

The tail chunk of an utterance with more than one chunk is zero-padded to a full chunk before the
conv stem and its extra outputs dropped, as the reference does; an utterance shorter than one chunk
is not padded. (Padding changes the last valid outputs: GELU(bias) of the padded region reaches
them through the second and third convs.)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig, conv_out_len


try:  # optional: `pip install 'asrstream[gpu]'`; used on CUDA in half precision only
    from flash_attn import flash_attn_varlen_func
except ImportError:  # pragma: no cover - depends on the install
    flash_attn_varlen_func = None


def window_attention(q, k, v, lens: torch.Tensor | None) -> torch.Tensor:
    """Attention inside each window: q (W, H, Lq, hd), k, v (W, H, Lk, hd); lens (W,) real key lengths
    or None (all full). Padded query rows produce values that callers drop.

    On CUDA with flash-attn installed, half precision and queries = keys, the windows' real tokens are
    packed and run through flash-attn's varlen kernel (no padding computed); otherwise SDPA with a key mask.
    """
    same = q.shape[2] == k.shape[2]
    if flash_attn_varlen_func is not None and same and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        W, H, L, hd = q.shape
        n = lens if lens is not None else torch.full((W,), L, device=q.device)
        keep = (torch.arange(L, device=q.device)[None, :] < n[:, None]).reshape(-1)
        pack = [t.transpose(1, 2).reshape(W * L, H, hd)[keep] for t in (q, k, v)]
        cu = F.pad(n.cumsum(0), (1, 0)).to(torch.int32)
        o = flash_attn_varlen_func(*pack, cu, cu, L, L)
        out = q.new_zeros(W * L, H, hd)
        out[keep] = o
        return out.view(W, L, H, hd).transpose(1, 2)
    mask = None
    if lens is not None:
        mask = (torch.arange(k.shape[2], device=q.device)[None, :] < lens[:, None])[:, None, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class WindowCache:
    """Per-layer keys/values of the tokens already encoded in one open attention window.

    With it, new tokens of a window attend to the window's earlier tokens without recomputing them
    (the streaming engine's `cached` mode); earlier tokens never see later ones, so this is an
    approximation of the offline encoder, whose windows attend both ways.
    """

    def __init__(self, n_layers: int):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers
        self.length = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this layer's new k, v (H, n, hd); return all of the window's (H, length + n, hd)."""
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], 1), torch.cat([self.v[layer], v], 1)
        self.k[layer], self.v[layer] = k, v
        return k, v


def _extend_caches(caches: list[WindowCache], layer: int, k, v, lens: list[int]):
    """Prepend each window's cached keys/values: -> padded k, v (W, H, Lk, hd) and key lengths."""
    ks, vs = zip(*(c.extend(layer, k[i, :, :n], v[i, :, :n]) for i, (c, n) in enumerate(zip(caches, lens))))
    Lk = max(t.shape[1] for t in ks)
    k, v = (torch.stack([F.pad(t, (0, 0, 0, Lk - t.shape[1])) for t in ts]) for ts in (ks, vs))
    return k, v, torch.tensor([t.shape[1] for t in ks], device=k.device)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """(length, channels) sin/cos position table, sin in the first half (always built on the CPU)."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2, device="cpu").float())
    t = torch.arange(length, device="cpu")[:, None].float() * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.encoder_attention_heads
        self.self_attn = nn.Module()
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self.self_attn, name, nn.Linear(d, d))
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, cfg.encoder_ffn_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, lens: list[int], caches: list[WindowCache] | None, layer: int) -> torch.Tensor:
        # x: (W, L, d) windows, right-padded to L; lens: real lengths; caches: earlier tokens per window
        W, L, d = x.shape
        a = self.self_attn
        h = self.self_attn_layer_norm(x)
        q, k, v = (p(h).view(W, L, self.n_head, -1).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj))
        if caches is not None:
            k, v, n = _extend_caches(caches, layer, k, v, lens)
        else:
            n = torch.tensor(lens, device=x.device) if min(lens) < L else None
        o = window_attention(q, k, v, n)
        x = x + a.out_proj(o.transpose(1, 2).reshape(W, L, d))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class AudioEncoder(nn.Module):
    """Parameter names follow the checkpoint's `thinker.audio_tower.*`."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.downsample_hidden_size
        self.conv2d1 = nn.Conv2d(1, c, 3, 2, padding=1)
        self.conv2d2 = nn.Conv2d(c, c, 3, 2, padding=1)
        self.conv2d3 = nn.Conv2d(c, c, 3, 2, padding=1)
        self.conv_out = nn.Linear(c * cfg.freq_bins_after_conv, cfg.d_model, bias=False)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.ln_post = nn.LayerNorm(cfg.d_model)
        self.proj1 = nn.Linear(cfg.d_model, cfg.d_model)
        self.proj2 = nn.Linear(cfg.d_model, cfg.output_dim)
        self.register_buffer("positions", sinusoids(cfg.tokens_per_chunk, cfg.d_model), persistent=False)

    def init_buffers(self, device: torch.device | str) -> None:
        """Recompute non-persistent buffers (needed after building on the meta device)."""
        self.positions = sinusoids(self.cfg.tokens_per_chunk, self.cfg.d_model).to(device)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_out.weight.dtype

    def conv_in_float32(self) -> None:
        """Run the conv stem in float32 (for CPUs without fast half-precision convolutions)."""
        for conv in (self.conv2d1, self.conv2d2, self.conv2d3):
            conv.float()

    def split_chunks(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """(n_mels, T) -> conv chunks of `chunk_frames` frames (the last may be shorter)."""
        return list(mel.split(self.cfg.chunk_frames, dim=1))

    def embed_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        """Conv stem + positions: (N, n_mels, F) equal-length chunks -> (N, conv_out_len(F), d)."""
        x = chunks.to(self.conv2d1.weight.dtype).unsqueeze(1)
        x = F.gelu(self.conv2d1(x))
        x = F.gelu(self.conv2d2(x))
        x = F.gelu(self.conv2d3(x))  # (N, c, f, t)
        N, c, f, t = x.shape
        x = self.conv_out(x.permute(0, 3, 1, 2).reshape(N, t, c * f).to(self.dtype))
        return x + self.positions[:t].to(x.dtype)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """(n_mels, T) mel of one utterance -> (tokens, d) pre-transformer embeddings."""
        chunks = self.split_chunks(mel)
        n_tail = chunks[-1].shape[1]
        if len(chunks) == 1:
            return self.embed_tail(chunks[0], alone=True)
        chunks[-1] = F.pad(chunks[-1], (0, self.cfg.chunk_frames - n_tail))
        x = self.embed_chunks(torch.stack(chunks))
        x = x.reshape(-1, x.shape[-1])
        return x[: x.shape[0] - self.cfg.tokens_per_chunk + conv_out_len(n_tail)]

    def embed_tail(self, chunk: torch.Tensor, alone: bool) -> torch.Tensor:
        """Embeddings of an utterance's last chunk (n_mels, F <= chunk_frames): zero-padded to a full
        chunk unless it is the utterance's only chunk (`alone`); only its real tokens are returned."""
        n = chunk.shape[1]
        if not alone:
            chunk = F.pad(chunk, (0, self.cfg.chunk_frames - n))
        return self.embed_chunks(chunk[None])[0, : conv_out_len(n)]

    def encode_windows(self, windows: list[torch.Tensor],
                       caches: list[WindowCache] | None = None) -> list[torch.Tensor]:
        """Run the transformer over independent attention windows: [(t_i, d)] -> [(t_i, output_dim)].

        Windows of any lengths (each at most `window_tokens`) from any utterances run as one batch.
        With `caches`, window i's tokens continue caches[i] (attending to its earlier tokens), and
        are appended to it.
        """
        lens = [w.shape[0] for w in windows]
        L = max(lens)
        x = torch.stack([F.pad(w, (0, 0, 0, L - w.shape[0])) for w in windows])
        for i, layer in enumerate(self.layers):
            x = layer(x, lens, caches, i)
        for c, n in zip(caches or [], lens):
            c.length += n
        x = self.proj2(F.gelu(self.proj1(self.ln_post(x))))
        return [x[i, :n] for i, n in enumerate(lens)]

    def forward(self, mels: list[torch.Tensor], window_tokens: int | None = None) -> list[torch.Tensor]:
        """Encode whole utterances: [(n_mels, T_i)] -> [(tokens_i, output_dim)].

        `window_tokens` overrides the checkpoint's attention window (a multiple of a chunk's tokens).
        """
        embs = [self.embed(m) for m in mels]
        W = window_tokens or self.cfg.window_tokens
        windows, counts = [], []
        for e in embs:
            parts = e.split(W)
            windows.extend(parts)
            counts.append(len(parts))
        outs = self.encode_windows(windows) if windows else []
        res, i = [], 0
        for n in counts:
            res.append(torch.cat(outs[i : i + n]))
            i += n
        return res
