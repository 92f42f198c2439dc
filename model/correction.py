"""Assisted correction: fix one point and the points the model probably got wrong with it follow.

The model's errors on a face are correlated: when a turned face's jaw is drawn too frontal, every
jaw point is off the same way. We model the residual r = truth - prediction of a face as one
Gaussian N(mu, Sigma) over its 2p numbers, written in a frame set by the predicted eyes (origin
irrelevant, x along the eye line, unit = the eye-centre distance) so that faces of any size and
roll share it. When a person places some points (index -> position), their residuals are known,
and every other point moves by the conditional mean of its residual given them:

    r_U = mu_U + Sigma_UO Sigma_OO^-1 (r_O - mu_O)

Placed points stay exactly where the person put them. Sigma is estimated from a finite number of
faces (the held-out model's 1,810 training faces, model.cli.correction), so it is shrunk towards
its diagonal: Sigma_l = (1 - l) Sigma + l diag(Sigma), with l chosen by
`python -m bench.annotator --shrinkage ...`.

Learning: every face a person finishes adds its residual (final points - prediction) to the
statistics, counted `learn_weight` times, so that the mean moves towards this person's
convention (where they put the jaw, the brow ends) and the covariance follows their faces.

File format (JSON, `CorrectionModel.save` / `load`):

    {"format": "drr-correction", "version": 1,
     "num_points": 68, "frame": "eye-centres",
     "count": 1810,                 # faces behind mean and covariance (the prior; 0: no prior,
                                    #   and then no mean or covariance in the file)
     "shrinkage": 0.3, "learn_weight": 1.0,
     "mean": [2p floats],           # x0, y0, x1, y1, ... in the eye frame
     "covariance": [[2p floats] x 2p],
     "model": {"sha256": "...", "name": "..."},   # the checkpoint the prior was measured for
     "source": "how the prior was made",
     "calibration": {"scale": 1.66, ...},           # optional: how the covariance's scale was set
     "learned": {"key": [2p floats], ...}}          # residuals of finished faces, by face key

A folder's learned file has the same format with an empty prior ("count": 0) and only
"learned"; `combined()` adds it to the model's prior.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .layout import layout_for
from .pts import atomic_write_text

FORMAT = "drr-correction"
VERSION = 1
DEFAULT_SHRINKAGE = 0.3
RIDGE = 1e-6  # keeps Sigma_OO invertible when placed points are (nearly) collinear in residual


class CorrectionFileError(ValueError):
    """A statistics file that cannot be used; the message names the file and the problem."""


def eye_frame(prediction: np.ndarray) -> tuple[np.ndarray, float]:
    """(R, s) of a (p, 2) predicted shape: R's columns are the eye line's direction and its
    normal, s the eye-centre distance. Image offset d = s R r for a frame residual r."""
    layout = layout_for(len(prediction))
    right, left = layout.eye_centres(prediction)
    v = left - right
    s = float(np.hypot(*v))
    if not np.isfinite(s) or s < 1e-6:
        return np.eye(2), 1.0
    c, si = v / s
    return np.array([[c, -si], [si, c]]), s


def to_frame(prediction: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(k, 2) image offsets -> (k, 2) frame residuals."""
    rot, s = eye_frame(prediction)
    return np.asarray(offsets, dtype=np.float64) @ rot / s


def from_frame(prediction: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    rot, s = eye_frame(prediction)
    return np.asarray(residuals, dtype=np.float64) @ rot.T * s


def residual(prediction: np.ndarray, final: np.ndarray) -> np.ndarray:
    """The (2p,) frame residual of final points against the prediction."""
    return to_frame(prediction, np.asarray(final, float) - np.asarray(prediction, float)).reshape(-1)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class CorrectionModel:
    """Residual statistics of one model, plus what a person taught it. A model with no prior
    and nothing learned moves only the placed points (plain correction)."""

    num_points: int
    mean: np.ndarray  # (2p,) prior mean residual
    covariance: np.ndarray  # (2p, 2p) prior covariance
    count: float  # faces behind the prior; 0 = no prior
    shrinkage: float = DEFAULT_SHRINKAGE
    learn_weight: float = 1.0
    learned: dict[str, np.ndarray] = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    source: str = ""
    calibration: dict = field(default_factory=dict)  # how the covariance's scale was set (model.cli.correction)
    _cache: tuple | None = field(default=None, repr=False, compare=False)

    # --- building --------------------------------------------------------------------------
    @classmethod
    def empty(cls, num_points: int) -> CorrectionModel:
        n = 2 * num_points
        return cls(num_points, np.zeros(n), np.zeros((n, n)), 0.0)

    @classmethod
    def estimate(cls, predictions: np.ndarray, finals: np.ndarray, shrinkage: float = DEFAULT_SHRINKAGE,
                 **kw) -> CorrectionModel:
        """Statistics from (n, p, 2) predictions and the (n, p, 2) true points of the same faces
        (faces the model never trained on)."""
        r = np.stack([residual(p, t) for p, t in zip(predictions, finals)])
        return cls.from_residuals(r, shrinkage, **kw)

    @classmethod
    def from_residuals(cls, r: np.ndarray, shrinkage: float = DEFAULT_SHRINKAGE, **kw) -> CorrectionModel:
        """Statistics from (n, 2p) frame residuals (`residual()` of each face)."""
        r = np.asarray(r, dtype=np.float64)
        mean = r.mean(0)
        cov = np.cov(r, rowvar=False, bias=True) if len(r) > 1 else np.zeros((r.shape[1],) * 2)
        return cls(r.shape[1] // 2, mean, cov, float(len(r)), shrinkage, **kw)

    # --- learning --------------------------------------------------------------------------
    def learn(self, prediction: np.ndarray, final: np.ndarray, key: str | None = None) -> None:
        """Add a finished face. The same key again replaces that face's earlier lesson (a face
        approved, changed and approved again counts once)."""
        r = residual(prediction, final)
        if r.shape != self.mean.shape or not np.isfinite(r).all():
            return
        self.learned[key if key is not None else f"#{len(self.learned)}"] = r
        self._cache = None

    def reset_learned(self) -> None:
        self.learned.clear()
        self._cache = None

    def add_lessons(self, learned: dict[str, np.ndarray]) -> None:
        """Faces learned elsewhere (a folder's file), by key."""
        self.learned.update({k: np.asarray(v, dtype=np.float64) for k, v in learned.items()
                             if np.shape(v) == self.mean.shape})
        self._cache = None

    def copy(self) -> CorrectionModel:
        return CorrectionModel(self.num_points, self.mean.copy(), self.covariance.copy(), self.count,
                               self.shrinkage, self.learn_weight, dict(self.learned), dict(self.model), self.source,
                               dict(self.calibration))

    @property
    def learned_count(self) -> int:
        return len(self.learned)

    @property
    def active(self) -> bool:
        """Whether an update can move anything (there are statistics)."""
        return self.count > 0 or bool(self.learned)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, shrunk covariance) of the prior and the learned faces together."""
        if self._cache is None:
            n0, w = self.count, self.learn_weight
            m2 = n0 * (self.covariance + np.outer(self.mean, self.mean))
            s1 = n0 * self.mean
            total = n0
            for r in self.learned.values():
                s1 = s1 + w * r
                m2 = m2 + w * np.outer(r, r)
                total += w
            if total <= 0:
                mean, cov = np.zeros_like(self.mean), np.zeros_like(self.covariance)
            else:
                mean = s1 / total
                cov = m2 / total - np.outer(mean, mean)
            shrunk = (1.0 - self.shrinkage) * cov + self.shrinkage * np.diag(np.diag(cov))
            self._cache = (mean, shrunk)
        return self._cache

    # --- the update ------------------------------------------------------------------------
    def update(self, prediction: np.ndarray, placed: dict[int, np.ndarray]) -> np.ndarray:
        """The face's points after a person placed `placed` (index -> (x, y)): placed points
        exactly there, every other point the prediction moved by its conditional mean residual."""
        pred = np.asarray(prediction, dtype=np.float64)
        out = pred.copy()
        idx = sorted(int(k) for k in placed if 0 <= int(k) < len(pred))
        for k in idx:
            out[k] = np.asarray(placed[k], dtype=np.float64)
        if not idx or not self.active or len(pred) != self.num_points:
            return out
        mean, cov = self.statistics()
        obs = np.array([2 * k + c for k in idx for c in (0, 1)])
        free = np.setdiff1d(np.arange(2 * len(pred)), obs)
        if free.size == 0:
            return out
        r_obs = to_frame(pred, out[idx] - pred[idx]).reshape(-1)
        s_oo = cov[np.ix_(obs, obs)]
        s_oo = s_oo + RIDGE * (np.trace(s_oo) / len(obs) + 1e-12) * np.eye(len(obs))
        gain = np.linalg.solve(s_oo, r_obs - mean[obs])
        r_free = mean[free] + cov[np.ix_(free, obs)] @ gain
        r_all = np.zeros(2 * len(pred))
        r_all[free] = r_free
        moved = from_frame(pred, r_all.reshape(-1, 2))
        keep = np.zeros(len(pred), dtype=bool)
        keep[idx] = True
        out[~keep] = pred[~keep] + moved[~keep]
        return out

    # --- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        r6 = lambda a: [float(f"{float(v):.9g}") for v in a]  # noqa: E731 - 9 significant digits
        d = {"format": FORMAT, "version": VERSION, "num_points": self.num_points, "frame": "eye-centres",
             "count": self.count, "shrinkage": self.shrinkage, "learn_weight": self.learn_weight}
        if self.count > 0:  # a folder's lessons file has no prior: no 2p x 2p zeros
            d.update(mean=r6(self.mean), covariance=[r6(row) for row in self.covariance])
        if self.calibration:
            d["calibration"] = self.calibration
        d.update(model=self.model, source=self.source, learned={k: r6(v) for k, v in self.learned.items()})
        return d

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path, num_points: int | None = None) -> CorrectionModel:
        """Read a statistics file; CorrectionFileError names the file and what is wrong."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorrectionFileError(f"{path}: cannot read assisted-correction statistics ({exc})") from None
        try:
            return cls.from_dict(d, num_points)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorrectionFileError(f"{path}: not usable assisted-correction statistics: {exc}") from None

    @classmethod
    def from_dict(cls, d: dict, num_points: int | None = None) -> CorrectionModel:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        if int(d.get("version", 0)) > VERSION:
            raise ValueError(f"version {d.get('version')} is newer than this program's {VERSION}")
        p = int(d["num_points"])
        if num_points is not None and p != num_points:
            raise ValueError(f"made for {p} points, the model has {num_points}")
        n = 2 * p
        mean = np.asarray(d.get("mean", np.zeros(n)), dtype=np.float64)
        cov = np.asarray(d.get("covariance", np.zeros((n, n))), dtype=np.float64)
        if mean.shape != (n,) or cov.shape != (n, n):
            raise ValueError(f"mean {mean.shape} / covariance {cov.shape} do not fit {p} points")
        learned = {str(k): np.asarray(v, dtype=np.float64) for k, v in dict(d.get("learned", {})).items()}
        if any(v.shape != (n,) for v in learned.values()):
            raise ValueError(f"a learned face does not have {n} numbers")
        shrink = float(d.get("shrinkage", DEFAULT_SHRINKAGE))
        if not (0.0 <= shrink <= 1.0):
            raise ValueError(f"shrinkage {shrink} is outside 0..1")
        arrays = [mean, cov, *learned.values()]
        if not all(np.isfinite(a).all() for a in arrays):
            raise ValueError("non-finite numbers")
        return cls(p, mean, cov, float(d.get("count", 0)), shrink, float(d.get("learn_weight", 1.0)),
                   learned, dict(d.get("model", {})), str(d.get("source", "")), dict(d.get("calibration", {})))


def stats_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's statistics live: beside it, NAME.correction.json."""
    p = Path(checkpoint)
    return p.with_name(p.stem + ".correction.json")


def for_checkpoint(checkpoint: str | Path, num_points: int) -> tuple[CorrectionModel, str | None]:
    """The statistics made for this checkpoint file, or empty ones (plain correction) with the
    reason: none beside it, unreadable, or made for another model (never stale statistics)."""
    path = stats_path(checkpoint)
    if not path.is_file():
        return CorrectionModel.empty(num_points), f"no assisted-correction statistics beside {Path(checkpoint).name}"
    try:
        stats = CorrectionModel.load(path, num_points)
    except CorrectionFileError as exc:
        return CorrectionModel.empty(num_points), str(exc)
    want = stats.model.get("sha256")
    if want and want != file_sha256(checkpoint):
        return CorrectionModel.empty(num_points), (f"{path.name} was made for another model "
                                                    f"({stats.model.get('name', '?')}): plain correction")
    return stats, None


def reset_for(new_checkpoint: Path, parent: Path, num_points: int) -> CorrectionModel | None:
    """A fine-tuned model's statistics: its parent's covariance (how the errors of neighbouring
    points go together) with the mean reset to zero (the parent's bias is not the new model's),
    nothing learned; None when the parent had none. Written beside the new checkpoint."""
    prior, why = for_checkpoint(parent, num_points)
    if why is not None:
        return None
    stats = prior.copy()
    stats.mean = np.zeros_like(stats.mean)
    stats.learned = {}
    stats.model = {"sha256": file_sha256(new_checkpoint), "name": Path(new_checkpoint).name}
    stats.source = f"reset after fine-tuning {Path(parent).name}: its covariance, mean zero"
    stats.save(stats_path(new_checkpoint))
    return stats
