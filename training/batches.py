"""Length-bucketed batches, reproducible from (seed, epoch).

Examples are sorted by duration and cut into batches of at most `batch_seconds` of audio (and at
most `max_batch` examples), so a batch holds utterances of similar length and little compute is
spent on any one long outlier; the batch order is shuffled per epoch with a generator seeded by
(seed, epoch). A position is (epoch, batch index): saving it is enough to resume exactly.
"""
from __future__ import annotations

import numpy as np

from .manifest import Example


def make_batches(examples: list[Example], batch_seconds: float, max_batch: int, seed: int, epoch: int) -> list[list[int]]:
    """Indices into `examples`, one list per batch, in this epoch's order."""
    if batch_seconds <= 0 or max_batch < 1:
        raise ValueError(f"batch_seconds must be > 0 and max_batch >= 1, got {batch_seconds}, {max_batch}")
    rng = np.random.default_rng([seed, epoch])
    jitter = rng.uniform(0.0, 0.1, len(examples))  # equal lengths land in different batches each epoch
    order = sorted(range(len(examples)), key=lambda i: (examples[i].duration + jitter[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    total = 0.0
    for i in order:
        d = examples[i].duration
        if cur and (total + d > batch_seconds or len(cur) == max_batch):
            batches.append(cur)
            cur, total = [], 0.0
        cur.append(i)
        total += d
    if cur:
        batches.append(cur)
    return [batches[k] for k in rng.permutation(len(batches))]
