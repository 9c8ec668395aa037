"""A connection's effective configuration: audio format plus the engine's stream options.

Set from the server's defaults, then the URL's query (`language`, `sample_rate`, `encoding`), then
any number of `session.update` messages. Each change is validated whole; an invalid one raises
ProtocolError(invalid_field) and leaves the configuration as it was. Protocol names map onto
StreamOptions fields here and nowhere else.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..streaming.options import StreamOptions
from .messages import ENCODINGS, MAX_RATE, MIN_RATE, ProtocolError

QUERY_FIELDS = ("language", "sample_rate", "encoding", "token")
OPTION_NAMES = {  # protocol field -> StreamOptions field
    "language": "language", "context": "context", "interim_results": "interim_results",
    "word_timestamps": "word_timestamps", "vad.silence_ms": "silence_ms",
    "vad.max_segment_s": "max_segment_seconds", "vad.aggressiveness": "vad_aggressiveness",
}


@dataclass(frozen=True)
class SessionConfig:
    options: StreamOptions
    sample_rate: int = 16000
    encoding: str = ENCODINGS[0]
    can_align: bool = True  # the server has a forced aligner

    def apply(self, values: dict) -> SessionConfig:
        """A new config with `values` (as parsed from session.update) applied; ProtocolError if invalid."""
        flat = dict(values)
        for name, value in flat.pop("vad", {}).items():
            flat[f"vad.{name}"] = value
        if flat.get("word_timestamps") and not self.can_align:
            raise ProtocolError("invalid_field", "word_timestamps: this server runs without a forced aligner")
        changes = {OPTION_NAMES[k]: v for k, v in flat.items() if k in OPTION_NAMES}
        try:
            options = dataclasses.replace(self.options, **changes)
        except ValueError as e:
            raise ProtocolError("invalid_field", _protocol_names(str(e))) from None
        return dataclasses.replace(self, options=options, sample_rate=flat.get("sample_rate", self.sample_rate),
                                   encoding=flat.get("encoding", self.encoding))

    def to_dict(self) -> dict:
        o = self.options
        return {"language": o.language, "context": o.context, "sample_rate": self.sample_rate,
                "encoding": self.encoding, "interim_results": o.interim_results,
                "word_timestamps": o.word_timestamps and self.can_align,
                "vad": {"silence_ms": o.silence_ms, "max_segment_s": o.max_segment_seconds,
                        "aggressiveness": o.vad_aggressiveness},
                "chunk_seconds": o.chunk_seconds}


def query_values(query: dict[str, list[str]]) -> dict:
    """The URL's query parameters as session.update values (token excluded); ProtocolError(invalid_config)."""
    unknown = sorted(set(query) - set(QUERY_FIELDS))
    if unknown:
        raise ProtocolError("invalid_config", f"unknown query parameter {unknown[0][:64]!r}; "
                                              f"known: {', '.join(QUERY_FIELDS)}")
    one = {k: v[-1] for k, v in query.items() if k != "token"}
    out: dict = {}
    if "language" in one:
        out["language"] = one["language"] or None
    if "encoding" in one:
        if one["encoding"] not in ENCODINGS:
            raise ProtocolError("invalid_config", f"encoding must be one of {', '.join(ENCODINGS)}")
        out["encoding"] = one["encoding"]
    if "sample_rate" in one:
        rate = one["sample_rate"]
        if not rate.isdigit() or not MIN_RATE <= int(rate) <= MAX_RATE:
            raise ProtocolError("invalid_config", f"sample_rate must be an integer in [{MIN_RATE}, {MAX_RATE}]")
        out["sample_rate"] = int(rate)
    return out


def _protocol_names(message: str) -> str:
    """StreamOptions' ValueError message, with its field name as the protocol spells it."""
    for proto, field in OPTION_NAMES.items():
        if message.startswith(f"option {field} "):
            return proto + message[len("option " + field):]
    return message
