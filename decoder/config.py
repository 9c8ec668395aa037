"""Model configuration read from a checkpoint's config.json (never from class defaults)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..encoder.config import EncoderConfig


@dataclass(frozen=True)
class TextConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    head_dim: int
    rope_theta: float
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 65536
    hidden_act: str = "silu"
    attention_bias: bool = False

    def __post_init__(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"text_config: num_attention_heads {self.num_attention_heads} is not a multiple "
                             f"of num_key_value_heads {self.num_key_value_heads}")
        if self.hidden_act != "silu":
            raise ValueError(f"text_config: unsupported hidden_act {self.hidden_act!r}")

    @classmethod
    def from_hf(cls, d: dict) -> "TextConfig":
        _check_rope(d.get("rope_scaling"))
        d = dict(d)
        d.setdefault("head_dim", d["hidden_size"] // d["num_attention_heads"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _check_rope(rope: dict | None) -> None:
    """Only default (unscaled) RoPE is supported.

    The checkpoints declare interleaved MRoPE (`mrope_section`), but for audio-and-text prompts the
    temporal/height/width position ids are identical, and interleaving sections of identical
    frequencies-times-positions is the identity: it reduces to plain 1-D RoPE (tests/test_decoder
    proves it against the reference rotary module).
    """
    kind = (rope or {}).get("rope_type", (rope or {}).get("type", "default"))
    if kind != "default":
        raise ValueError(f"text_config.rope_scaling: rope_type {kind!r} is not supported (only 'default')")


@dataclass(frozen=True)
class ModelConfig:
    """A Qwen3-ASR or Qwen3-ForcedAligner checkpoint: encoder, decoder, special token ids."""

    audio: EncoderConfig
    text: TextConfig
    model_type: str
    audio_token_id: int
    audio_start_token_id: int
    audio_end_token_id: int
    support_languages: tuple[str, ...] = ()
    classify_num: int | None = None  # aligner: number of timestamp classes of the lm_head
    timestamp_token_id: int | None = None
    timestamp_segment_time: float | None = None  # aligner: milliseconds per class
    eos_token_ids: tuple[int, ...] = field(default=(151645, 151643))

    @property
    def is_aligner(self) -> bool:
        return "forced_aligner" in self.model_type

    @property
    def tied(self) -> bool:
        return self.text.tie_word_embeddings and not self.is_aligner

    @classmethod
    def from_hf(cls, cfg: dict, generation: dict | None = None) -> "ModelConfig":
        if cfg.get("model_type") != "qwen3_asr":
            raise ValueError(f"config.json has model_type {cfg.get('model_type')!r}; asrstream loads "
                             "Qwen3-ASR / Qwen3-ForcedAligner checkpoints (model_type 'qwen3_asr')")
        th = cfg.get("thinker_config")
        if not isinstance(th, dict) or "audio_config" not in th or "text_config" not in th:
            raise ValueError("config.json has no thinker_config with audio_config and text_config")
        text = dict(th["text_config"])
        text.setdefault("tie_word_embeddings", th.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False)))
        kind = th.get("model_type", "qwen3_asr_thinker")
        aligner = "forced_aligner" in kind
        eos = (generation or {}).get("eos_token_id", [151645, 151643])
        return cls(
            audio=EncoderConfig.from_hf(th["audio_config"]),
            text=TextConfig.from_hf(text),
            model_type=kind,
            audio_token_id=th.get("audio_token_id", 151676),
            audio_start_token_id=th.get("audio_start_token_id", 151669),
            audio_end_token_id=th.get("audio_end_token_id", 151670),
            support_languages=tuple(cfg.get("support_languages") or ()),
            classify_num=th.get("classify_num") if aligner else None,
            timestamp_token_id=cfg.get("timestamp_token_id", th.get("timestamp_token_id")) if aligner else None,
            timestamp_segment_time=cfg.get("timestamp_segment_time", th.get("timestamp_segment_time"))
            if aligner else None,
            eos_token_ids=tuple(eos if isinstance(eos, list) else [eos]),
        )
