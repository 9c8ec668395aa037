"""Word timestamps with a Qwen3-ForcedAligner checkpoint.

The transcript is split into word units (see words.py), each followed by two `<timestamp>` tokens;
one forward pass over audio + text classifies every `<timestamp>` position into one of
`classify_num` time steps of `timestamp_segment_time` ms. The start/end pairs are repaired to be
monotonic, then converted to seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..encoder.audio import SAMPLE_RATE, check_samples, to_mono_16k
from ..encoder.features import LogMel
from .config import ModelConfig
from .prompt import Prompter
from .thinker import Qwen3ASRNet
from .words import aligner_text, split_words, words_with_times


class ForcedAligner:
    def __init__(self, path: Path, cfg: ModelConfig, net: Qwen3ASRNet):
        if cfg.timestamp_token_id is None or not cfg.timestamp_segment_time or not cfg.classify_num:
            raise RuntimeError(f"{path / 'config.json'} lacks timestamp_token_id, timestamp_segment_time or "
                               "classify_num; is it a Qwen3-ForcedAligner checkpoint?")
        self.path, self.cfg, self.net = path, cfg, net
        self.prompter = Prompter(path)
        self.mel = LogMel(cfg.audio.num_mel_bins, net.device)

    @torch.inference_mode()
    def class_ids(self, wav: np.ndarray, words: list[str]) -> list[int]:
        """The predicted time class at each `<timestamp>` position (2 per word)."""
        audio = self.net.thinker.audio_tower([self.mel(wav)])[0]
        ids = self.prompter.expand_audio(self.prompter.encode(aligner_text(words)), audio.shape[0])
        x = self.net.embed(ids, audio)
        hidden = self.net.forward_rows([x], [self.net.new_cache(len(ids))])[0]
        slots = torch.tensor(ids, device=hidden.device) == self.cfg.timestamp_token_id
        return self.net.logits(hidden[slots]).argmax(-1).tolist()

    def align(self, audio: np.ndarray, text: str, language: str, sample_rate: int = SAMPLE_RATE) -> list[dict]:
        """[{"word", "start", "end"}] in seconds from the start of `audio` for `text` spoken in it."""
        wav = to_mono_16k(check_samples(np.asarray(audio), "audio"), sample_rate)
        words = split_words(text, language)
        if not words:
            return []
        return words_with_times(words, self.class_ids(wav, words), self.cfg.timestamp_segment_time)
