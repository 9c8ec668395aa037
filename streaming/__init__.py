"""Streaming recognition: `Engine(model, aligner).open_session(StreamOptions(...))` -> `Session`.

Names load lazily, so `asrstream.streaming.options` can be imported without torch.
"""
import importlib

_HOMES = {"Engine": "engine", "Session": "session", "StreamOptions": "options", "EngineError": "errors",
          "CapacityError": "errors", "EngineClosed": "errors", "Event": "events", "SpeechStarted": "events",
          "Partial": "events", "Final": "events", "Error": "events", "Closed": "events"}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
