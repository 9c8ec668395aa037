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


def pytest_terminal_summary(terminalreporter):
    """The event-loop lag of every test server in this run, as one figure (goal: p99 < 50 ms)."""
    from .servers import lag_quantile
    samples, p99 = lag_quantile(0.99)
    if samples:
        terminalreporter.write_line(f"event-loop lag across the suite's servers: {samples} probe samples, "
                                    f"p99 <= {p99 * 1000:g} ms, p50 <= {lag_quantile(0.5)[1] * 1000:g} ms")


def pytest_sessionfinish(session):
    from .servers import lag_quantile
    samples, p99 = lag_quantile(0.99)
    if samples and p99 > 0.05:
        print(f"\nFAILED: event-loop lag p99 across the suite's servers is over 50 ms ({p99 * 1000:g} ms)")
        session.exitstatus = 1
