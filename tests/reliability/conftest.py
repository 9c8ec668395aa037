"""Shared fixtures of the reliability suite: one tiny model per package, one engine per module."""
from __future__ import annotations

import pytest

from asrstream import load_model
from asrstream.streaming.engine import Engine


@pytest.fixture(scope="package")
def tiny_model(tiny_asr_dir):
    return load_model(str(tiny_asr_dir), dtype="float32")


@pytest.fixture(scope="module")
def engine(tiny_model):
    e = Engine(tiny_model)
    yield e
    e.shutdown()
