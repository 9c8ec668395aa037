"""`asrstream stream FILE` and `asrstream mic`: command-line clients of a running server (no torch).

Both show the current partial updating in place on a terminal (stable text normal, unstable text
dim) and each final on its own line with its time. `stream` writes the finals as text, JSON, SRT
or VTT; `mic` runs until Ctrl-C, then sends close_stream and waits for the last finals.
Failures (connection refused, 401, 503 with its Retry-After, a server error) end with one line.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from .sdk import DEFAULT_URL, StreamingClient
from .sources import FileSource, MicSource, list_devices

FORMATS = ("text", "json", "srt", "vtt")


def _common(p) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help=f"server endpoint (default {DEFAULT_URL})")
    p.add_argument("--api-key", default=None, help="API key (default: env ASRSTREAM_API_KEY)")
    p.add_argument("--language", default=None, help="force the language (default: detect)")


def add_stream(sub) -> None:
    p = sub.add_parser("stream", help="stream an audio file through a running server")
    p.add_argument("file", metavar="FILE", help="any format soundfile reads, 8-48 kHz")
    _common(p)
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_const", const=1.0, dest="speed", help="send at real-time speed")
    pace.add_argument("--speed", type=float, default=None, help="send at X times real time (default: as fast as accepted)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output of the finals (default text)")
    p.add_argument("--output", type=Path, default=None, help="write there instead of stdout")
    p.set_defaults(func=lambda a: _run(run_stream(a)))


def add_mic(sub) -> None:
    p = sub.add_parser("mic", help="live captions from the microphone (Ctrl-C to stop)")
    _common(p)
    p.add_argument("--device", default=None, help="input device number or name (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    p.add_argument("--input-file", default=None, help=argparse.SUPPRESS)  # tests: a file played in real time
    p.set_defaults(func=lambda a: _run(run_mic(a)))


def _run(coro) -> int:
    return asyncio.run(coro)


class LiveLine:
    """The terminal view: the partial rewritten in place, finals printed for good."""

    def __init__(self, out=sys.stderr, live: bool | None = None):
        self.out, self.live = out, out.isatty() if live is None else live

    def partial(self, msg) -> None:
        if self.live:
            text = (msg.stable_text + "\x1b[2m" + msg.unstable_text + "\x1b[0m")[-400:]
            self.out.write(f"\r\x1b[2K{text}")
            self.out.flush()

    def final(self, msg) -> None:
        self.out.write(("\r\x1b[2K" if self.live else "") + f"[{_clock(msg.start)}] {msg.text}\n")
        self.out.flush()


async def run_stream(args) -> int:
    source = FileSource(args.file, args.speed)
    finals, view = [], LiveLine()
    client = _client(args, source.rate, on_partial=view.partial, on_final=lambda m: (finals.append(m), view.final(m)))
    await client.connect()
    try:
        async for frame in source:
            await client.send_audio(frame)
        await client.close(timeout=None)
    finally:
        await client.aclose()
    text = render(finals, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


async def run_mic(args, source=None) -> int:
    if args.list_devices:
        sys.stdout.write(list_devices())
        return 0
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    source = source or (FileSource(args.input_file, 1.0) if args.input_file else MicSource(device))
    view = LiveLine(sys.stdout)
    client = _client(args, source.rate, on_partial=view.partial, on_final=view.final)
    await client.connect()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    sys.stderr.write("listening; Ctrl-C to stop\n")
    try:
        await _send_until(client, source, stop)
        await client.close(timeout=30)
    finally:
        await client.aclose()
    return 0


async def _send_until(client, source, stop: asyncio.Event) -> None:
    frames = source.__aiter__()
    stopped = asyncio.create_task(stop.wait())
    while not stop.is_set():
        nxt = asyncio.ensure_future(anext(frames, None))
        await asyncio.wait([nxt, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not nxt.done():
            nxt.cancel()
            break
        if (frame := nxt.result()) is None:
            break
        await client.send_audio(frame)
    stopped.cancel()


def _client(args, rate: int, **callbacks) -> StreamingClient:
    key = args.api_key or os.environ.get("ASRSTREAM_API_KEY")
    return StreamingClient(args.url, key, language=args.language, sample_rate=rate, **callbacks)


def render(finals: list, fmt: str) -> str:
    """Live finals as a transcript: text (a line per final), JSON, SRT or VTT cues."""
    from ..protocol import formats

    if fmt == "text":
        return "".join(f"{f.text}\n" for f in finals)
    cues = []
    for f in finals:
        words = [formats.Word(w["word"], w["start"], w["end"]) for w in f.words]
        cues += (formats.segments_from_words(words, f.text, duration=f.end) if words
                 else [formats.Segment(f.text, f.start, f.end)])
    if fmt == "json":
        langs = Counter(f.language for f in finals if f.language)
        return formats.to_json({"text": " ".join(f.text for f in finals), "raw": "", "token_ids": [],
                                "language": langs.most_common(1)[0][0] if langs else "",
                                "words": [w for f in finals for w in f.words], "segments": cues})
    return formats.to_srt(cues) if fmt == "srt" else formats.to_vtt(cues)


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m):02d}:{s:04.1f}"
