"""Shared fixtures: tiny random-weight checkpoints in the released layout, built once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from asrstream.testmodel import make_test_model


@pytest.fixture(scope="session")
def tiny_asr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen3-ASR checkpoint (tied head, GQA 2, seed 0)."""
    return make_test_model(tmp_path_factory.mktemp("tiny_asr"), "asr", "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_aligner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen3-ForcedAligner checkpoint (untied 5000-class head, seed 0)."""
    return make_test_model(tmp_path_factory.mktemp("tiny_aligner"), "aligner", "tiny", seed=0)
