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

Weights start from a training init (`training_init`), not the test checkpoints' one (tuned so random
models emit varied tokens): matrices N(0, 1/fan_in), the residual branches' output projections
scaled down by sqrt(2 x layers) so the residual stream starts near the identity, embeddings
N(0, 0.02^2), norm scales 1, biases 0. The first loss is then about ln(vocabulary) rather than ~20.
"""
from __future__ import annotations

import json
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
    layers = max(config["thinker_config"]["audio_config"]["encoder_layers"],
                 config["thinker_config"]["text_config"]["num_hidden_layers"])
    write_weights(out, parameter_shapes(config), seed, "float32", None, lambda n, s: training_init(n, s, layers))
    return out


TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json")


def warm_start(out: str | Path, source: str | Path) -> int:
    """Start the fresh checkpoint `out` from a trained one of the same design (e.g. an aligner from
    the ASR model: encoder, decoder and embeddings carry over, the timestamp head stays fresh): its
    tokenizer files and every tensor whose name and shape match are copied. Returns tensors copied."""
    import shutil

    from safetensors.torch import load_file, save_file

    out, source = Path(out), Path(source)
    ours, theirs = (json.loads((p / "config.json").read_text())["thinker_config"]["text_config"] for p in (out, source))
    if ours["vocab_size"] != theirs["vocab_size"]:
        raise ValueError(f"vocabularies differ ({ours['vocab_size']} vs {theirs['vocab_size']}): same bpe_size needed")
    for name in TOKENIZER_FILES:
        shutil.copy2(source / name, out / name)
    weights, trained = load_file(str(out / "model.safetensors")), load_file(str(source / "model.safetensors"))
    same = [k for k, v in weights.items() if k in trained and trained[k].shape == v.shape]
    weights.update({k: trained[k].to(weights[k].dtype) for k in same})
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return len(same)


RESIDUAL_OUT = ("o_proj.weight", "down_proj.weight", "out_proj.weight", "fc2.weight")


def training_init(name: str, shape: tuple[int, ...], layers: int) -> tuple[float, float]:
    """(mean, std) of one tensor's normal draw for training from scratch."""
    if name.endswith("embed_tokens.weight"):
        return 0.0, 0.02
    if len(shape) == 1:
        return (1.0, 0.0) if name.endswith(".weight") else (0.0, 0.0)
    fan_in = 1
    for n in shape[1:]:
        fan_in *= n
    scale = (2 * layers) ** -0.5 if name.endswith(RESIDUAL_OUT) else 1.0
    return 0.0, scale / fan_in ** 0.5
