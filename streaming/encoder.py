"""Incremental AuT encoding of one segment; many segments' work runs as one batch.

Policy. Conv chunks (1 s, 13 tokens) are embedded once, when all of their mel frames are final.
Attention windows (`window_tokens`, 8 s by default) of complete chunks are *closed*:
- `exact` mode encodes a closed window once and keeps its output; the *open* window (the rest,
  including a partial last chunk, zero-padded as offline) is re-encoded at every step, so each
  step's output equals the offline encoder's on the same features.
- `cached` mode encodes each complete chunk once: its tokens attend to the cached keys/values of the
  earlier chunks of their window, and outputs are frozen (cheaper, approximate). A partial last
  chunk waits for the next step, except in a segment's final pass.
A final pass in `offline` style recomputes the segment's features exactly, re-embeds any chunk whose
features moved (a louder frame raised the normalisation floor) and encodes every window that is not
a still-valid closed exact window, so finals equal the offline encoder's output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..encoder.model import AudioEncoder, WindowCache
from .features import IncrementalMel

STEP, CONTINUE, OFFLINE = "step", "continue", "offline"  # what a pass is for


@dataclass
class EncodedAudio:
    tokens: torch.Tensor  # (n, output_dim): the encoder output for the pass's audio
    fixed: int  # leading tokens no later pass of the segment will change
    unchanged: int  # leading tokens equal to what earlier passes produced (their decoder KV stays valid)


class SegmentEncoder:
    def __init__(self, tower: AudioEncoder, mel: IncrementalMel, window_tokens: int, mode: str):
        self.tower, self.mel, self.W, self.mode = tower, mel, window_tokens, mode
        self.F = tower.cfg.chunk_frames
        self.feats: list[torch.Tensor] = []  # per complete chunk: the features it was embedded from
        self.embs: list[torch.Tensor] = []  # per complete chunk: (tokens_per_chunk, d)
        self.closed: list[torch.Tensor] = []  # exact: outputs of closed windows
        self.frozen: list[torch.Tensor] = []  # cached: outputs of encoded chunks
        self.cache: WindowCache | None = None
        self.tokens_encoded = 0  # work counters
        self.chunks_embedded = 0
        self._peak = 0.0

    def truncate(self, samples: int) -> None:
        """Keep only the segment's first `samples` (a final that ends before audio its steps took):
        chunks and closed windows past the new end are dropped, as if that audio never came."""
        self.mel.truncate(samples)
        complete = self.mel.final_frames // self.F
        self.feats, self.embs = self.feats[:complete], self.embs[:complete]
        self.closed = self.closed[: complete * self.tower.cfg.tokens_per_chunk // self.W]

    # -- phase 1: conv chunks -------------------------------------------------------------------
    def chunks_to_embed(self, kind: str) -> list[tuple[int, torch.Tensor]]:
        """(index, features) of complete chunks to embed now; in an offline pass also moved ones."""
        self._peak = self.mel.peak()
        complete = self.mel.final_frames // self.F
        todo = [(c, self._chunk_feats(c)) for c in range(len(self.embs), complete)]
        if kind == OFFLINE:
            moved = [(c, self._chunk_feats(c)) for c in range(len(self.embs))]
            todo = [(c, f) for c, f in moved if not torch.equal(f, self.feats[c])] + todo
        return todo

    def _chunk_feats(self, c: int) -> torch.Tensor:
        return self.mel.features(c * self.F, (c + 1) * self.F, self._peak)

    def set_chunk(self, c: int, feats: torch.Tensor, emb: torch.Tensor) -> None:
        self.chunks_embedded += 1
        if c < len(self.embs):  # an offline pass re-embedded a moved chunk: later windows are stale
            self.feats[c], self.embs[c] = feats, emb
            self.closed = self.closed[: c * emb.shape[0] // self.W]
        else:
            self.feats.append(feats)
            self.embs.append(emb)

    # -- phase 2: attention windows -------------------------------------------------------------
    def windows(self, kind: str) -> list[tuple[torch.Tensor, WindowCache | None]]:
        """Windows to encode in this pass, with the window cache each continues (cached mode)."""
        if self.mode == "cached" and kind != OFFLINE:
            return self._cached_windows(kind)
        tokens = self._all_tokens(tail=True)
        start = len(self.closed) * self.W if self.mode == "exact" else 0
        if self.mode == "cached":  # offline pass over a cached-mode segment: everything, exactly
            self.closed = []
        return [(w, None) for w in tokens[start:].split(self.W)] if tokens.shape[0] > start else []

    def _all_tokens(self, tail: bool) -> torch.Tensor:
        parts = list(self.embs)
        rest = self.mel.frames - len(self.embs) * self.F
        if tail and rest > 0:
            feats = self.mel.features(len(self.embs) * self.F, self.mel.frames, self._peak)
            parts.append(self.tower.embed_tail(feats, alone=not self.embs))
        return torch.cat(parts) if parts else torch.zeros(0, self.tower.cfg.d_model, device=self.tower.positions.device)

    def _cached_windows(self, kind: str) -> list[tuple[torch.Tensor, WindowCache | None]]:
        """New tokens, split where a window fills; each piece continues its window's cache."""
        done = sum(f.shape[0] for f in self.frozen)
        new = self._all_tokens(tail=kind == CONTINUE)[done:]
        cache, out = self.cache, []
        room = self.W - cache.length if cache is not None else 0
        while new.shape[0]:
            if room == 0:
                cache, room = WindowCache(len(self.tower.layers)), self.W
            out.append((new[:room], cache))
            new, room = new[room:], room - min(room, new.shape[0])
        self.cache = cache
        return out

    # -- phase 3: outputs -----------------------------------------------------------------------
    def take(self, kind: str, outs: list[torch.Tensor]) -> EncodedAudio:
        self.tokens_encoded += sum(o.shape[0] for o in outs)
        if self.mode == "cached" and kind != OFFLINE:
            self.frozen += outs
            n = sum(o.shape[0] for o in self.frozen)
            return EncodedAudio(torch.cat(self.frozen) if self.frozen else outs_empty(self.tower), n, n)
        unchanged = len(self.closed) * self.W if self.mode == "exact" else 0
        n_complete = len(self.embs) * self.tower.cfg.tokens_per_chunk
        for o in outs:  # keep the windows that are now closed
            if o.shape[0] == self.W and (len(self.closed) + 1) * self.W <= n_complete:
                self.closed.append(o)
            else:
                break
        parts = self.closed[: unchanged // self.W] + list(outs)
        whole = torch.cat(parts) if parts else outs_empty(self.tower)
        return EncodedAudio(whole, len(self.closed) * self.W, unchanged)


def outs_empty(tower: AudioEncoder) -> torch.Tensor:
    return torch.zeros(0, tower.cfg.output_dim, device=tower.positions.device)


@torch.inference_mode()
def encode(tower: AudioEncoder, jobs: list[tuple[SegmentEncoder, str]]) -> list[EncodedAudio]:
    """Run one pass for each (segment, kind): chunk embeddings, then windows, batched over segments."""
    todo = [(e, c, f) for e, kind in jobs for c, f in e.chunks_to_embed(kind)]
    if todo:
        embs = tower.embed_chunks(torch.stack([f for _, _, f in todo]))
        for (e, c, f), emb in zip(todo, embs):
            e.set_chunk(c, f, emb)
    plans = [e.windows(kind) for e, kind in jobs]
    flat = [w for p in plans for w in p]
    outs: dict[int, torch.Tensor] = {}
    for cached in (False, True):
        idx = [i for i, (_, c) in enumerate(flat) if (c is not None) == cached]
        if idx:
            res = tower.encode_windows([flat[i][0] for i in idx], [flat[i][1] for i in idx] if cached else None)
            outs.update(zip(idx, res))
    results, i = [], 0
    for (e, kind), plan in zip(jobs, plans):
        results.append(e.take(kind, [outs[j] for j in range(i, i + len(plan))]))
        i += len(plan)
    return results
