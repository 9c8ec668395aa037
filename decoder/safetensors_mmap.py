"""Zero-copy reading of safetensors files.

The file is memory-mapped copy-on-write and each tensor is a view of its bytes (`torch.frombuffer`),
so loading a checkpoint in its own dtype costs page faults, not a read plus a copy. Tensors that
must change dtype are converted one at a time.
"""
from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


def read_header(buf) -> tuple[dict, int]:
    """(tensor entries, offset of the data section) of a safetensors buffer."""
    if len(buf) < 8:
        raise ValueError("file is too short to be safetensors")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        raise ValueError("header length runs past the end of the file")
    header = json.loads(bytes(buf[8 : 8 + n]))
    header.pop("__metadata__", None)
    return header, 8 + n


def open_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of one safetensors file, as views of a private memory map."""
    with open(path, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    try:
        header, base = read_header(buf)
        out = {}
        for name, e in header.items():
            dtype = DTYPES[e["dtype"]]
            start, end = e["data_offsets"]
            count = (end - start) // torch.empty((), dtype=dtype).element_size()
            t = torch.frombuffer(buf, dtype=dtype, count=count, offset=base + start) if count else \
                torch.empty(0, dtype=dtype)
            out[name] = t.view(e["shape"])
        return out
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise RuntimeError(f"{path} is not a valid safetensors file: {e}") from None
