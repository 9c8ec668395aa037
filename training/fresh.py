"""A fresh checkpoint of our own design, with a compact vocabulary, ready to train from scratch.

Tokenizer: a byte-level BPE (Qwen2's pre-tokenizer split and byte alphabet, so the released
tokenizer classes load it) trained on the given text plus the `language X<asr_text>` headers, then
Qwen's special tokens right after it, in this order: <|endoftext|>, <|im_start|>, <|im_end|>,
<|audio_start|>, <|audio_end|>, <|audio_pad|>, <asr_text> (added, not special: it survives
decoding), <timestamp>. config.json's token ids and generation_config.json's eos ids name them; the
chat template and feature extractor are the released ones. The vocabulary ends with the last
special token, so every id the model can emit decodes to something.

A compact vocabulary keeps the embedding small (the released 151,936 rows are 39 MB at hidden 128
in bfloat16). The reference package's transformers backend stops generating only at the released
eos ids (151645, 151643), so it decodes a compact model to `max_new_tokens`; training targets
therefore end with <|im_end|> followed by <|endoftext|> (objective.py), teaching the model to emit
only special tokens after the answer, which decoding skips.
"""
from __future__ import annotations

from pathlib import Path

from ..testmodel import TRANSFORMERS_VERSION, build_config, parameter_shapes, write_weights
from ..testtokenizer import LANGUAGES, train_bpe, write_files, write_json

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>",
            "<asr_text>", "<timestamp>")


def make_fresh_model(out: str | Path, lines: list[str], kind: str = "asr", bpe_size: int = 1024,
                     audio: dict | None = None, text: dict | None = None, seed: int = 0) -> Path:
    """Write a random-init checkpoint with a BPE of `bpe_size` tokens trained on `lines`.
    audio/text: dimension overrides (the `tiny` preset's fields, e.g. {"d_model": 256})."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    headers = [f"language {x}<asr_text>" for x in LANGUAGES]
    vocab, merges = train_bpe(list(lines) + headers, bpe_size)
    first = len(vocab)
    ids = {name: first + i for i, name in enumerate(SPECIALS)}
    added = [(i, name, name != "<asr_text>") for name, i in ids.items()]
    token_ids = {"audio_token_id": ids["<|audio_pad|>"], "audio_start_token_id": ids["<|audio_start|>"],
                 "audio_end_token_id": ids["<|audio_end|>"], "timestamp_token_id": ids["<timestamp>"]}
    text = {**(text or {}), "vocab_size": first + len(SPECIALS)}
    config = build_config(kind, "tiny", {"audio": audio or {}, "text": text}, token_ids=token_ids)
    write_json(out / "config.json", config)
    write_json(out / "generation_config.json", {"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
                                           "pad_token_id": ids["<|endoftext|>"],
                                           "transformers_version": TRANSFORMERS_VERSION})
    write_files(out, vocab, merges, added)
    write_weights(out, parameter_shapes(config), seed, "float32", None)
    return out
