"""Landmark error measures of the paper: NME by inter-pupil / inter-ocular distance, CED, AUC."""

from __future__ import annotations

import numpy as np

from .layout import Layout

# A face whose mirror-averaged prediction has its two passes further apart than this (% of the
# eye-centre distance) is flagged for review. On the validation split, as the app runs
# (`python -m bench.uncertainty`), it flagged 19 of 188 faces, 6 of the 14 failures among them
# (inter-pupil NME > 8%); mean NME 7.5% flagged, 5.0% not.
REVIEW_MIRROR_GAP = 5.0


def normaliser(gt: np.ndarray, layout: Layout, kind: str = "inter-pupil") -> np.ndarray:
    """Per-face distance D for (n, p, 2) ground truth: between the eye centres (inter-pupil) or
    the outer eye corners (inter-ocular)."""
    gt = np.asarray(gt, dtype=np.float64)
    if kind == "inter-pupil":
        a = gt[:, list(layout.right_eye)].mean(1)
        b = gt[:, list(layout.left_eye)].mean(1)
    elif kind == "inter-ocular":
        a, b = gt[:, layout.right_outer_corner], gt[:, layout.left_outer_corner]
    else:
        raise ValueError(f"unknown normalisation {kind!r}")
    return np.maximum(np.linalg.norm(a - b, axis=-1), 1e-6)


def nme(pred: np.ndarray, gt: np.ndarray, layout: Layout, kind: str = "inter-pupil") -> np.ndarray:
    """Per-face mean point-to-point error divided by D, (n,)."""
    err = np.linalg.norm(np.asarray(pred, dtype=np.float64) - gt, axis=-1).mean(-1)
    return err / normaliser(gt, layout, kind)


def ced(errors: np.ndarray, limit: float = 0.08, bins: int = 161) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds and fraction of faces with error <= threshold."""
    x = np.linspace(0.0, limit, bins)
    e = np.sort(np.asarray(errors))
    return x, np.searchsorted(e, x, side="right") / max(len(e), 1)


def auc(errors: np.ndarray, limit: float = 0.08) -> float:
    """Area under the CED curve up to `limit`, normalised to [0, 1]."""
    x, y = ced(errors, limit, bins=1001)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / limit)


def failure_rate(errors: np.ndarray, limit: float = 0.08) -> float:
    return float(np.mean(np.asarray(errors) > limit)) if len(errors) else float("nan")


def jitter(pred: np.ndarray, gt: np.ndarray, layout: Layout, kind: str = "inter-ocular") -> np.ndarray:
    """Video: per pair of consecutive frames of one face ((n, p, 2) each, in frame order), the
    mean change of the error vector (prediction - truth) over the points, divided by D; (n - 1,).
    A steady error (a constant offset) is no jitter, a flickering one is."""
    err = np.asarray(pred, dtype=np.float64) - np.asarray(gt, dtype=np.float64)
    step = np.linalg.norm(np.diff(err, axis=0), axis=-1).mean(-1)
    return step / normaliser(np.asarray(gt)[1:], layout, kind)
