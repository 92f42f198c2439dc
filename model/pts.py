"""iBUG .pts files: read and write, with 1-based coordinates on disk and 0-based in memory.

In memory every shape is an (n, 2) float array of 0-based pixel-centre coordinates (the centre
of the top-left pixel is (0, 0)). On disk the 300-W convention puts that centre at (1, 1).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np


class PtsError(ValueError):
    """A .pts file that cannot be used; the message names the file and what is wrong."""


def read_pts(path: str | Path, expected_points: int | None = None) -> np.ndarray:
    """Read an iBUG .pts file into an (n, 2) array of 0-based coordinates."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise PtsError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    declared = None
    body: list[str] = []
    try:
        start = lines.index("{")
        end = lines.index("}", start)
    except ValueError:
        raise PtsError(f"{path}: not an iBUG .pts file (missing '{{' or '}}')") from None
    for ln in lines[:start]:
        if ln.lower().startswith("n_points"):
            try:
                declared = int(ln.split(":", 1)[1])
            except (IndexError, ValueError):
                raise PtsError(f"{path}: bad n_points line {ln!r}") from None
    body = lines[start + 1 : end]
    points = []
    for k, ln in enumerate(body, 1):
        parts = ln.split()
        if len(parts) != 2:
            raise PtsError(f"{path}: point {k} is {ln!r}, expected two numbers")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise PtsError(f"{path}: point {k} is {ln!r}, not numbers") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PtsError(f"{path}: point {k} is {ln!r}, not a finite number")
        points.append((x - 1.0, y - 1.0))
    if not points:
        raise PtsError(f"{path}: no points between the braces")
    if declared is not None and declared != len(points):
        raise PtsError(f"{path}: header says n_points {declared} but the file has {len(points)}")
    if expected_points is not None and len(points) != expected_points:
        raise PtsError(f"{path}: has {len(points)} points, expected {expected_points}")
    return np.asarray(points, dtype=np.float64)


def format_pts(points: np.ndarray) -> str:
    pts = np.asarray(points, dtype=np.float64)
    lines = ["version: 1", f"n_points: {len(pts)}", "{"]
    lines += [f"{x + 1.0:.3f} {y + 1.0:.3f}" for x, y in pts]
    lines.append("}")
    return "\n".join(lines) + "\n"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename, so no reader ever sees
    half a file and a crash leaves the old file intact."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # a full disk fails in write() or fsync(), which name no file: name the one being written
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write 0-based points as a 1-based iBUG .pts file, atomically."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise PtsError(f"{path}: refusing to write points of shape {pts.shape} or non-finite values")
    atomic_write_text(path, format_pts(pts))
