"""The whole network of a checkpoint: audio tower, decoder and head, under `thinker.*` names."""
from __future__ import annotations

import torch
from torch import nn

from ..encoder.model import AudioEncoder
from .config import ModelConfig
from .kvcache import KVCache
from .model import Decoder


class Thinker(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        t = cfg.text
        self.audio_tower = AudioEncoder(cfg.audio)
        self.model = Decoder(t)
        n_out = cfg.classify_num if cfg.is_aligner else t.vocab_size
        self.lm_head = nn.Linear(t.hidden_size, n_out, bias=False)


class Qwen3ASRNet(nn.Module):
    """Holds `thinker`; the checkpoint's parameter names are this module's names."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.thinker = Thinker(cfg)

    @property
    def device(self) -> torch.device:
        return self.thinker.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.thinker.model.embed_tokens.weight.dtype

    def new_cache(self, max_len: int) -> KVCache:
        """An empty cache for one row of up to max_len tokens."""
        t = self.cfg.text
        return KVCache(t.num_hidden_layers, t.num_key_value_heads, t.head_dim, max_len, self.dtype, self.device)

    def embed(self, ids: list[int], audio: torch.Tensor) -> torch.Tensor:
        """Token embeddings of `ids` with the audio placeholders replaced by `audio` rows: (T, D)."""
        t = torch.tensor(ids, device=self.device)
        x = self.thinker.model.embed_tokens(t)
        slots = (t == self.cfg.audio_token_id).nonzero().squeeze(1)
        if slots.numel() != audio.shape[0]:
            raise ValueError(f"prompt has {slots.numel()} audio placeholders for {audio.shape[0]} audio tokens")
        x[slots] = audio.to(x.dtype)
        return x

    def forward_rows(self, rows: list[torch.Tensor], caches: list[KVCache]) -> list[torch.Tensor]:
        """Run the decoder over rows of embeddings (T_i, D), each continuing its cache -> [(T_i, D)]."""
        counts = [r.shape[0] for r in rows]
        hidden = self.thinker.model(torch.cat(rows), list(zip(caches, counts)))
        return list(hidden.split(counts))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.thinker.lm_head(hidden)
