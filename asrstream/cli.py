"""The `asrstream` command line: transcribe files, serve streams (serve.py), stream a file or the
microphone to a server (clients/cli.py), train (train.py), synthesise a training corpus
(corpus.py), make test checkpoints.

Every failure a user can cause (bad file, bad option, missing model) ends with one line on stderr
and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .clients.cli import add_mic, add_stream
from .corpus import add_corpus
from .serve import add_serve
from .train import add_train

FORMATS = ("text", "json", "srt", "vtt")
EXIT_ERROR = 1


def add_transcribe(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files offline")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (any format soundfile reads)")
    p.add_argument("--model", default=None, help="checkpoint directory, hub id or tiny-en (default Qwen/Qwen3-ASR-0.6B; "
                   "the bundled tiny-en where that is neither cached nor downloadable)")
    p.add_argument("--aligner", default=None, help="forced-aligner checkpoint for word timestamps (or tiny-en)")
    p.add_argument("--language", default=None, help="force the language (e.g. English); default: detect")
    p.add_argument("--context", default="", help="context text to bias recognition (names, terms)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="write FILE.<format> into this directory instead of printing")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="auto", help="float32, bfloat16, float16 or auto (checkpoint's)")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="int8: dynamic int8 decoder weights (CPU, float32; faster decoding)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--batch-size", type=int, default=4, help="pieces of a long file decoded together")
    p.add_argument("--max-new-tokens", type=int, default=512, help="token limit per decoded piece")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_transcribe)


def _progress(quiet: bool):
    if quiet:
        return None, None
    from tqdm import tqdm

    bar: dict = {}

    def update(done: int, total: int) -> None:
        if total < 2:
            return
        if "b" not in bar:
            bar["b"] = tqdm(total=total, unit="piece", file=sys.stderr, leave=False)
        bar["b"].update(done - bar["b"].n)

    return update, bar


def render(result: dict, fmt: str) -> str:
    from .protocol import formats

    words = [formats.Word(w["word"], w["start"], w["end"]) for w in result["words"]]
    segments = formats.segments_from_words(words, result["text"], duration=result["duration"])
    if fmt == "json":
        return formats.to_json({**result, "segments": segments})
    if fmt == "srt":
        return formats.to_srt(segments)
    if fmt == "vtt":
        return formats.to_vtt(segments)
    return formats.to_text(result)


def run_transcribe(args: argparse.Namespace) -> int:
    import torch

    from .decoder.generate import DecodingOptions
    from .decoder.loading import choose, load_aligner, load_model
    from .encoder.audio import load_audio

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.output_dir is None and len(args.files) > 1 and args.format != "text":
        raise ValueError(f"--format {args.format} with several files needs --output-dir")
    options = DecodingOptions(max_new_tokens=args.max_new_tokens)
    wavs = [(Path(f), load_audio(f)) for f in args.files]  # check every file before loading a model
    chosen, warning = choose({"asr": args.model} | ({"aligner": args.aligner} if args.aligner else {}))
    if warning:
        print(f"asrstream: warning: {warning}", file=sys.stderr)
    model = load_model(chosen["asr"][1], device=args.device, dtype=args.dtype, quantize=args.quantize)
    if args.language:
        from .decoder.prompt import normalize_language

        normalize_language(args.language, model.languages)
    aligner = load_aligner(chosen["aligner"][1], device=args.device, dtype=args.dtype) if args.aligner else None
    for path, wav in wavs:
        update, bar = _progress(args.quiet)
        res = model.transcribe(wav, language=args.language, context=args.context, aligner=aligner,
                               options=options, batch_size=args.batch_size, progress=update)
        if bar and "b" in bar:
            bar["b"].close()
        out = render(res.to_dict(), args.format)
        emit(out, path, args)
    return 0


def emit(out: str, path: Path, args: argparse.Namespace) -> None:
    if args.output_dir is None:
        if len(args.files) > 1:
            sys.stdout.write(f"==> {path} <==\n")
        sys.stdout.write(out)
        return
    args.output_dir.mkdir(parents=True, exist_ok=True)
    ext = {"text": "txt"}.get(args.format, args.format)
    (args.output_dir / f"{path.stem}.{ext}").write_text(out, encoding="utf-8")


def add_make_test_model(sub) -> None:
    p = sub.add_parser("make-test-model", help="write a random-weight checkpoint in the released layout")
    p.add_argument("dir", help="output directory")
    p.add_argument("--kind", choices=("asr", "aligner"), default="asr")
    p.add_argument("--size", choices=("tiny", "0.6b", "1.7b"), default="tiny",
                   help="tiny for tests; 0.6b / 1.7b carry the released dimensions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.add_argument("--shard-max-bytes", type=int, default=None, help="write sharded safetensors")
    p.set_defaults(func=run_make_test_model)


def run_make_test_model(args: argparse.Namespace) -> int:
    from .testmodel import make_test_model

    print(make_test_model(args.dir, args.kind, args.size, args.seed, dtype=args.dtype,
                          shard_max_bytes=args.shard_max_bytes))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asrstream", description="Streaming speech recognition for Qwen3-ASR")
    sub = p.add_subparsers(dest="command", required=True)
    add_transcribe(sub)
    add_serve(sub)
    add_stream(sub)
    add_mic(sub)
    add_train(sub)
    add_corpus(sub)
    add_make_test_model(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("asrstream: interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as e:
        print(f"asrstream: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
