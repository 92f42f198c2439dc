"""Where the shipped files are: the package `drr_resources` (the checkout's resources/ folder,
mapped in pyproject.toml), found through importlib.resources in a checkout, an editable
install or an installed wheel alike."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_WEIGHTS = "drr_default.pt"
# the same recipe trained without the validation faces (resources/val_split.txt): the model whose
# figures on those faces are held out, and whose residuals build the shipped model's statistics
HELDOUT_WEIGHTS = "drr_heldout.pt"
DETECTOR = "face_detection_yunet_2023mar.onnx"
SAMPLE = "astronaut.png"
VAL_SPLIT = "val_split.txt"


def resource(name: str) -> Path:
    """Path of a shipped file (it may not exist: callers say which one is missing)."""
    return Path(str(files("drr_resources") / name))
