"""Offline transcription with a loaded Qwen3-ASR checkpoint."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..encoder.audio import SAMPLE_RATE, check_samples, split_at_low_energy, to_mono_16k
from ..encoder.features import LogMel
from .config import ModelConfig
from .generate import DecodingOptions, greedy
from .prompt import LANGUAGES, Prompter, normalize_language, parse_output
from .thinker import Qwen3ASRNet
from .words import unspaced

MAX_PIECE_SECONDS = 1200.0  # longest audio decoded in one pass (the reference's limit)
MAX_ALIGNED_PIECE_SECONDS = 180.0  # with word timestamps: the forced aligner's limit
MIN_PIECE_SECONDS = 0.5  # pieces cut from a long file are zero-padded to this length


@dataclass
class Transcription:
    text: str
    language: str
    raw: str
    token_ids: list[int]
    words: list[dict] = field(default_factory=list)  # [{"word", "start", "end"}], seconds
    duration: float = 0.0

    def to_dict(self) -> dict:
        return {"text": self.text, "language": self.language, "raw": self.raw, "token_ids": self.token_ids,
                "words": self.words, "duration": self.duration}


@dataclass(frozen=True)
class Piece:
    wav: np.ndarray
    offset: float  # seconds into the file


class ASRModel:
    """A loaded Qwen3-ASR checkpoint: `transcribe()` audio to text (+ words with an aligner)."""

    def __init__(self, path: Path, cfg: ModelConfig, net: Qwen3ASRNet):
        self.path, self.cfg, self.net = path, cfg, net
        self.prompter = Prompter(path)
        self.mel = LogMel(cfg.audio.num_mel_bins, net.device)

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages the checkpoint supports (names accepted by `language=`)."""
        return self.cfg.support_languages or LANGUAGES

    @torch.inference_mode()
    def encode_audio(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Encoder outputs (tokens_i, hidden) for 16 kHz mono waveforms."""
        return self.net.thinker.audio_tower([self.mel(w) for w in wavs])

    @torch.inference_mode()
    def decode_batch(self, wavs: list[np.ndarray], context: str = "", language: str | None = None,
                     options: DecodingOptions = DecodingOptions()) -> list[tuple[str, list[int]]]:
        """(raw decoded string, generated ids) per waveform, decoded as one batch."""
        audio = self.encode_audio(wavs)
        rows = [self.net.embed(self.prompter.ids(context, language, a.shape[0]), a) for a in audio]
        ids = greedy(self.net, rows, options, self.cfg.eos_token_ids)
        return [(self.prompter.decode(t), t) for t in ids]

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, language: str | None = None,
                   context: str = "", aligner=None, options: DecodingOptions = DecodingOptions(),
                   batch_size: int = 4, max_piece_seconds: float | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Transcription:
        """Transcribe one recording (float/int samples, any rate, mono or (T, C)).

        Audio longer than `max_piece_seconds` (1200 s, or 180 s with an aligner) is cut at low-energy
        points; pieces are decoded `batch_size` at a time and word times are offset to file time.
        `progress(done, total)` is called after each batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        forced = normalize_language(language, self.languages) if language else None
        wav = to_mono_16k(check_samples(np.asarray(audio), "audio"), sample_rate)
        limit = max_piece_seconds or (MAX_ALIGNED_PIECE_SECONDS if aligner else MAX_PIECE_SECONDS)
        pieces = cut_pieces(wav, limit)
        results: list[tuple[str, list[int]]] = []
        for i in range(0, len(pieces), batch_size):
            results += self.decode_batch([p.wav for p in pieces[i : i + batch_size]], context, forced, options)
            if progress:
                progress(min(i + batch_size, len(pieces)), len(pieces))
        return self._merge(pieces, results, forced, aligner, len(wav) / SAMPLE_RATE)

    def _merge(self, pieces, results, forced, aligner, duration) -> Transcription:
        langs, texts, words, raws, ids = [], [], [], [], []
        for piece, (raw, toks) in zip(pieces, results):
            lang, text = parse_output(raw, forced)
            langs.append(lang)
            texts.append(text)
            raws.append(raw)
            ids += toks
            if aligner is not None and text.strip():
                words += clip_words(aligner.align(piece.wav, text, lang or "English"), piece)
        return Transcription(text=join_texts(texts), language=merge_languages(langs), raw="".join(raws),
                             token_ids=ids, words=words, duration=duration)


def cut_pieces(wav: np.ndarray, max_seconds: float) -> list[Piece]:
    """One piece for audio up to max_seconds; else low-energy cuts, short pieces zero-padded."""
    if len(wav) <= max_seconds * SAMPLE_RATE:
        return [Piece(wav, 0.0)]
    min_len = int(MIN_PIECE_SECONDS * SAMPLE_RATE)
    out = []
    for s, e in split_at_low_energy(wav, max_seconds):
        w = wav[s:e]
        out.append(Piece(np.pad(w, (0, max(0, min_len - len(w)))), s / SAMPLE_RATE))
    return out


def clip_words(words: list[dict], piece: Piece) -> list[dict]:
    """Word times clipped to the piece's audio, then moved to file time."""
    end = len(piece.wav) / SAMPLE_RATE

    def at(t: float) -> float:
        return round(min(max(t, 0.0), end) + piece.offset, 3)

    return [{**w, "start": at(w["start"]), "end": at(w["end"])} for w in words]


def join_texts(texts: list[str]) -> str:
    """Join piece transcripts: a space between words of spaced scripts, none around CJK."""
    out = ""
    for t in (t for t in texts if t):
        sep = "" if not out or unspaced(out[-1]) or unspaced(t[0]) else " "
        out += sep + t
    return out


def merge_languages(langs: list[str]) -> str:
    """Piece languages in order, consecutive repeats and blanks dropped: 'Chinese,English'."""
    out: list[str] = []
    for lang in langs:
        if lang and (not out or out[-1] != lang):
            out.append(lang)
    return ",".join(out)
