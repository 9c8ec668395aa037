"""Half precision on CPUs without fast half kernels: float32 compute for many rows, half storage."""
import torch
from torch import nn

from asrstream.encoder.precision import UPCAST_MIN_ROWS, UpcastLinear, fast_half, upcast_half_linears


def _half_linear():
    torch.manual_seed(0)
    return nn.Linear(32, 16).to(torch.bfloat16)


def test_many_rows_are_computed_in_float32_from_the_half_weights():
    lin = _half_linear()
    x = torch.randn(UPCAST_MIN_ROWS, 32).to(torch.bfloat16)
    upcast_half_linears(nn.Sequential(lin))
    assert type(lin) is UpcastLinear and lin.weight.dtype == torch.bfloat16
    expected = nn.functional.linear(x.float(), lin.weight.float(), lin.bias.float()).to(torch.bfloat16)
    assert torch.equal(lin(x), expected)


def test_single_rows_use_the_native_half_kernel():
    lin = _half_linear()
    x = torch.randn(1, 32).to(torch.bfloat16)
    native = nn.functional.linear(x, lin.weight, lin.bias)
    upcast_half_linears(nn.Sequential(lin))
    assert torch.equal(lin(x), native)


def test_float32_linears_are_left_alone():
    lin = nn.Linear(4, 4)
    upcast_half_linears(nn.Sequential(lin))
    assert type(lin) is nn.Linear


def test_bf16_model_on_this_cpu_follows_the_policy(tiny_asr_dir):
    from asrstream import load_model

    net = load_model(tiny_asr_dir, dtype="bfloat16").net
    q = net.thinker.model.layers[0].self_attn.q_proj
    assert q.weight.dtype == torch.bfloat16
    assert (type(q) is UpcastLinear) == (not fast_half("cpu"))
