"""Writing trained weights as a normal HF-layout checkpoint, and the training state for resuming.

A checkpoint folder holds what the source checkpoint held besides weights (config.json, tokenizer
files, chat template, preprocessor and generation configs: copied as they are) and
`model.safetensors` with the source's parameter names (a tied head is not stored, as in the
released files). `load_model`/`load_aligner` and the reference package load it like a release.

`training_state.pt` beside it holds what an exact resume needs: step, data position, optimizer and
scheduler states. Data order and augmentation are functions of (seed, epoch, index), and the model
has no dropout, so no random generator state is needed.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..testtokenizer import write_json

WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
STATE = "training_state.pt"


def save_checkpoint(net, cfg, source: Path, out: Path, dtype: torch.dtype, state: dict | None = None) -> None:
    """Weights in `dtype`, the source's other files and the training `state`, written to a temporary
    folder then renamed, so an interrupted save never leaves a half-written checkpoint."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file() and not f.name.startswith("model") and f.suffix != ".pt" and f.name != "train.log":
            shutil.copy2(f, tmp / f.name)
    weights = {k: v.detach().to(dtype).contiguous() for k, v in net.state_dict().items()
               if not (cfg.tied and k == "thinker.lm_head.weight")}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    _set_dtype(tmp / "config.json", dtype)
    if state is not None:
        torch.save(state, tmp / STATE)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def _set_dtype(path: Path, dtype: torch.dtype) -> None:
    """config.json names the weights' dtype (the loaders' `auto` reads it)."""
    cfg = json.loads(path.read_text(encoding="utf-8"))
    name = str(dtype).removeprefix("torch.")
    for d in (cfg, cfg.get("thinker_config", {})):
        for key in ("torch_dtype", "dtype"):
            if key in d:
                d[key] = name
    write_json(path, cfg)


def load_state(folder: Path) -> dict:
    f = folder / STATE
    if not f.is_file():
        raise ValueError(f"{folder} has no {STATE}: not a checkpoint written by `asrstream train`")
    return torch.load(f, weights_only=True)
