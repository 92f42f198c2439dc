"""Bring a large checkpoint back from a lent GPU machine, whose calls return at most 8 files of
16 MiB and 64 MiB in all: VGG-19's fp16 weights (82 MiB) do not fit, its int8 ones do.

    python -m bench.gpu.pack_weights pack CKPT OUTDIR/NAME      # there: NAME.part0, NAME.part1, ...
    python -m bench.gpu.pack_weights unpack OUT.pt NAME.part*   # here: an ordinary checkpoint

Weight matrices and kernels with more than 4,096 values are stored as int8 with one fp32 scale
per output row (symmetric, max-abs), everything else as fp16. Unpacking widens them back and
writes a checkpoint that drr-eval, drr-predict and the app load as any other; its meta says
"weights": "int8 per-channel", so figures measured on it can be told from the original's.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

from model.checkpoint import CheckpointError, model_from_blob, read_checkpoint, save_checkpoint

PART_BYTES = 15 * 2**20
MIN_QUANTISED = 4096


def quantise(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """int8 rows + per-row scales for large float tensors, fp16 for the rest."""
    packed: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        value = value.detach().cpu()
        if value.is_floating_point() and value.dim() >= 2 and value.numel() > MIN_QUANTISED:
            rows = value.float().reshape(value.shape[0], -1)
            scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            packed[name + ".int8"] = torch.round(rows / scale[:, None]).to(torch.int8).reshape(value.shape)
            packed[name + ".scale"] = scale
        else:
            packed[name] = value.half() if value.is_floating_point() else value
    return packed


def dequantise(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for name, value in packed.items():
        if name.endswith(".scale"):
            continue
        if name.endswith(".int8"):
            base = name[: -len(".int8")]
            scale = packed[base + ".scale"]
            state[base] = (value.float().reshape(value.shape[0], -1) * scale[:, None]).reshape(value.shape)
        else:
            state[name] = value.float() if value.is_floating_point() else value
    return state


def pack(checkpoint: str, prefix: str) -> list[Path]:
    blob = read_checkpoint(checkpoint)
    out = {"format": blob["format"], "version": blob["version"], "config": blob["config"],
           "meta": blob.get("meta", {}), "packed": quantise(blob["state_dict"])}
    buffer = io.BytesIO()
    torch.save(out, buffer)
    data = buffer.getvalue()
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, len(data), PART_BYTES):
        part = Path(f"{prefix}.part{i // PART_BYTES}")
        part.write_bytes(data[i:i + PART_BYTES])
        parts.append(part)
    return parts


def unpack(out: str, parts: list[str]) -> None:
    ordered = sorted(parts, key=lambda p: int(p.rsplit(".part", 1)[1]))
    blob = torch.load(io.BytesIO(b"".join(Path(p).read_bytes() for p in ordered)), weights_only=True)
    full = {"config": blob["config"], "state_dict": dequantise(blob["packed"])}
    model = model_from_blob(full, ordered[0])  # checks the architecture against the weights
    meta = {**blob["meta"], "weights": "int8 per-channel", "unpacked_from": [Path(p).name for p in ordered]}
    save_checkpoint(out, model, meta, half=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu.pack_weights", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("checkpoint")
    p.add_argument("prefix")
    u = sub.add_parser("unpack")
    u.add_argument("out")
    u.add_argument("parts", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.command == "pack":
            for part in pack(a.checkpoint, a.prefix):
                print(f"pack_weights: wrote {part} ({part.stat().st_size / 2**20:.1f} MiB)")
        else:
            unpack(a.out, a.parts)
            print(f"pack_weights: wrote {a.out}")
    except (CheckpointError, OSError, KeyError, ValueError) as exc:
        print(f"pack_weights: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
