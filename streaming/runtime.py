"""What the streams of an engine need of the loaded model: encoder, features, prompts, caches, aligner."""
from __future__ import annotations

import numpy as np

from .options import StreamOptions
from .stream import revision


class Runtime:
    """What streams need of the model: encoder, features, prompts, caches, aligner."""

    def __init__(self, model, aligner=None):
        self.model, self.aligner = model, aligner
        self.tower = model.net.thinker.audio_tower
        self.mel = model.mel
        self.revisions = {"finals": 0, "revised": 0, "amount": 0.0}

    def window_tokens(self, opts: StreamOptions) -> int:
        cfg = self.tower.cfg
        return cfg.tokens_per_chunk * opts.window_seconds if opts.window_seconds else cfg.window_tokens

    def prompt(self, context: str, language: str | None) -> tuple[list[int], list[int]]:
        """(head ids, tail ids): the prompt before and after the audio placeholder."""
        p = self.model.prompter
        ids = p.template_ids(context, language)
        i = ids.index(p.audio_id)
        return ids[:i], ids[i + 1 :]

    def cache_room(self, opts: StreamOptions, context: str) -> int:
        """Tokens a session's row may hold: prompt, a longest segment's audio, prefix, new tokens, draft."""
        cfg = self.tower.cfg
        audio = cfg.tokens_for_frames(int((opts.max_segment_seconds + opts.chunk_seconds + 1) * 100))
        head, tail = self.prompt(context, opts.language)
        return len(head) + len(tail) + audio + 2 * opts.max_new_tokens + 64

    def new_cache(self, opts: StreamOptions, context: str):
        return self.model.net.new_cache(self.cache_room(opts, context))

    def decode(self, ids: list[int]) -> str:
        return self.model.prompter.decode(ids)

    def align(self, wav: np.ndarray, text: str, language: str) -> list[dict]:
        return self.aligner.align(wav, text, language or "English") if self.aligner is not None else []

    def count_revision(self, partial: str | None, final: str) -> None:
        r = self.revisions
        r["finals"] += 1
        if partial is not None and partial != final:
            r["revised"] += 1
        r["amount"] += revision(partial, final)
