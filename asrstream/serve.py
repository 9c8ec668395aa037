"""`asrstream serve`: load the model, serve protocol v1 until SIGTERM/SIGINT, then drain.

The port opens first and answers 503 (health and sessions) while the model loads; a failed load
ends the process with one error line. Every StreamOptions field is also a flag: the defaults of
every session, which clients change per session with `session.update`.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys

from .streaming.options import StreamOptions

log = logging.getLogger("asrstream.server")
OPTION_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve streaming recognition over WebSockets (protocol v1)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None, help="checkpoint directory, hub id or tiny-en (default Qwen/Qwen3-ASR-0.6B; "
                   "the bundled tiny-en where that is neither cached nor downloadable)")
    p.add_argument("--aligner", default=None, help="forced aligner for word timestamps: directory, hub id or tiny-en "
                   "(default Qwen/Qwen3-ForcedAligner-0.6B, or tiny-en as for --model)")
    p.add_argument("--no-aligner", action="store_true", help="no word timestamps (saves memory and time)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="auto", help="float32, bfloat16, float16 or auto")
    p.add_argument("--quantize", choices=("int8",), default=None, help="int8 decoder weights (CPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--max-sessions", type=int, default=16, help="concurrent sessions; more get 503")
    p.add_argument("--api-key", default=os.environ.get("ASRSTREAM_API_KEY"),
                   help="require this key (Bearer header or ?token=); default: env ASRSTREAM_API_KEY")
    p.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                   help="browser Origin allowed to connect (repeatable); default: any")
    p.add_argument("--idle-timeout", type=float, default=30.0, help="seconds without audio or keepalive")
    p.add_argument("--max-session-seconds", type=float, default=4 * 3600.0)
    p.add_argument("--max-frame-bytes", type=int, default=1 << 20, help="larger frames close with 1009")
    p.add_argument("--drain-seconds", type=float, default=30.0, help="shutdown: time to deliver finals")
    p.add_argument("--step-deadline", type=float, default=30.0,
                   help="a model step running longer makes /health 503 and stops admission until it ends")
    p.add_argument("--certfile", default=None, help="TLS certificate (PEM): serve wss:// and https://")
    p.add_argument("--keyfile", default=None, help="TLS private key (PEM; default: in --certfile)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    for f in dataclasses.fields(StreamOptions):
        _add_option(p, f)
    p.set_defaults(func=run_serve)


def _add_option(p, f) -> None:
    flag = "--" + f.name.replace("_", "-")
    kind = OPTION_TYPES[f.type.split("|")[0].strip()]
    help = f"session default for option {f.name} (default {f.default!r}; see README)"
    if kind is bool:
        p.add_argument(flag, dest=f"opt_{f.name}", action=argparse.BooleanOptionalAction, default=f.default, help=help)
    else:
        p.add_argument(flag, dest=f"opt_{f.name}", type=kind, default=f.default, metavar=f.name.upper(), help=help)


def settings_from(args: argparse.Namespace):
    from .protocol.server import ServerSettings

    options = StreamOptions(**{f.name: getattr(args, f"opt_{f.name}") for f in dataclasses.fields(StreamOptions)})
    if not 1 <= args.max_sessions <= 1024:
        raise ValueError(f"--max-sessions must be in [1, 1024], got {args.max_sessions}")
    if args.keyfile and not args.certfile:
        raise ValueError("--keyfile needs --certfile")
    if not 1024 <= args.max_frame_bytes <= 16 << 20:
        raise ValueError(f"--max-frame-bytes must be in [1024, {16 << 20}], got {args.max_frame_bytes}")
    return ServerSettings(host=args.host, port=args.port, api_key=args.api_key or None,
                          allowed_origins=tuple(args.allowed_origin), max_frame_bytes=args.max_frame_bytes,
                          idle_timeout=args.idle_timeout, max_session_seconds=args.max_session_seconds,
                          drain_seconds=args.drain_seconds, options=options,
                          certfile=args.certfile, keyfile=args.keyfile, step_deadline=args.step_deadline)


def load_engine(args: argparse.Namespace):
    """(engine, {kind: name}): the names of the model and aligner loaded, as sessions are told them."""
    import torch

    from .decoder.loading import choose, load_aligner, load_model
    from .streaming import Engine

    if args.threads:
        torch.set_num_threads(args.threads)
    chosen, warning = choose({"asr": args.model} | ({} if args.no_aligner else {"aligner": args.aligner}))
    if warning:
        log.warning(warning)
    model = load_model(chosen["asr"][1], device=args.device, dtype=args.dtype, quantize=args.quantize)
    aligner = None if args.no_aligner else load_aligner(chosen["aligner"][1], device=args.device, dtype=args.dtype)
    return Engine(model, aligner, max_sessions=args.max_sessions), {kind: name for kind, (name, _) in chosen.items()}


async def serve_until_signal(args: argparse.Namespace, settings) -> int:
    from .protocol.server import Server

    server = Server(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loading = asyncio.create_task(asyncio.to_thread(load_engine, args))
    await asyncio.wait([loading, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    if loading.done():
        if loading.exception() is not None:
            await server.stop()
            raise loading.exception()
        engine, names = loading.result()
        settings.model_name = names["asr"]  # session.created names it: never a cache path
        server.attach(engine)
        log.info("ready: model %s%s", names["asr"], f", aligner {names['aligner']}" if "aligner" in names else "")
        await stop.wait()
    log.info("shutting down: draining %d sessions", len(server.connections))
    await server.drain()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asrstream.websockets").setLevel(max(logging.WARNING, logging.getLogger().level))
    settings = settings_from(args)
    try:
        import uvloop
    except ImportError:  # Windows: the default loop
        return asyncio.run(serve_until_signal(args, settings))
    return uvloop.run(serve_until_signal(args, settings))
