"""Time repair_monotonic against the reference qwen_asr timestamp fix (O(n^2)) and check they agree.

Usage: python benchmarks/bench_words.py [N ...]   (default: 2000 10000)
Prints one line per size: seconds for ours, seconds for the reference (if qwen_asr imports), equality.
"""
from __future__ import annotations

import importlib
import random
import sys
import time
import types

from asrstream.decoder.words import repair_monotonic


def realistic(n: int, seed: int = 0) -> list[float]:
    """Times rising in 80 ms classes with about one outlier in ten, like aligner output."""
    rng = random.Random(seed)
    t, out = 0, []
    for _ in range(n):
        t += rng.randint(0, 3)
        out.append(80.0 * (t if rng.random() > 0.1 else rng.randint(0, 2 * t + 5)))
    return out


def reference_fix():
    """The reference's fix_timestamp, or None; a stub nagisa stands in if the real one cannot import."""
    try:
        importlib.import_module("nagisa")
    except ImportError:
        sys.modules["nagisa"] = types.ModuleType("nagisa")
    try:
        import numpy as np
        from qwen_asr.inference.qwen3_forced_aligner import Qwen3ForceAlignProcessor
    except ImportError:
        return None
    processor = Qwen3ForceAlignProcessor()
    return lambda values: processor.fix_timestamp(np.array(values))


def timed(fn, values):
    t0 = time.perf_counter()
    out = fn(values)
    return out, time.perf_counter() - t0


def main(sizes: list[int]) -> None:
    ref = reference_fix()
    for n in sizes:
        values = realistic(n)
        ours, t_ours = timed(repair_monotonic, values)
        line = f"n={n:>6}  asrstream {t_ours * 1e3:9.1f} ms"
        if ref is not None:
            theirs, t_ref = timed(ref, values)
            line += f"  reference {t_ref * 1e3:10.1f} ms  equal={ours == theirs}"
        print(line)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 10000])
