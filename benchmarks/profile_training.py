"""One training step's cost by batch size: operations (torch's profiler, forward and backward) and time,
with the decoder's attention run per row or for all rows in one padded call (training/objective.py's
`Whole` rows; the per-row path is what a KV cache gets).

A fresh checkpoint of the tiny-en design (tools/tiny_en.py) on speech-like noise of 2-6 s per
utterance; both paths alternate, medians of --repeats, so both see the same machine load.

    python benchmarks/profile_training.py --batch 4 16 64 --threads 2 [--device cuda]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tools"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    import numpy as np
    import torch
    from tiny_en import AUDIO, TEXT

    from asrstream.decoder.asr import ASRModel
    from asrstream.decoder.loading import load_net, read_config
    from asrstream.training import objective
    from asrstream.training.fresh import make_fresh_model
    from asrstream.training.trainer import trainable
    from tests.reference import speechlike

    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp()) / "fresh"
    texts = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"] * 20
    make_fresh_model(folder, texts, "asr", 300, AUDIO, TEXT, 0)
    cfg = read_config(folder)
    net = trainable(load_net(folder, cfg, torch.float32, torch.device(args.device)), freeze="")
    helper = ASRModel(folder, cfg, net)
    rng = np.random.default_rng(0)
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f}, device {args.device}")
    for b in args.batch:
        mels = [helper.mel(speechlike(float(rng.uniform(2, 6)), seed=k)) for k in range(b)]
        text = [texts[k % 2] for k in range(b)]

        def make(k, n):
            return objective.asr_target(helper.prompter, cfg.eos_token_ids, n, text[k], "English")

        figures = {}
        for _ in range(args.repeats):
            for padded in (False, True):
                objective.Whole.whole = padded
                figures.setdefault(padded, []).append(_step(net, mels, make, objective.batch_loss))
        objective.Whole.whole = True
        ops = {padded: _ops(net, mels, make, objective.batch_loss, padded) for padded in (False, True)}
        per_row, together = (statistics.median(figures[k]) for k in (False, True))
        print(f"{b:3d} utterances: per-row attention {ops[False]:6d} ops {per_row * 1000:7.0f} ms; "
              f"padded {ops[True]:6d} ops {together * 1000:7.0f} ms ({per_row / together:.2f}x)")


def _step(net, mels, make, loss_fn) -> float:
    import torch

    net.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    loss_fn(net, mels, make).backward()
    if mels[0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _ops(net, mels, make, loss_fn, padded: bool) -> int:
    from torch.profiler import ProfilerActivity, profile

    from asrstream.training import objective

    objective.Whole.whole = padded
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss_fn(net, mels, make).backward()
    objective.Whole.whole = True
    return sum(e.count for e in prof.key_averages())


if __name__ == "__main__":
    main()
