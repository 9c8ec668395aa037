"""CUDA checks and figures, for a lent GPU machine (runs on CPU too, as a dry run: --device cpu).

1. Correctness on the device against float32 on the CPU, tiny random checkpoints built here:
   encoder output relative error, offline token ids, aligner word times, and the streaming engine's
   offline finals equal to `transcribe` of their span on the same device.
2. The server over real sockets on the device (bench_server.py) with a `--size 0.6b` random
   checkpoint in bf16: sessions sustained in real time, endpoint->final, loop lag, memory.

    python benchmarks/gpu_check.py --audio speech.wav --sessions 8 16 32
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from asrstream import load_aligner, load_model
from asrstream.decoder.generate import DecodingOptions
from asrstream.encoder.audio import load_audio
from asrstream.streaming.engine import Engine
from asrstream.streaming.events import Final
from asrstream.streaming.options import StreamOptions
from asrstream.testmodel import make_test_model

HERE = Path(__file__).resolve().parent
NEW = 40


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm())


def encoder_error(cpu, dev, wav) -> float:
    ref = cpu.encode_audio([wav])[0]
    return rel(dev.encode_audio([wav])[0], ref)


async def stream_finals(model, wav) -> list[Final]:
    engine = Engine(model)
    try:
        s = engine.open_session(StreamOptions(max_new_tokens=NEW, max_tokens_per_second=None, word_timestamps=False))
        for i in range(0, len(wav), 1600):
            await s.feed(wav[i : i + 1600])
        s.close()
        return [e async for e in s if isinstance(e, Final)]
    finally:
        engine.shutdown()


def correctness(device: str, wav: np.ndarray) -> dict:
    """Each check reports its figure, or its error (the others still run)."""
    tmp = Path(tempfile.mkdtemp())
    asr, al = make_test_model(tmp / "asr", "asr", "tiny", seed=0), make_test_model(tmp / "al", "aligner", "tiny", seed=0)
    cpu, dev = load_model(str(asr), dtype="float32"), load_model(str(asr), device=device, dtype="float32")
    half = load_model(str(asr), device=device, dtype="bfloat16")
    opts = DecodingOptions(max_new_tokens=NEW)
    ref = cpu.transcribe(wav, options=opts).token_ids

    def offline():
        ids = dev.transcribe(wav, options=opts).token_ids
        return {"equal_cpu_fp32": ids == ref,
                "first_diff": next((i for i, (a, b) in enumerate(zip(ids, ref)) if a != b), None)}

    def aligner():
        text = "the quick brown fox jumps over the lazy dog"
        w_cpu = load_aligner(str(al), dtype="float32").align(wav[:80000], text, "English")
        w_dev = load_aligner(str(al), device=device, dtype="float32").align(wav[:80000], text, "English")
        return max(abs(a[k] - b[k]) for a, b in zip(w_cpu, w_dev) for k in ("start", "end"))

    def streaming():
        finals = asyncio.run(stream_finals(dev, wav))
        same = [f.token_ids == dev.transcribe(wav[round(f.start * 16000) : round(f.end * 16000)], options=opts).token_ids
                for f in finals]
        return {"finals": len(finals), "equal_offline": sum(same)}

    checks = {"encoder_rel_err_fp32": lambda: encoder_error(cpu, dev, wav),
              "encoder_rel_err_bf16": lambda: encoder_error(cpu, half, wav), "offline_fp32": offline,
              "offline_bf16_tokens": lambda: len(half.transcribe(wav, options=opts).token_ids),
              "aligner_max_diff_s": aligner, "streaming_fp32": streaming}
    out = {}
    for name, check in checks.items():
        try:
            out[name] = check()
        except Exception as e:  # report and go on: the lease is short
            out[name] = f"FAILED {type(e).__name__}: {str(e)[:300]}"
            traceback.print_exc()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--sessions", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--skip-bench", action="store_true")
    args = p.parse_args()
    if args.device == "cuda":
        print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)
    wav = load_audio(args.audio)[: 16000 * 20]
    t = time.perf_counter()
    print(json.dumps({"correctness": correctness(args.device, wav), "seconds": round(time.perf_counter() - t, 1)}),
          flush=True)
    if args.skip_bench:
        return
    big = Path(tempfile.mkdtemp()) / "asr-0.6b"
    make_test_model(big, "asr", "0.6b", seed=0, dtype="bfloat16")
    subprocess.run([sys.executable, str(HERE / "bench_server.py"), "--model", str(big), "--audio", args.audio,
                    "--device", args.device, "--dtype", "bfloat16", "--quantize", "", "--seconds", str(args.seconds),
                    "--tail", "15", "--threads", "4", "--sessions", *map(str, args.sessions)], check=True)


if __name__ == "__main__":
    main()
