"""The bundled tiny-en models' design: `python tools/tiny_en.py init OUT --kind asr|aligner MANIFEST...`
writes a fresh checkpoint (training/fresh.py) with these dimensions and a 1,024-token BPE trained on
the manifests' transcripts. tools/train_tiny_en.sh runs it and the training that follows.

Sizes: encoder 256 wide, 6 layers, 4 heads, FFN 1024, conv channels 64 (the released layout's
windows: 1 s conv chunks, 8 s attention windows); decoder 256 wide, 4 layers, 4 query / 2 key-value
heads of 64, MLP 768. ASR: 8.6 M parameters, tied embeddings; aligner: the same plus an untied head
of 5,000 timestamp classes x 80 ms.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asrstream.training.fresh import make_fresh_model, warm_start

AUDIO = dict(d_model=256, encoder_layers=6, encoder_attention_heads=4, encoder_ffn_dim=1024,
             downsample_hidden_size=64)
TEXT = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, head_dim=64)
BPE_SIZE = 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="tiny-en: make the fresh checkpoint")
    p.add_argument("command", choices=["init"])
    p.add_argument("out", type=Path)
    p.add_argument("manifests", type=Path, nargs="+", help="their transcripts train the BPE")
    p.add_argument("--kind", choices=["asr", "aligner"], default="asr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="warm start from a trained checkpoint of this design (the aligner from the ASR model)")
    args = p.parse_args(argv)
    lines = [json.loads(x)["text"] for m in args.manifests for x in m.read_text(encoding="utf-8").splitlines()
             if x.strip()]
    make_fresh_model(args.out, lines, args.kind, BPE_SIZE, AUDIO, TEXT, args.seed)
    copied = f", {warm_start(args.out, args.source)} tensors from {args.source}" if args.source else ""
    print(f"{args.kind} -> {args.out} ({len(lines)} transcripts{copied})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
