"""Half precision on CPUs without fast half-precision kernels.

torch runs bf16/fp16 matmuls on AVX2-only CPUs several times slower than float32 (and bf16
convolutions slower still). When such a CPU is asked for half precision, weights stay in half
precision (half the memory) but work on many rows at once (encoder windows, prefill) runs in
float32 with the weight upcast for that one call; single-row decoding steps keep the native half
kernels, which read half the bytes. The conv stem always computes in float32 there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

UPCAST_MIN_ROWS = 8  # inputs with at least this many rows are computed in float32


def fast_half(device: torch.device | str) -> bool:
    """Whether bf16/fp16 math has fast kernels here: CUDA, or a CPU with AVX512-BF16 or AMX."""
    if torch.device(device).type != "cpu":
        return True
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


class UpcastLinear(nn.Linear):
    """A half-precision Linear that computes many-row inputs in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() < UPCAST_MIN_ROWS * x.shape[-1]:
            return super().forward(x)
        b = None if self.bias is None else self.bias.float()
        return F.linear(x.float(), self.weight.float(), b).to(x.dtype)


def upcast_half_linears(module: nn.Module) -> None:
    """Make every half-precision nn.Linear in `module` an UpcastLinear (same parameters)."""
    for m in module.modules():
        if type(m) is nn.Linear and m.weight.dtype in (torch.bfloat16, torch.float16):
            m.__class__ = UpcastLinear
