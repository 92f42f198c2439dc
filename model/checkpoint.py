"""Versioned checkpoints: config + weights + candidate shapes + metadata in one file.

Loading uses torch.load(weights_only=True), so a file from a stranger cannot run code, and any
mismatch (another architecture, another format, not a checkpoint) becomes a one-line error.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .config import DRRConfig
from .network import DRR

FORMAT = "drr-studio-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


def save_checkpoint(path: str | Path, model: DRR, meta: dict | None = None, extra: dict | None = None,
                    half: bool = False) -> None:
    """Write atomically (temp file + rename). half=True stores float weights as fp16 (small
    files to ship); they are widened back to fp32 on load."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "version": VERSION, "config": model.cfg.to_dict(), "state_dict": state,
            "meta": meta or {}}
    if extra:
        blob.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(blob, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _why_unreadable(exc: Exception) -> str:
    """One whole sentence on why torch.load refused a file (its own message runs to a page)."""
    text = str(exc)
    if "GLOBAL" in text or "Unsupported global" in text:
        return "it holds pickled Python objects or code, which are never loaded: only weights are"
    if "Weights only load failed" in text or "zip" in text.lower() or "central directory" in text or "EOF" in text:
        return "the file is truncated, corrupt or not a PyTorch file"
    first = text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
    return first if len(first) <= 160 else first[:160].rsplit(" ", 1)[0] + " …"


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling/zip failure means: not a checkpoint of ours
        raise CheckpointError(f"{path}: not a DRR Studio checkpoint ({_why_unreadable(exc)})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a DRR Studio checkpoint (no '{FORMAT}' header)")
    if blob.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {blob.get('version')} is not supported (expected {VERSION})")
    return blob


def load_checkpoint(path: str | Path, expect: DRRConfig | None = None) -> tuple[DRR, dict]:
    """Rebuild the network from a checkpoint; returns (model in eval mode, the whole blob)."""
    blob = read_checkpoint(path)
    return model_from_blob(blob, path, expect), blob


def model_from_blob(blob: dict, path: str | Path, expect: DRRConfig | None = None) -> DRR:
    """The network (eval mode) of a checkpoint's contents; path names it in the messages."""
    try:
        cfg = DRRConfig.from_dict(dict(blob["config"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: bad configuration in checkpoint ({exc})") from None
    if expect is not None and cfg.to_dict() != expect.to_dict():
        diff = {k: (v, expect.to_dict()[k]) for k, v in cfg.to_dict().items() if expect.to_dict()[k] != v}
        raise CheckpointError(f"{path}: architecture differs from the expected one: {diff}")
    model = DRR(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shapes differ: another width, point count, ...
        raise CheckpointError(f"{path}: weights do not match the architecture ({str(exc).splitlines()[-1].strip()[:120]})") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the architecture "
                              f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model.eval()
