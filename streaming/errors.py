"""The engine's exceptions; `code` is the documented error code a server sends on."""
from __future__ import annotations


class EngineError(RuntimeError):
    """Base of the engine's errors; `code` is the documented error code."""
    code = "internal_error"


class CapacityError(EngineError):
    code = "overloaded"


class EngineClosed(EngineError):
    code = "shutting_down"
