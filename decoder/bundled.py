"""Checkpoints shipped inside the package, loaded by name: `--model tiny-en`, `--aligner tiny-en`.

tiny-en is a small English Qwen3-ASR model and forced aligner trained here on synthetic speech
(docs/tiny-en.md): a demonstration that works end to end without the network, not a substitute for
the released models. Its files are package data of `asrstream.models`, the top-level `models/`
folder: `models/tiny-en/asr` and `models/tiny-en/aligner`, each a checkpoint in the released layout.

Policy (`loading.choose`): the command line falls back to tiny-en only where it was given no model
and the default hub model is neither in the Hugging Face cache nor downloadable, and says so in one
warning. A model the user named is never replaced, and the Python API never falls back.
"""
from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "models"
BUNDLED = "tiny-en"
DEFAULTS = {"asr": "Qwen/Qwen3-ASR-0.6B", "aligner": "Qwen/Qwen3-ForcedAligner-0.6B"}  # the hub's defaults
FLAGS = {"asr": "--model", "aligner": "--aligner"}
FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
         "vocab.json", "merges.txt", "chat_template.json", "preprocessor_config.json")


def bundled_dir(name: str, kind: str) -> Path:
    """The checkpoint folder of bundled model `name` for `kind` ("asr" or "aligner")."""
    path = MODELS / name / kind
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        lacks = f"{path} lacks {', '.join(missing)}" if path.is_dir() else f"there is no {path}"
        raise RuntimeError(f"the bundled {name} {'aligner' if kind == 'aligner' else 'model'} is not in this install "
                           f"({lacks}); install an asrstream release that ships it, or pass {FLAGS[kind]} PATH or a hub id")
    return path


def fallback_warning(kinds: list[str]) -> str:
    """The one line that says which defaults tiny-en replaces, what it is, and how to get the real ones."""
    one = len(kinds) == 1
    ids = " and ".join(DEFAULTS[k] for k in kinds)
    what = " and ".join("aligner" if k == "aligner" else "model" for k in kinds)
    demo = ("a small demonstration model trained on synthetic English speech that does not" if one else
            "small demonstration models trained on synthetic English speech that do not")
    get = " and ".join(f"`huggingface-cli download {DEFAULTS[k]}`" for k in kinds)
    return (f"{ids} {'is' if one else 'are'} neither in the Hugging Face cache nor downloadable: using the bundled "
            f"{BUNDLED} {what}, {demo} {'transcribe' if 'asr' in kinds else 'align'} real speech well. For the real "
            f"{what} run {get} where the hub is reachable, or pass {' '.join(FLAGS[k] + ' PATH' for k in kinds)}")
