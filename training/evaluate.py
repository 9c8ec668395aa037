"""Held-out evaluation: WER for an ASR model, word-boundary error for an aligner."""
from __future__ import annotations

import numpy as np

from ..decoder.generate import DecodingOptions
from ..decoder.words import words_with_times
from ..encoder.audio import load_audio
from .manifest import Example
from .wer import wer


def evaluate(helper, examples: list[Example], max_new_tokens: int) -> dict:
    if hasattr(helper, "transcribe"):
        opts = DecodingOptions(max_new_tokens=max_new_tokens)
        hyps = [helper.transcribe(load_audio(ex.audio), options=opts).text for ex in examples]
        return {"wer": wer([ex.text for ex in examples], hyps)}
    return {"boundary_ms": boundary_error_ms(helper, examples)}


def boundary_error_ms(aligner, examples: list[Example]) -> float:
    """Mean absolute error of predicted word starts and ends against the manifest's times, in ms."""
    errors = []
    for ex in examples:
        words = [w["word"] for w in ex.words]
        got = words_with_times(words, aligner.class_ids(load_audio(ex.audio), words), aligner.cfg.timestamp_segment_time)
        errors += [abs(g[k] - w[k]) for g, w in zip(got, ex.words) for k in ("start", "end")]
    return 1000.0 * float(np.mean(errors))
