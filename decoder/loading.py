"""Finding, reading and loading checkpoints (a local directory, a Hugging Face hub id, or a bundled model).

The network is built on the meta device and each tensor is read from safetensors straight into
its parameter (`load_state_dict(assign=True)`), so weights are never held twice in memory.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..encoder.precision import fast_half, upcast_half_linears
from .bundled import BUNDLED, DEFAULTS, bundled_dir, fallback_warning
from .config import ModelConfig
from .safetensors_mmap import open_tensors
from .thinker import Qwen3ASRNet

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model"]


class HubUnavailable(RuntimeError):
    """A hub id that is neither in the local Hugging Face cache nor downloadable."""


def resolve(name_or_path: str | os.PathLike, kind: str = "asr") -> Path:
    """A bundled model's folder of `kind` ("asr" or "aligner"), a local checkpoint directory, or a hub
    id found in the cache or downloaded."""
    name = str(name_or_path)
    if name == BUNDLED:
        return bundled_dir(name, kind)
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p
    if p.exists() or name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise RuntimeError(f"model {name!r} is not a checkpoint directory; pass --model PATH to a local "
                           "directory holding config.json and *.safetensors, a hub id like Qwen/Qwen3-ASR-0.6B, "
                           f"or {BUNDLED}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise RuntimeError("downloading models needs huggingface_hub: pip install 'asrstream[server]'") from e
    try:
        return Path(snapshot_download(name, allow_patterns=HUB_FILES, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(snapshot_download(name, allow_patterns=HUB_FILES))
    except Exception as e:
        raise HubUnavailable(f"model {name!r} is not in the local Hugging Face cache and could not be downloaded "
                             f"({type(e).__name__}); download it where the hub is reachable and pass --model PATH "
                             "to the local copy") from None


def choose(given: dict[str, str | None]) -> tuple[dict[str, tuple[str, Path]], str | None]:
    """What the command line loads: {kind: (name, folder)} for the kinds ("asr", "aligner") in `given`,
    and a warning line or None. A name given is resolved as it is, never replaced (and first, so its
    error comes before any fallback); None stands for the default hub model of its kind, or for the
    bundled tiny-en where that is neither cached nor downloadable, which the warning then says."""
    chosen = {kind: (name, resolve(name, kind)) for kind, name in given.items() if name is not None}
    replaced = []
    for kind in (k for k, name in given.items() if name is None):
        try:
            chosen[kind] = DEFAULTS[kind], resolve(DEFAULTS[kind], kind)
        except HubUnavailable as e:
            try:
                chosen[kind] = BUNDLED, resolve(BUNDLED, kind)
            except RuntimeError as missing:
                raise RuntimeError(f"{e}; and {missing}") from None
            replaced.append(kind)
    return chosen, fallback_warning(replaced) if replaced else None


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"model dir {path.parent} has no {path.name}; pass --model PATH to a "
                           "Qwen3-ASR checkpoint directory or a hub id") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RuntimeError(f"{path} is not valid JSON: {e}") from None


def read_config(path: Path) -> ModelConfig:
    gen_path = path / "generation_config.json"
    gen = read_json(gen_path) if gen_path.exists() else None
    try:
        return ModelConfig.from_hf(read_json(path / "config.json"), gen)
    except (KeyError, TypeError) as e:
        raise RuntimeError(f"{path / 'config.json'} is missing or has a bad field: {e}") from None


def weight_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        names = sorted(set(read_json(index)["weight_map"].values()))
        files = [path / n for n in names]
    else:
        files = sorted(path.glob("*.safetensors"))
    missing = [f.name for f in files if not f.exists()]
    if not files or missing:
        what = ", ".join(missing) if missing else "no *.safetensors file"
        raise RuntimeError(f"model dir {path} has {'missing weight files: ' if missing else ''}{what}")
    return files


def parse_dtype(dtype: str | torch.dtype | None, cfg_path: Path, device: torch.device) -> torch.dtype:
    """The compute dtype: as asked, or for "auto" the checkpoint's (float32 where half is slow)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        raw = read_json(cfg_path / "config.json")
        dtype = raw.get("torch_dtype") or raw.get("dtype") or "float32"
        if not fast_half(device):
            dtype = "float32"
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of float32, bfloat16, float16, auto")
    return DTYPES[dtype]


def read_state(files: list[Path], dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """All tensors, as zero-copy views where dtype and device already match, else converted."""
    state = {}
    for f in files:
        for name, t in open_tensors(f).items():
            state[name] = t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
    return state


def load_net(path: Path, cfg: ModelConfig, dtype: torch.dtype, device: torch.device) -> Qwen3ASRNet:
    """Build the network on the meta device and assign the checkpoint's tensors to it."""
    with torch.device("meta"):
        net = Qwen3ASRNet(cfg)
    state = read_state(weight_files(path), dtype, device)
    if cfg.tied:
        state.pop("thinker.lm_head.weight", None)
    expected = {k for k in net.state_dict() if not (cfg.tied and k == "thinker.lm_head.weight")}
    missing, extra = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or extra:
        raise RuntimeError(f"checkpoint {path} does not match its config.json: "
                           f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                           f"unexpected {extra[:5]}{'…' if len(extra) > 5 else ''}")
    try:
        net.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as e:
        raise RuntimeError(f"checkpoint {path} has tensors of the wrong shape for its config.json: {e}") from None
    if cfg.tied:
        net.thinker.lm_head.weight = net.thinker.model.embed_tokens.weight
    net.thinker.audio_tower.init_buffers(device)
    if not fast_half(device):
        net.thinker.audio_tower.conv_in_float32()
        upcast_half_linears(net)
    return net.eval().requires_grad_(False)


QUANTIZE = ("int8",)


def quantize_decoder(net: Qwen3ASRNet) -> None:
    """Dynamic int8 quantization (torch.ao, per-channel weights) of the decoder's linear layers.

    Decoding one token reads every decoder weight; on CPUs int8 weights read a quarter of the
    bytes of float32 ones. The audio encoder and the embeddings stay float32.
    """
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        quantize_dynamic(net.thinker.model.layers, spec, inplace=True)
        net.thinker.lm_head = quantize_dynamic(torch.nn.Sequential(net.thinker.lm_head), spec)[0]


def open_checkpoint(name_or_path, device, dtype, want_aligner: bool, quantize: str | None = None):
    """(path, config, network) for a checkpoint of the wanted kind."""
    path = resolve(name_or_path, "aligner" if want_aligner else "asr")
    cfg = read_config(path)
    if cfg.is_aligner != want_aligner:
        kind = "a forced-aligner" if cfg.is_aligner else "an ASR"
        flag = "--aligner" if cfg.is_aligner else "--model"
        raise RuntimeError(f"{path} is {kind} checkpoint; pass it with {flag}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
    net = load_net(path, cfg, parse_dtype(dtype, path, dev), dev)
    if quantize:
        if quantize not in QUANTIZE or dev.type != "cpu" or net.dtype != torch.float32:
            raise ValueError(f"quantize={quantize!r} is supported as 'int8' on CPU with dtype float32")
        quantize_decoder(net)
    return path, cfg, net


def load_model(name_or_path: str = DEFAULTS["asr"], device: str = "cpu", dtype: str | None = "auto",
               quantize: str | None = None):
    """Load a Qwen3-ASR checkpoint (a folder, a hub id, or "tiny-en", the bundled model): returns an
    `ASRModel` ready for `transcribe`. The default hub model must be cached or downloadable: no fallback.

    dtype: float32, bfloat16, float16, or auto (the checkpoint's; float32 on CPUs without fast
    half precision). quantize="int8": dynamic int8 decoder weights (CPU, float32).
    """
    from .asr import ASRModel

    return ASRModel(*open_checkpoint(name_or_path, device, dtype, want_aligner=False, quantize=quantize))


def load_aligner(name_or_path: str = DEFAULTS["aligner"], device: str = "cpu",
                 dtype: str | None = "auto"):
    """Load a Qwen3-ForcedAligner checkpoint (a folder, a hub id, or "tiny-en"): returns a `ForcedAligner`."""
    from .aligner import ForcedAligner

    return ForcedAligner(*open_checkpoint(name_or_path, device, dtype, want_aligner=True))
