"""Streaming recognition: `Engine(model, aligner).open_session(StreamOptions(...))` -> `Session`."""
from .engine import Engine
from .errors import CapacityError, EngineClosed, EngineError
from .session import Session
from .events import Closed, Error, Event, Final, Partial, SpeechStarted
from .options import StreamOptions

__all__ = ["Engine", "Session", "StreamOptions", "EngineError", "CapacityError", "EngineClosed",
           "Event", "SpeechStarted", "Partial", "Final", "Error", "Closed"]
