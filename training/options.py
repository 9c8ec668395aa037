"""Training knobs, validated in one place (ValueError names the field)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .augment import AugmentOptions

FREEZE = ("", "encoder", "decoder")
SAVE_DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 1000  # optimizer steps in all (a resumed run goes on to the same total)
    lr: float = 1e-4  # peak learning rate
    warmup_steps: int = 100  # linear warm-up from 0, then cosine decay
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.01  # AdamW, on matrices only (not norms or biases)
    betas: tuple[float, float] = (0.9, 0.98)
    grad_accum: int = 1  # batches per optimizer step
    clip_norm: float = 1.0  # gradient norm clipping (0: off)
    batch_seconds: float = 60.0  # audio per batch, at most
    max_batch: int = 16  # examples per batch, at most
    bf16: bool = True  # bfloat16 autocast (AMX on recent CPUs; CUDA); weights and optimizer stay float32
    freeze: str = ""  # "encoder" or "decoder": train only the other part
    ctc_weight: float = 0.0  # ASR: weight of a CTC loss on the encoder's output (training-only head; 0: off)
    frame_weight: float = 0.0  # ASR with ctc_weight: weight of the CTC head's frame loss from word times (frames.py)
    time_sigma_ms: float = 0.0  # aligner: Gaussian targets of this width over the time classes (objective.py; 0: off)
    save_every: int = 200  # steps between resumable checkpoints (<out>/last)
    eval_every: int = 200  # steps between held-out evaluations (0: only at the end)
    log_every: int = 10  # steps between log-file lines
    seed: int = 0  # data order and augmentation
    workers: int = 1  # threads loading and augmenting a batch's examples (the result does not depend on it)
    eval_max_new_tokens: int = 200  # decoding cap when evaluating
    save_dtype: str = "float32"  # dtype of the exported model (<out>/model)
    augment: AugmentOptions = field(default_factory=AugmentOptions)

    def __post_init__(self):
        for name in ("steps", "grad_accum", "max_batch", "save_every", "log_every", "eval_max_new_tokens", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "clip_norm", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1 or self.batch_seconds <= 0:
            raise ValueError("lr and batch_seconds must be > 0 and min_lr_ratio in [0, 1]")
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1), got {self.ctc_weight}")
        if self.frame_weight < 0 or (self.frame_weight and not self.ctc_weight):
            raise ValueError(f"frame_weight must be >= 0 and needs ctc_weight > 0 (it trains the CTC head), "
                             f"got {self.frame_weight}")
        if not 0.0 <= self.time_sigma_ms <= 1000.0:
            raise ValueError(f"time_sigma_ms must be in [0, 1000], got {self.time_sigma_ms}")
        if self.freeze not in FREEZE:
            raise ValueError(f"freeze must be one of {FREEZE}, got {self.freeze!r}")
        if self.save_dtype not in SAVE_DTYPES:
            raise ValueError(f"save_dtype must be one of {SAVE_DTYPES}, got {self.save_dtype!r}")
