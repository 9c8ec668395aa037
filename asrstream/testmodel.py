"""Random-weight Qwen3-ASR / Qwen3-ForcedAligner checkpoints in the released Hugging Face layout.

Policy: a checkpoint made here is interchangeable with a released one for every tool that reads the
files (config.json, safetensors names and shapes, tokenizer ids, chat template, feature extractor);
only the weight values are random. Sizes "0.6b" and "1.7b" carry the released dimensions; "tiny"
keeps them small for tests. Weights are a pure function of (seed, parameter name), so the same
seed gives byte-identical tensors whatever the sharding.

The init is chosen so that greedy decoding with the reference wanders instead of repeating one
token (see `_init_std`); the tokenizer lives in `testtokenizer.py`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from .testtokenizer import LANGUAGES, SPECIAL_IDS, write_json, write_tokenizer_files

KINDS = ("asr", "aligner")
SIZES = ("tiny", "0.6b", "1.7b")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ALIGNER_LANGUAGES = ["Chinese", "Cantonese", "English", "German", "Spanish", "French", "Italian",
                     "Portuguese", "Russian", "Korean", "Japanese"]
TRANSFORMERS_VERSION = "4.57.6"

AUDIO_BASE = dict(num_mel_bins=128, n_window=50, n_window_infer=800, conv_chunksize=500,
                  downsample_hidden_size=480, max_source_positions=1500, activation_function="gelu",
                  scale_embedding=False, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                  initializer_range=0.02)
TEXT_BASE = dict(num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                 vocab_size=151936, rope_theta=1000000.0, rms_norm_eps=1e-6, hidden_act="silu",
                 max_position_embeddings=65536, attention_bias=False, attention_dropout=0.0,
                 use_cache=True, initializer_range=0.02)
_ENC_06B = dict(d_model=896, encoder_layers=18, encoder_attention_heads=14, encoder_ffn_dim=3584)
_ENC_17B = dict(d_model=1024, encoder_layers=24, encoder_attention_heads=16, encoder_ffn_dim=4096)
_TINY_AUDIO = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128,
                   downsample_hidden_size=8)
_TINY_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32)
# (kind, size) -> (audio dims, text dims); output_dim always follows the text hidden size.
PRESETS: dict[tuple[str, str], tuple[dict, dict]] = {
    ("asr", "tiny"): (_TINY_AUDIO, _TINY_TEXT),
    ("asr", "0.6b"): (_ENC_06B, dict(hidden_size=1024, intermediate_size=3072)),
    ("asr", "1.7b"): (_ENC_17B, dict(hidden_size=2048, intermediate_size=6144)),
    ("aligner", "tiny"): (_TINY_AUDIO, dict(_TINY_TEXT, vocab_size=152064)),
    ("aligner", "0.6b"): (_ENC_17B, dict(hidden_size=1024, intermediate_size=3072, vocab_size=152064)),
}
AUDIO_FIELDS = set(AUDIO_BASE) | set(_ENC_06B) | {"output_dim"}
TEXT_FIELDS = set(TEXT_BASE) | {"hidden_size", "intermediate_size", "rope_scaling"}
THINKER_FIELDS = {"classify_num", "audio_token_id", "audio_start_token_id", "audio_end_token_id",
                  "user_token_id"}


def _mrope_section(head_dim: int) -> list[int]:
    """[24, 20, 20] for head_dim 128, the same proportions for other head sizes."""
    half = head_dim // 2
    hw = round(half * 20 / 64)
    return [half - 2 * hw, hw, hw]


def _check_overrides(overrides: dict) -> None:
    allowed = {"audio": AUDIO_FIELDS, "text": TEXT_FIELDS, "thinker": THINKER_FIELDS}
    for part, fields in overrides.items():
        if part not in allowed:
            raise ValueError(f"overrides: unknown section {part!r}; use 'audio', 'text' or 'thinker'")
        for key in fields:
            if key not in allowed[part]:
                raise ValueError(f"overrides[{part!r}]: unknown field {key!r}")


RELEASED_TOKEN_IDS = {"audio_token_id": 151676, "audio_start_token_id": 151669, "audio_end_token_id": 151670,
                      "timestamp_token_id": 151705}


def build_config(kind: str, size: str, overrides: dict | None = None,
                 tie_word_embeddings: bool | None = None, dtype: str = "float32",
                 token_ids: dict[str, int] | None = None) -> dict:
    """The config.json dict for one (kind, size), with `overrides` merged into the sub-configs.
    `token_ids` moves the special tokens the config names (default: the released ids)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if (kind, size) not in PRESETS:
        valid = [s for k, s in PRESETS if k == kind]
        raise ValueError(f"size must be one of {valid} for kind {kind!r}, got {size!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    overrides = overrides or {}
    _check_overrides(overrides)
    tie = (kind == "asr") if tie_word_embeddings is None else bool(tie_word_embeddings)
    if kind == "aligner" and tie:
        raise ValueError("tie_word_embeddings must be False for an aligner (its head has classify_num rows)")
    audio_dims, text_dims = PRESETS[kind, size]
    text = {**TEXT_BASE, **text_dims, **overrides.get("text", {})}
    text.setdefault("rope_scaling", {"rope_type": "default", "interleaved": True, "mrope_interleaved": True,
                                     "mrope_section": _mrope_section(text["head_dim"])})
    text.update(tie_word_embeddings=tie, model_type="qwen3_asr_text")
    audio = {**AUDIO_BASE, **audio_dims, "output_dim": text["hidden_size"], **overrides.get("audio", {})}
    audio["model_type"] = "qwen3_asr_audio_encoder"
    ids = {**RELEASED_TOKEN_IDS, **(token_ids or {})}
    _check_dims(audio, text, max(ids.values()) if token_ids else max(SPECIAL_IDS.values()))
    thinker = {
        "model_type": "qwen3_forced_aligner" if kind == "aligner" else "qwen3_asr_thinker",
        "audio_config": dict(sorted(audio.items())), "text_config": dict(sorted(text.items())),
        **{k: v for k, v in ids.items() if k != "timestamp_token_id"}, "user_token_id": 872, "initializer_range": 0.02, "tie_word_embeddings": tie, "dtype": dtype,
        **({"classify_num": 5000} if kind == "aligner" else {}), **overrides.get("thinker", {}),
    }
    config = {
        "architectures": ["Qwen3ASRForConditionalGeneration"], "model_type": "qwen3_asr",
        "support_languages": ALIGNER_LANGUAGES if kind == "aligner" else LANGUAGES,
        "thinker_config": thinker, "tie_word_embeddings": tie, "dtype": dtype, "torch_dtype": dtype,
        "transformers_version": TRANSFORMERS_VERSION,
    }
    if kind == "aligner":
        config.update(timestamp_token_id=ids["timestamp_token_id"], timestamp_segment_time=80)
    return config


def _check_dims(audio: dict, text: dict, highest_id: int) -> None:
    if audio["d_model"] % audio["encoder_attention_heads"]:
        raise ValueError("audio d_model must be divisible by encoder_attention_heads")
    if text["num_attention_heads"] % text["num_key_value_heads"]:
        raise ValueError("text num_attention_heads must be a multiple of num_key_value_heads")
    if audio["output_dim"] != text["hidden_size"]:
        raise ValueError("audio output_dim must equal text hidden_size (audio features replace embeddings)")
    if audio["num_mel_bins"] != 128:
        raise ValueError("audio num_mel_bins must be 128, the feature extractor's feature_size")
    if text["vocab_size"] <= highest_id:
        raise ValueError(f"text vocab_size must exceed {highest_id}, the highest special token id")
    if sum(text["rope_scaling"]["mrope_section"]) * 2 != text["head_dim"]:
        raise ValueError("text rope_scaling.mrope_section must sum to head_dim / 2")


def parameter_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor the released checkpoint stores, by its state_dict name (lm_head omitted when tied)."""
    th = config["thinker_config"]
    shapes = {**_audio_shapes(th["audio_config"]), **_text_shapes(th["text_config"])}
    if not th["text_config"]["tie_word_embeddings"]:
        aligner = "forced_aligner" in th["model_type"]  # the reference's own test for the head
        rows = th["classify_num"] if aligner else th["text_config"]["vocab_size"]
        shapes["thinker.lm_head.weight"] = (rows, th["text_config"]["hidden_size"])
    return shapes


def _linear(prefix: str, n_out: int, n_in: int, bias: bool) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n_out, n_in), **({f"{prefix}.bias": (n_out,)} if bias else {})}


def _audio_shapes(a: dict) -> dict[str, tuple[int, ...]]:
    p, d, c = "thinker.audio_tower", a["d_model"], a["downsample_hidden_size"]
    freq = a["num_mel_bins"]
    for _ in range(3):  # three stride-2 convs over the mel axis
        freq = (freq + 1) // 2
    shapes = {f"{p}.conv2d1.weight": (c, 1, 3, 3), f"{p}.conv2d1.bias": (c,)}
    for name in ("conv2d2", "conv2d3"):
        shapes |= {f"{p}.{name}.weight": (c, c, 3, 3), f"{p}.{name}.bias": (c,)}
    shapes |= _linear(f"{p}.conv_out", d, c * freq, bias=False)
    for i in range(a["encoder_layers"]):
        q = f"{p}.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes |= _linear(f"{q}.self_attn.{proj}", d, d, bias=True)
        shapes |= {f"{q}.self_attn_layer_norm.weight": (d,), f"{q}.self_attn_layer_norm.bias": (d,)}
        shapes |= _linear(f"{q}.fc1", a["encoder_ffn_dim"], d, True)
        shapes |= _linear(f"{q}.fc2", d, a["encoder_ffn_dim"], True)
        shapes |= {f"{q}.final_layer_norm.weight": (d,), f"{q}.final_layer_norm.bias": (d,)}
    shapes |= {f"{p}.ln_post.weight": (d,), f"{p}.ln_post.bias": (d,)}
    return shapes | _linear(f"{p}.proj1", d, d, True) | _linear(f"{p}.proj2", a["output_dim"], d, True)


def _text_shapes(t: dict) -> dict[str, tuple[int, ...]]:
    p, h, hd, bias = "thinker.model", t["hidden_size"], t["head_dim"], t["attention_bias"]
    nq, nkv, inter = t["num_attention_heads"] * hd, t["num_key_value_heads"] * hd, t["intermediate_size"]
    shapes = {f"{p}.embed_tokens.weight": (t["vocab_size"], h)}
    for i in range(t["num_hidden_layers"]):
        q = f"{p}.layers.{i}"
        shapes |= _linear(f"{q}.self_attn.q_proj", nq, h, bias) | _linear(f"{q}.self_attn.k_proj", nkv, h, bias)
        shapes |= _linear(f"{q}.self_attn.v_proj", nkv, h, bias) | _linear(f"{q}.self_attn.o_proj", h, nq, bias)
        shapes |= {f"{q}.self_attn.q_norm.weight": (hd,), f"{q}.self_attn.k_norm.weight": (hd,)}
        shapes |= _linear(f"{q}.mlp.gate_proj", inter, h, False) | _linear(f"{q}.mlp.up_proj", inter, h, False)
        shapes |= _linear(f"{q}.mlp.down_proj", h, inter, False)
        shapes |= {f"{q}.input_layernorm.weight": (h,), f"{q}.post_attention_layernorm.weight": (h,)}
    return shapes | {f"{p}.norm.weight": (h,)}


# Init scheme, tuned with the reference's greedy decoding (tests/test_testmodel.py checks it):
# - matrices are N(0, gain^2 / fan_in), so every size behaves alike; biases are N(0, 0.02^2);
#   token embeddings are N(0, 0.5^2) per component; an untied lm_head is N(0, 1 / hidden);
# - norm weights are 1 + N(0, 0.1^2) and norm biases N(0, 0.02^2), except q_norm / k_norm at
#   3 + N(0, 0.1^2): sharper attention, so each step attends to a few positions instead of an
#   average over the whole (mostly audio) context that is the same at every step;
# - MLP down projections have gain 6, so the residual stream moves far from the input token's
#   embedding: with tied embeddings the current token's own logit no longer wins.
# Naive inits (gain 1 everywhere, q/k norms at 1) repeat one token for 40-120 steps on most audio;
# this one gave 60-64 distinct ids in the first 64 greedy tokens (no early EOS) on noise, tones,
# a chirp and silence of 1-20 s for seeds 0-2 at size tiny, tied or untied, and 64 of 64 at 0.6b.
GAINS = {"mlp.down_proj.weight": 6.0}
EMBED_STD, BIAS_STD, NORM_STD, QK_NORM_MEAN = 0.5, 0.02, 0.1, 3.0


def _init_std(name: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) of the normal draw for one tensor."""
    if name.endswith("embed_tokens.weight"):
        return 0.0, EMBED_STD
    if name.endswith(("q_norm.weight", "k_norm.weight")):
        return QK_NORM_MEAN, NORM_STD
    if len(shape) == 1:  # a 1-D ".weight" is a LayerNorm / RMSNorm scale, the rest are biases
        return (1.0, NORM_STD) if name.endswith(".weight") else (0.0, BIAS_STD)
    fan_in = 1
    for n in shape[1:]:
        fan_in *= n
    gain = next((g for key, g in GAINS.items() if name.endswith(key)), 1.0)
    return 0.0, gain / fan_in ** 0.5


def _tensor(name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype, init=_init_std) -> torch.Tensor:
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    mean, std = init(name, shape)
    x = torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std).add_(mean)
    return x.to(dtype)


def _plan_shards(shapes: dict[str, tuple[int, ...]], itemsize: int, max_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    used = 0
    for name, shape in shapes.items():
        n = itemsize * int(torch.Size(shape).numel())
        if shards[-1] and used + n > max_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += n
    return shards


def write_weights(out_dir: Path, shapes: dict[str, tuple[int, ...]], seed: int, dtype: str,
                  shard_max_bytes: int | None, init=_init_std) -> None:
    """model.safetensors, or HF-style shards plus model.safetensors.index.json. `init(name, shape)`
    gives each tensor's (mean, std); the default is the test checkpoints' (see `_init_std`)."""
    tdtype, meta = DTYPES[dtype], {"format": "pt"}
    if shard_max_bytes is None:
        tensors = {n: _tensor(n, s, seed, tdtype, init) for n, s in shapes.items()}
        save_file(tensors, str(out_dir / "model.safetensors"), metadata=meta)
        return
    itemsize = torch.empty((), dtype=tdtype).element_size()
    shards = _plan_shards(shapes, itemsize, shard_max_bytes)
    weight_map, total = {}, 0
    for k, names in enumerate(shards, start=1):
        fname = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        tensors = {n: _tensor(n, shapes[n], seed, tdtype, init) for n in names}
        total += sum(t.numel() * itemsize for t in tensors.values())
        save_file(tensors, str(out_dir / fname), metadata=meta)
        weight_map.update({n: fname for n in names})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(out_dir / "model.safetensors.index.json", index)


def make_test_model(out_dir: str | Path, kind: str = "asr", size: str = "tiny", seed: int = 0, *,
                    overrides: dict | None = None, tie_word_embeddings: bool | None = None,
                    dtype: str = "float32", shard_max_bytes: int | None = None) -> Path:
    """Write a random-weight checkpoint of the released layout into out_dir and return its path.

    kind: "asr" or "aligner"; size: "tiny", "0.6b" or "1.7b" (an aligner has no 1.7b);
    overrides: {"audio": {...}, "text": {...}, "thinker": {...}} merged into the sub-configs;
    tie_word_embeddings: None means the released choice (tied for asr, untied for the aligner);
    dtype: the safetensors dtype; shard_max_bytes: split the weights into HF-style shards.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if shard_max_bytes is not None and shard_max_bytes <= 0:
        raise ValueError(f"shard_max_bytes must be positive, got {shard_max_bytes}")
    config = build_config(kind, size, overrides, tie_word_embeddings, dtype)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    write_json(out / "generation_config.json", {"eos_token_id": [151645, 151643], "pad_token_id": 151643,
                                           "transformers_version": TRANSFORMERS_VERSION})
    write_tokenizer_files(out, config["thinker_config"]["text_config"]["vocab_size"])
    write_weights(out, parameter_shapes(config), seed, dtype, shard_max_bytes)
    return out
