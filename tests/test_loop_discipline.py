"""The suite's event-loop discipline (tests/servers.py `running`) catches what it is there for: a
server code path that burns CPU on the loop thread at each frame, and model code on the loop."""
from __future__ import annotations

import time

import pytest
import torch

from asrstream import load_model
from asrstream.protocol.connection import Connection
from asrstream.streaming.engine import Engine

from .servers import pcm16, running, stream, url
from .speech import silence


@pytest.fixture(scope="module")
def engine(tiny_asr_dir):
    e = Engine(load_model(str(tiny_asr_dir), dtype="float32"))
    yield e
    e.shutdown()


def _burn(seconds: float) -> None:
    """Pure-Python work on the calling thread for `seconds` of wall time (perf_counter is vDSO: no
    system calls, so this is user-mode CPU whenever the thread has a core)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _stream_with(engine, monkeypatch, extra) -> None:
    """Stream 0.6 s of silence in 0.1 s frames, paced in real time (a task step per frame), to a
    server whose reader runs `extra()` per frame."""
    real = Connection._audio

    async def audio(self, data):
        extra()
        return await real(self, data)

    monkeypatch.setattr(Connection, "_audio", audio)
    async with running(engine) as server:
        await stream(url(server), pcm16(silence(0.6)), frame=3200, realtime_bytes_per_s=32000)


async def test_a_reader_that_burns_cpu_at_each_frame_fails_its_test(engine, monkeypatch):
    with pytest.raises(AssertionError, match=r"held the event loop.*_read_loop.*used \d\.\d+ s of CPU"):
        await _stream_with(engine, monkeypatch, lambda: _burn(0.3))


async def test_model_code_on_the_loop_fails_its_test(engine, monkeypatch):
    with pytest.raises(AssertionError, match="torch call on the event loop: zeros"):
        await _stream_with(engine, monkeypatch, lambda: torch.zeros(1))


async def test_a_reader_within_the_limit_passes(engine, monkeypatch):
    await _stream_with(engine, monkeypatch, lambda: _burn(0.02))
