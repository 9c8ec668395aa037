"""asrstream: real-time streaming speech recognition for the Qwen3-ASR family.

`load_model` and `load_aligner` are resolved lazily, so importing a client module
(`asrstream.clients`, `asrstream.protocol`) never imports torch.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_model", "load_aligner", "__version__"]


def __getattr__(name: str):
    if name in ("load_model", "load_aligner"):
        from .decoder import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'asrstream' has no attribute {name!r}")
