"""Driving the reference implementation (`qwen-asr` 0.0.6, transformers backend) as a parity oracle.

The reference's transformers backend never passes its block-diagonal attention mask to the audio
encoder layers (`Qwen3ASRAudioEncoder.forward` builds `cu_seqlens` but calls each layer without
`attention_mask`), so with SDPA or eager attention on CPU every encoder token attends to the whole
utterance. Its flash-attention and vLLM paths use the `n_window_infer` windows, which is the model's
defined behaviour and what asrstream implements. `windowed_reference()` gives the reference layers
the mask its own `cu_seqlens` describe, so comparisons are like for like;
`test_encoder.py::test_unpatched_reference_attends_across_windows` pins the difference down.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

import numpy as np
import torch


def block_mask(cu_seqlens: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    mask = torch.full((1, 1, n, n), torch.finfo(dtype).min, dtype=dtype)
    bounds = cu_seqlens.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        mask[..., a:b, a:b] = 0
    return mask


@contextlib.contextmanager
def windowed_reference():
    """Within this block the reference audio encoder attends inside its windows only."""
    from qwen_asr.core.transformers_backend import modeling_qwen3_asr as M

    orig = M.Qwen3ASRAudioEncoderLayer.forward

    def forward(self, hidden_states, cu_seqlens, attention_mask=None, **kw):
        mask = block_mask(cu_seqlens, hidden_states.shape[0], hidden_states.dtype)
        return orig(self, hidden_states, cu_seqlens, attention_mask=mask, **kw)

    M.Qwen3ASRAudioEncoderLayer.forward = forward
    try:
        yield
    finally:
        M.Qwen3ASRAudioEncoderLayer.forward = orig


@lru_cache(maxsize=8)
def reference_asr(path: str, max_new_tokens: int = 64):
    from qwen_asr import Qwen3ASRModel

    return Qwen3ASRModel.from_pretrained(path, dtype=torch.float32, device_map="cpu",
                                         max_new_tokens=max_new_tokens, max_inference_batch_size=1)


@lru_cache(maxsize=4)
def reference_aligner(path: str):
    from qwen_asr import Qwen3ForcedAligner

    return Qwen3ForcedAligner.from_pretrained(path, dtype=torch.float32, device_map="cpu")


def reference_generate(ref, wav: np.ndarray, context: str = "", language: str | None = None,
                       max_new_tokens: int = 64) -> tuple[list[int], str, torch.Tensor]:
    """(generated ids, raw decoded string, prefill logits) from the reference, windowed encoder."""
    prompt = ref._build_text_prompt(context=context, force_language=language)
    inputs = ref.processor(text=[prompt], audio=[wav], return_tensors="pt", padding=True)
    with windowed_reference(), torch.no_grad():
        logits = ref.model.thinker(**inputs).logits[0]
        out = ref.model.generate(**inputs, max_new_tokens=max_new_tokens)
    ids = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    raw = ref.processor.batch_decode([ids], skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]
    eos = {151645, 151643}
    while ids and ids[-1] in eos:
        ids.pop()
    return ids, raw, logits


def speechlike(seconds: float, seed: int = 0, sr: int = 16000) -> np.ndarray:
    """Deterministic audio with speech-like structure: voiced harmonics, noise bursts, pauses."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = (np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)) > -0.3).astype(np.float64)
    x = 0.2 * voiced * envelope + 0.03 * rng.standard_normal(n)
    return x.astype(np.float32)


TINY_AUDIO = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, output_dim=64,
                  n_window=50, n_window_infer=800, num_mel_bins=128, downsample_hidden_size=8,
                  max_source_positions=1500)
TINY_TEXT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                 intermediate_size=128, vocab_size=1000, rope_theta=1e6, tie_word_embeddings=False,
                 rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3], "interleaved": True})


def reference_and_ours(tmp_dir, audio: dict | None = None, text: dict | None = None, seed: int = 0):
    """A random reference model built from its own config classes, saved, and loaded by asrstream."""
    from pathlib import Path

    from qwen_asr.core.transformers_backend.configuration_qwen3_asr import Qwen3ASRConfig
    from qwen_asr.core.transformers_backend.modeling_qwen3_asr import Qwen3ASRForConditionalGeneration

    from asrstream.decoder.loading import load_net, read_config

    torch.manual_seed(seed)
    cfg = Qwen3ASRConfig(thinker_config=dict(audio_config={**TINY_AUDIO, **(audio or {})},
                                             text_config={**TINY_TEXT, **(text or {})},
                                             audio_token_id=5, audio_start_token_id=6))
    ref = Qwen3ASRForConditionalGeneration(cfg).eval()
    ref.save_pretrained(tmp_dir)
    path = Path(tmp_dir)
    return ref, load_net(path, read_config(path), torch.float32, torch.device("cpu"))
