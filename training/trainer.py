"""The training loop: length-bucketed batches, bf16 autocast, AdamW with warm-up and cosine decay,
gradient accumulation and clipping, resumable checkpoints, held-out evaluation, progress and log.

Layout of the output folder:
    <out>/last/      the latest checkpoint (float32 weights + training_state.pt): `--resume` goes on from it
    <out>/model/     the exported model (save_dtype), written at the end: load it with load_model/load_aligner
    <out>/train.log  one line per `log_every` steps and per evaluation
"""
from __future__ import annotations

import logging
import math
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..decoder.loading import load_net, read_config, resolve
from ..encoder.audio import load_audio
from .augment import Augmented, augment, example_rng, mask_features
from .batches import make_batches
from .checkpoint import load_state, save_checkpoint
from .evaluate import evaluate
from .manifest import Example
from .objective import aligner_target, asr_frames, asr_target, batch_loss
from .options import TrainOptions

log = logging.getLogger("asrstream.train")


class Trainer:
    def __init__(self, model: str | Path, out: Path, train: list[Example], held_out: list[Example],
                 opts: TrainOptions, device: str = "cpu", resume: bool = False, ctc_head_from: Path | None = None):
        self.out, self.train_set, self.held_out, self.opts = Path(out), train, held_out, opts
        self.device = torch.device(device)
        start = self.out / "last" if resume else resolve(model)
        self.cfg = read_config(start)
        self.files_from = start
        self.net = trainable(load_net(start, self.cfg, torch.float32, self.device), opts.freeze)
        self.helper = _helper(start, self.cfg, self.net)  # prompter, mel, and inference for evaluation
        self.ctc_head = _ctc_head(self.cfg, opts, self.device, ctc_head_from)
        self._sigma = _time_sigma(self.cfg, opts)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        if self.ctc_head is not None:
            self.params += list(self.ctc_head.parameters())
        self.optimizer = torch.optim.AdamW([{"params": [p for p in self.params if p.dim() > 1]},
                                            {"params": [p for p in self.params if p.dim() <= 1], "weight_decay": 0.0}],
                                           lr=opts.lr, betas=opts.betas, weight_decay=opts.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step, self.epoch, self.index = 0, 0, 0
        self._batches: list[list[int]] | None = None
        self._pool = ThreadPoolExecutor(opts.workers) if opts.workers > 1 else None
        if resume:
            self._restore(load_state(start))

    # -- schedule ----------------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        o = self.opts
        if step < o.warmup_steps:
            return (step + 1) / (o.warmup_steps + 1)
        t = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    # -- data ----------------------------------------------------------------------------------------
    def _next_batch(self) -> tuple[list[int], int]:
        if self._batches is None:
            o = self.opts
            self._batches = make_batches(self.train_set, o.batch_seconds, o.max_batch, o.seed, self.epoch)
        if self.index == len(self._batches):
            self.epoch, self.index, self._batches = self.epoch + 1, 0, None
            return self._next_batch()
        self.index += 1
        return self._batches[self.index - 1], self.epoch

    def _prepare(self, idx: list[int], epoch: int):
        """(mels, target maker, audio seconds) of a batch, augmented for this epoch."""
        exs = [self.train_set[i] for i in idx]

        def one(k: int) -> Augmented:
            # read from disk each time (the OS caches the files): held decoded (4 bytes a sample), a corpus
            # outgrows memory, 17 GiB for 78 h
            return augment(load_audio(exs[k].audio), self.opts.augment, example_rng(self.opts.seed, epoch, idx[k]))

        done = list(self._pool.map(one, range(len(idx))) if self._pool else map(one, range(len(idx))))
        mels = [mask_features(self.helper.mel(a.wav, a.warp), a.masks) for a in done]
        p, cfg = self.helper.prompter, self.cfg
        if cfg.is_aligner:
            def make(k, n):
                return aligner_target(p, cfg, n, list(exs[k].words), done[k].speed, done[k].lead)
        else:
            def make(k, n):
                t = asr_target(p, cfg.eos_token_ids, n, exs[k].text, exs[k].language)
                if self.opts.frame_weight:
                    t.frames = asr_frames(p, cfg.audio, n, exs[k].text, exs[k].words, done[k].speed, done[k].lead,
                                          cfg.text.vocab_size)
                return t
        return mels, make, sum(m.shape[1] for m in mels) / 100.0

    # -- one optimizer step ------------------------------------------------------------------------
    def train_step(self) -> dict:
        o, t0 = self.opts, time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        losses, seconds = [], 0.0
        for _ in range(o.grad_accum):
            mels, make, secs = self._prepare(*self._next_batch())
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=o.bf16):
                loss = batch_loss(self.net, mels, make, self.ctc_head, o.ctc_weight, o.frame_weight, self._sigma)
            (loss / o.grad_accum).backward()
            losses.append(loss.item())
            seconds += secs
        norm = torch.nn.utils.clip_grad_norm_(self.params, o.clip_norm if o.clip_norm else float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        dt = time.perf_counter() - t0
        return {"loss": float(np.mean(losses)), "lr": self.scheduler.get_last_lr()[0], "grad_norm": float(norm),
                "audio_seconds": seconds, "seconds": dt}

    # -- the run -------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train to `opts.steps`, evaluating and saving on schedule; export <out>/model. Returns the
        last evaluation (or {} without a held-out set)."""
        o, result = self.opts, {}
        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=o.steps, initial=self.step, unit="step", dynamic_ncols=True)
        started, audio = time.perf_counter(), 0.0
        while self.step < o.steps:
            s = self.train_step()
            audio += s["audio_seconds"]
            speed = audio / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{s['loss']:.3f}", lr=f"{s['lr']:.2e}", audio_s_per_s=f"{speed:.1f}")
            bar.update(1)
            if self.step % o.log_every == 0 or self.step == o.steps:
                log.info("step %d loss %.4f lr %.3e grad_norm %.3f audio %.1f s/s", self.step, s["loss"], s["lr"],
                         s["grad_norm"], speed)
            if o.eval_every and self.step % o.eval_every == 0 and self.step < o.steps:
                result = self.evaluate()
            if self.step % o.save_every == 0 or self.step == o.steps:
                self.save_last()
        bar.close()
        result = self.evaluate() or result
        save_checkpoint(self.net, self.cfg, self.files_from, self.out / "model", getattr(torch, o.save_dtype))
        return result

    def evaluate(self) -> dict:
        if not self.held_out:
            return {}
        self.net.eval()
        try:
            result = evaluate(self.helper, self.held_out, self.opts.eval_max_new_tokens, self.ctc_head)
        finally:
            self.net.train()
        log.info("step %d eval %s", self.step, " ".join(f"{k} {v:.4g}" for k, v in result.items()))
        return result

    def save_last(self) -> None:
        state = {"step": self.step, "epoch": self.epoch, "index": self.index,
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "options": {"seed": self.opts.seed, "steps": self.opts.steps}}
        if self.ctc_head is not None:
            state["ctc_head"] = self.ctc_head.state_dict()
        save_checkpoint(self.net, self.cfg, self.files_from, self.out / "last", torch.float32, state)
        self.files_from = self.out / "last"

    def _restore(self, state: dict) -> None:
        if ("ctc_head" in state) != (self.ctc_head is not None):
            trained = "with" if "ctc_head" in state else "without"
            raise ValueError(f"the checkpoint to resume was trained {trained} --ctc-weight; resume with the same options")
        self.step, self.epoch, self.index = state["step"], state["epoch"], state["index"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ctc_head is not None:
            self.ctc_head.load_state_dict(state["ctc_head"])


def _ctc_head(cfg, opts: TrainOptions, device, source: Path | None = None) -> torch.nn.Linear | None:
    """The run's CTC head when `opts.ctc_weight` asks for one (see `ctc_head`)."""
    if not opts.ctc_weight:
        if source is not None:
            raise ValueError("a CTC head to start from needs --ctc-weight > 0")
        return None
    return ctc_head(cfg, opts.seed, source).to(device)


def _time_sigma(cfg, opts: TrainOptions) -> float:
    """opts.time_sigma_ms in the aligner's time classes (0: one-hot targets)."""
    if opts.time_sigma_ms and not cfg.is_aligner:
        raise ValueError("time_sigma_ms applies to aligner checkpoints; an ASR model has no time classes")
    return opts.time_sigma_ms / cfg.timestamp_segment_time if cfg.is_aligner else 0.0


def ctc_head(cfg, seed: int = 0, source: Path | None = None) -> torch.nn.Linear:
    """The training-only CTC head (see objective.py): encoder output -> vocabulary + blank; fresh from
    `seed`, or the one a previous run saved (`source`: a file with a "ctc_head" entry, such as <out>/last's
    training_state.pt), so a warm start from that run's exported model keeps its CTC head."""
    if cfg.is_aligner:
        raise ValueError("ctc_weight applies to ASR checkpoints; an aligner has no transcript head to help")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = torch.nn.Linear(cfg.audio.output_dim, cfg.text.vocab_size + 1)
    if source is None:
        return head
    if not Path(source).is_file():
        raise ValueError(f"no CTC head to start from: {source} is not a file")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise ValueError(f"{source} is not a torch file with a CTC head ({type(e).__name__})") from None
    if not isinstance(state, dict) or "ctc_head" not in state:
        raise ValueError(f"{source} holds no CTC head (a training_state.pt of a run with --ctc-weight does)")
    try:
        head.load_state_dict(state["ctc_head"])
    except RuntimeError:
        raise ValueError(f"the CTC head in {source} does not fit this checkpoint's encoder and vocabulary") from None
    return head


def trainable(net, freeze: str):
    """Own, writable float32 parameters (loading maps the file read-only), in training mode."""
    with torch.no_grad():
        for p in net.parameters():
            p.data = p.data.clone()
    net.train().requires_grad_(True)
    if freeze == "encoder":
        net.thinker.audio_tower.requires_grad_(False)
    elif freeze == "decoder":
        net.thinker.model.requires_grad_(False)
        net.thinker.lm_head.requires_grad_(False)
    return net


def _helper(path: Path, cfg, net):
    if cfg.is_aligner:
        from ..decoder.aligner import ForcedAligner
        return ForcedAligner(path, cfg, net)
    from ..decoder.asr import ASRModel
    return ASRModel(path, cfg, net)
