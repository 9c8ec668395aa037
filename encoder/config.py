"""AuT audio-encoder dimensions, read from a checkpoint's `audio_config`."""
from __future__ import annotations

from dataclasses import dataclass, fields


def conv_out_len(frames: int) -> int:
    """Tokens the 3x stride-2 conv stem makes from `frames` mel frames (one chunk)."""
    for _ in range(3):
        frames = (frames - 1) // 2 + 1 if frames > 0 else 0
    return frames


@dataclass(frozen=True)
class EncoderConfig:
    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    output_dim: int
    num_mel_bins: int = 128
    downsample_hidden_size: int = 480
    n_window: int = 50  # conv chunk = 2 * n_window mel frames
    n_window_infer: int = 800  # attention window, in mel frames
    max_source_positions: int = 1500
    activation_function: str = "gelu"

    def __post_init__(self):
        if self.d_model % self.encoder_attention_heads:
            raise ValueError(f"audio_config: d_model {self.d_model} is not divisible by "
                             f"encoder_attention_heads {self.encoder_attention_heads}")
        if self.n_window_infer % self.chunk_frames:
            raise ValueError(f"audio_config: n_window_infer {self.n_window_infer} must be a multiple of "
                             f"2 * n_window = {self.chunk_frames}")
        if self.activation_function not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"audio_config: unsupported activation_function {self.activation_function!r}")

    @classmethod
    def from_hf(cls, d: dict) -> "EncoderConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def head_dim(self) -> int:
        return self.d_model // self.encoder_attention_heads

    @property
    def chunk_frames(self) -> int:
        """Mel frames per conv chunk (100 = 1 s)."""
        return 2 * self.n_window

    @property
    def tokens_per_chunk(self) -> int:
        """Encoder tokens one full conv chunk yields (13 for 100 frames)."""
        return conv_out_len(self.chunk_frames)

    @property
    def window_tokens(self) -> int:
        """Tokens per attention window (104 for the released 8 s windows)."""
        return self.tokens_per_chunk * (self.n_window_infer // self.chunk_frames)

    @property
    def freq_bins_after_conv(self) -> int:
        return conv_out_len(self.num_mel_bins)

    def tokens_for_frames(self, frames: int) -> int:
        """Encoder tokens for an utterance of `frames` mel frames."""
        full, tail = divmod(frames, self.chunk_frames)
        return full * self.tokens_per_chunk + conv_out_len(tail)

    def window_lengths(self, tokens: int) -> list[int]:
        """Split `tokens` encoder tokens into attention windows (full windows, then the rest)."""
        full, tail = divmod(tokens, self.window_tokens)
        return [self.window_tokens] * full + ([tail] if tail else [])
