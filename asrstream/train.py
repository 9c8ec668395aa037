"""`asrstream train`: train or fine-tune a Qwen3-ASR-layout checkpoint (ASR or forced aligner) on a
JSONL manifest (see training/manifest.py). The checkpoint's kind decides what is trained."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from .training.augment import NO_AUGMENT, AugmentOptions
from .training.options import FREEZE, SAVE_DTYPES, TrainOptions


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a checkpoint on a JSONL manifest")
    p.add_argument("--model", required=True, help="checkpoint to start from (directory or hub id)")
    p.add_argument("--train", type=Path, nargs="+", required=True, help="training manifests (JSONL), one or more")
    p.add_argument("--eval", type=Path, default=None, help="held-out manifest: WER (ASR) or boundary error (aligner)")
    p.add_argument("--out", type=Path, required=True, help="output folder: last/ (resumable), model/, train.log")
    p.add_argument("--resume", action="store_true", help="go on from <out>/last")
    p.add_argument("--ctc-head-from", type=Path, default=None, metavar="STATE",
                   help="with --ctc-weight: start the CTC head from a previous run's <out>/last/training_state.pt "
                        "(a warm start from that run's exported model keeps its head)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    defaults = TrainOptions()
    for f in dataclasses.fields(TrainOptions):
        if f.name in ("augment", "betas"):
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            choices = {"freeze": FREEZE, "save_dtype": SAVE_DTYPES}.get(f.name)
            p.add_argument(flag, type=type(value), default=value, choices=choices, help=f"default {value!r}")
    p.add_argument("--no-augment", action="store_true", help="train on the audio as it is")
    p.add_argument("--reverb-prob", type=float, default=0.0, help="share of examples with synthetic reverb")
    p.add_argument("--speeds", type=float, nargs="+", default=AugmentOptions().speeds, metavar="F",
                   help="speed perturbation: one factor drawn per example, word times scaled with it (each "
                        "0.5-2; default 0.9 1.0 1.1)")
    p.add_argument("--vtlp", type=float, default=0.0, metavar="V",
                   help="vocal tract length perturbation: a frequency warp in [1-V, 1+V] per example "
                        "(0-0.3; default 0: off)")
    p.add_argument("--freq-masks", type=int, default=0, metavar="N",
                   help="SpecAugment: N bands of up to 27 mel bins blanked per example (default 0: off)")
    p.add_argument("--time-masks", type=int, default=0, metavar="N",
                   help="SpecAugment: N runs of up to 5%% of the frames blanked per example (default 0: off)")
    p.add_argument("--lead-in", type=float, default=0.0, metavar="S",
                   help="up to S seconds of silence put before each example, so that speech starts anywhere "
                        "in the encoder's 1 s chunks, as in a stream's segments (0-5; default 0: off)")
    p.set_defaults(func=run_train)


def options(args: argparse.Namespace) -> TrainOptions:
    aug = NO_AUGMENT if args.no_augment else AugmentOptions(
        tuple(args.speeds), reverb_prob=args.reverb_prob, vtlp=args.vtlp, freq_masks=args.freq_masks,
        time_masks=args.time_masks, lead_in=args.lead_in)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainOptions)
              if f.name not in ("augment", "betas")}
    return TrainOptions(**values, augment=aug)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from .decoder.loading import read_config, resolve
    from .training.manifest import read_manifest
    from .training.trainer import Trainer

    opts = options(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = args.out / "last" if args.resume else resolve(args.model)
    aligner = read_config(start).is_aligner
    train = [ex for m in args.train for ex in read_manifest(m, need_words=aligner)]
    held_out = read_manifest(args.eval, need_words=aligner) if args.eval else []
    args.out.mkdir(parents=True, exist_ok=True)
    _log_to(args.out / "train.log")
    trainer = Trainer(args.model, args.out, train, held_out, opts, args.device, args.resume, args.ctc_head_from)
    result = trainer.run()
    print(f"model: {args.out / 'model'}" + "".join(f"  {k} {v:.4g}" for k, v in result.items()))
    return 0


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log = logging.getLogger("asrstream.train")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


