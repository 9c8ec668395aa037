"""Held-out evaluation: WER for an ASR model, word-boundary error for an aligner.

With the training-only CTC head, also the WER of its best-path transcripts (`ctc_wer`): what the
encoder alone has learned. Far below `wer`, the decoder has yet to read the audio; close to it, the
encoder is what limits.
"""
from __future__ import annotations

import numpy as np
import torch

from ..decoder.generate import DecodingOptions
from ..decoder.words import words_with_times
from ..encoder.audio import load_audio
from .manifest import Example
from .objective import ctc_greedy
from .wer import wer


def evaluate(helper, examples: list[Example], max_new_tokens: int, ctc_head=None) -> dict:
    if not hasattr(helper, "transcribe"):
        return {"boundary_ms": boundary_error_ms(helper, examples)}
    opts = DecodingOptions(max_new_tokens=max_new_tokens)
    audio = [load_audio(ex.audio) for ex in examples]
    refs = [ex.text for ex in examples]
    result = {"wer": wer(refs, [helper.transcribe(a, options=opts).text for a in audio])}
    if ctc_head is not None:
        result["ctc_wer"] = wer(refs, [ctc_transcript(helper, ctc_head, a) for a in audio])
    return result


@torch.inference_mode()
def ctc_transcript(helper, head, audio: np.ndarray) -> str:
    """The CTC head's best-path text for 16 kHz audio, through the ASR helper's encoder and tokenizer."""
    frames = helper.encode_audio([audio])[0]
    return helper.prompter.decode(ctc_greedy(head, frames.to(head.weight.dtype)))


def boundary_error_ms(aligner, examples: list[Example]) -> float:
    """Mean absolute error of predicted word starts and ends against the manifest's times, in ms."""
    errors = []
    for ex in examples:
        words = [w["word"] for w in ex.words]
        got = words_with_times(words, aligner.class_ids(load_audio(ex.audio), words), aligner.cfg.timestamp_segment_time)
        errors += [abs(g[k] - w[k]) for g, w in zip(got, ex.words) for k in ("start", "end")]
    return 1000.0 * float(np.mean(errors))
