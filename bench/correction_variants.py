"""What else was tried for assisted correction's update (issue 34), measured the way of bench.annotator.

    python -m bench.correction_variants                 # validation split, the held-out twin and its statistics
    python -m bench.correction_variants --variants fusion candidate --limit 100

Every variant starts from the shipped update (model.correction: the Gaussian conditional mean
given the placed points) and changes what the points not yet placed do after each click:

- fusion B A: each point's conditional Gaussian (the update's mean and its conditional 2 x 2
  covariance) times conv8's heatmap of that point to the power B; the point moves A of the way to
  that product's mean (the network's picture evidence seen through the clicks);
- confidence G: the covariance rescaled point by point by the spread of the point's heatmap
  around the prediction (over the point's median spread) to the power G: points conv8 is unsure
  of follow more;
- candidate: the k-means candidate nearest the update becomes S0 and the steps run again from it
  (in the steps' training distribution, unlike re-running them from the update); the placed
  points then update that prediction;
- mixture K: a mixture of K Gaussians fitted to the model's residuals on its training faces
  (scikit-learn's GaussianMixture, if installed), its components weighted by how well each
  explains the placed points.

The simulated person is bench.annotator's: the farthest point first, placed exactly. Reported:
mean corrections per face at --tau and how much of the pre-label's NME one click removes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model import geometry
from model.cli.correction import pre_label_results, residuals
from model.correction import CorrectionModel, eye_frame, from_frame, stats_path, to_frame
from model.data import find_samples, read_name_list, split_by_names
from model.images import read_image
from model.predict import FaceResult, Predictor

from .annotator import curve, simulate
from .common import (
    DEFAULT_DATA,
    DEFAULT_OUT,
    DEFAULT_SPLIT,
    HELDOUT_CHECKPOINT,
    environment,
    load_split,
    md_table,
    set_threads,
    write_json,
)

Hook = Callable[[np.ndarray, dict], np.ndarray]
VARIANTS = ("fusion", "confidence", "candidate", "mixture")


def map_grid(result: FaceResult, input_size: int) -> np.ndarray:
    """(S*S, 2) picture position of every conv8 map pixel (model.heatmap.from_map's convention)."""
    s = result.heatmaps.shape[-1]
    stride = input_size // s
    u = np.arange(s) * stride + 0.5 * (stride - 1)
    gx, gy = np.meshgrid(u, u)
    return geometry.apply(result.crop_to_image, np.stack([gx.ravel(), gy.ravel()], 1))


def conditional_covariances(cov: np.ndarray, placed: list[int]) -> np.ndarray:
    """(p, 2, 2) frame covariance of each point's residual given the placed points' residuals."""
    p = len(cov) // 2
    if placed:
        obs = np.array([2 * k + c for k in placed for c in (0, 1)])
        s_oo = cov[np.ix_(obs, obs)]
        s_oo = s_oo + 1e-6 * np.trace(s_oo) / len(obs) * np.eye(len(obs))
        cov = cov - cov[:, obs] @ np.linalg.solve(s_oo, cov[obs, :])
    return np.stack([cov[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] for j in range(p)])


def fusion_hook(result: FaceResult, input_size: int, stats: CorrectionModel, power: float, share: float) -> Hook:
    grid = map_grid(result, input_size)
    log_maps = np.log(result.heatmaps.reshape(len(result.points), -1).astype(np.float64) + 1e-8)
    rot, s = eye_frame(result.points)
    _, cov = stats.statistics()

    def hook(start: np.ndarray, placed: dict) -> np.ndarray:
        frame_cov = conditional_covariances(cov, sorted(placed))
        out = start.copy()
        for j in set(range(len(start))) - set(placed):
            c = s * s * rot @ frame_cov[j] @ rot.T
            d = grid - start[j]
            log_w = power * log_maps[j] - 0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(c), d)
            w = np.exp(log_w - log_w.max())
            out[j] = start[j] + share * (w @ grid / w.sum() - start[j])
        return out

    return hook


def heatmap_spread(result: FaceResult, input_size: int) -> np.ndarray:
    """(p,) rms distance of each point's heatmap mass from the predicted point, in eye distances."""
    grid = map_grid(result, input_size)
    maps = result.heatmaps.reshape(len(result.points), -1).astype(np.float64)
    maps /= maps.sum(1, keepdims=True)
    d2 = ((grid[None] - result.points[:, None]) ** 2).sum(-1)
    return np.sqrt((maps * d2).sum(1)) / eye_frame(result.points)[1]


def candidate_hook(predictor: Predictor, image: np.ndarray, result: FaceResult, stats: CorrectionModel) -> Hook:
    size = predictor.config.input_size
    crop = torch.from_numpy(geometry.warp(image, geometry.invert(result.crop_to_image), size)).permute(2, 0, 1)[None]
    starts = predictor.model.candidates.cpu().float()
    runs: dict[int, np.ndarray] = {}

    def hook(start: np.ndarray, placed: dict) -> np.ndarray:
        k = int(np.argmin(np.linalg.norm(result.candidates - start[None], axis=2).mean(1)))
        if k == result.candidate_index:
            return start
        if k not in runs:
            with torch.inference_mode():
                trace = predictor.run_crops(crop, starts[k][None])
            runs[k] = geometry.apply(result.crop_to_image, trace.shapes[0, -1].float().cpu().numpy())
        return stats.update(runs[k], placed)

    return hook


class MixtureUpdate:
    """The conditional mean under a mixture of Gaussians (same frame and shrinkage as the shipped update)."""

    def __init__(self, r: np.ndarray, components: int, scale: float, shrinkage: float) -> None:
        from sklearn.mixture import GaussianMixture

        gm = GaussianMixture(components, covariance_type="full", reg_covar=1e-5, random_state=0, n_init=2).fit(r)
        self.weights, self.means = gm.weights_, gm.means_
        self.covs = [(1 - shrinkage) * c * scale + shrinkage * np.diag(np.diag(c * scale)) for c in gm.covariances_]

    def update(self, prediction: np.ndarray, placed: dict) -> np.ndarray:
        out = np.asarray(prediction, dtype=np.float64).copy()
        idx = sorted(placed)
        for k in idx:
            out[k] = placed[k]
        if not idx:
            return out
        obs = np.array([2 * k + c for k in idx for c in (0, 1)])
        free = np.setdiff1d(np.arange(out.size), obs)
        r_obs = to_frame(prediction, out[idx] - prediction[idx]).reshape(-1)
        logs, means = [], []
        for w, m, c in zip(self.weights, self.means, self.covs):
            s_oo = c[np.ix_(obs, obs)] + 1e-6 * np.trace(c[np.ix_(obs, obs)]) / len(obs) * np.eye(len(obs))
            gain = np.linalg.solve(s_oo, r_obs - m[obs])
            logs.append(np.log(w) - 0.5 * ((r_obs - m[obs]) @ gain + np.linalg.slogdet(s_oo)[1]))
            means.append(m[free] + c[np.ix_(free, obs)] @ gain)
        post = np.exp(np.array(logs) - max(logs))
        r_all = np.zeros(out.size)
        r_all[free] = sum(p * m for p, m in zip(post / post.sum(), means))
        moved = from_frame(prediction, r_all.reshape(-1, 2))
        free_points = np.setdiff1d(np.arange(len(out)), idx)
        out[free_points] = prediction[free_points] + moved[free_points]
        return out


def count(preds: np.ndarray, truth: np.ndarray, tau: float, corrector, hooks: list[Hook | None]) -> dict:
    corrections, first = [], []
    for i, hook in enumerate(hooks):
        corrections.append(simulate(preds[i], truth[i], tau, corrector, hook)[0])
        first.append(curve(preds[i], truth[i], corrector, hook, 1))
    nme = np.mean(first, 0)
    return {"corrections": float(np.mean(corrections)), "nme_0": float(nme[0]), "nme_1": float(nme[1]),
            "one_click": float(1 - nme[1] / nme[0])}


def training_residuals(predictor: Predictor, data: str, split: str, progress: bool) -> np.ndarray:
    samples, _ = find_samples([data], 68)
    train, _ = split_by_names(samples, read_name_list(split))
    return residuals(predictor, sorted(train, key=lambda s: s.name), progress)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.correction_variants", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT), help="a model trained without the counted faces")
    ap.add_argument("--stats", help="its statistics (default: the file beside it)")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--tau", type=float, default=0.07)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=str(DEFAULT_OUT / "correction_variants.json"))
    a = ap.parse_args(argv)
    set_threads(a.threads)
    samples, problems = load_split(DEFAULT_DATA, DEFAULT_SPLIT, a.limit)
    predictor = Predictor.load(a.checkpoint, mirror_average=True)
    stats = CorrectionModel.load(a.stats or stats_path(a.checkpoint), 68)
    results, _ = pre_label_results(predictor, samples, "detector", True)
    preds, truth = np.stack([r.points for r in results]), np.stack([s.points for s in samples])
    size = predictor.config.input_size
    rows = {"gaussian (shipped)": count(preds, truth, a.tau, stats, [None] * len(samples))}
    if "fusion" in a.variants:
        for power, share in ((0.5, 1.0), (1.0, 0.5), (1.0, 1.0)):
            rows[f"fusion B={power} A={share}"] = count(preds, truth, a.tau, stats,
                                                        [fusion_hook(r, size, stats, power, share) for r in results])
    if "confidence" in a.variants:
        spread = np.stack([heatmap_spread(r, size) for r in results])  # the median: over the counted faces
        rel = spread / np.median(spread, 0)
        mean, cov = stats.statistics()
        for power in (0.25, 0.5, 1.0):
            c = [count(preds[i : i + 1], truth[i : i + 1], a.tau, scaled(stats, mean, cov, rel[i] ** power), [None])
                 for i in range(len(samples))]
            rows[f"confidence G={power}"] = average(c)
    if "candidate" in a.variants:
        rows["candidate"] = count(preds, truth, a.tau, stats, [candidate_hook(predictor, read_image(s.image), r, stats)
                                                              for s, r in zip(samples, results)])
    if "mixture" in a.variants:
        try:
            r_train = training_residuals(predictor, str(DEFAULT_DATA), str(DEFAULT_SPLIT), True)
            for k in (2, 3):
                mix = MixtureUpdate(r_train, k, stats.calibration.get("scale", 1.0), stats.shrinkage)
                rows[f"mixture K={k}"] = count(preds, truth, a.tau, mix, [None] * len(samples))
        except ImportError:
            print("bench.correction_variants: scikit-learn is not installed: no mixture rows", file=sys.stderr)
    table = [[name, f"{v['corrections']:.3f}", f"{100 * v['nme_0']:.2f}", f"{100 * v['nme_1']:.2f}",
              f"{100 * v['one_click']:.1f}%"] for name, v in rows.items()]
    print(md_table(["variant", f"corrections at {a.tau}", "NME 0", "NME 1", "one click"], table))
    write_json(a.json, {"rows": rows, "faces": len(samples), "tau": a.tau, "checkpoint": str(Path(a.checkpoint)),
                        "problems": problems, "environment": environment("cpu")})
    print(f"\nwritten {a.json}")
    return 0


def scaled(stats: CorrectionModel, mean: np.ndarray, cov: np.ndarray, per_point: np.ndarray) -> CorrectionModel:
    """The statistics with each point's covariance rows and columns multiplied by its factor
    (cov is already shrunk: none again)."""
    d = np.repeat(per_point, 2)
    return CorrectionModel(stats.num_points, mean, cov * np.outer(d, d), stats.count, shrinkage=0.0)


def average(rows: list[dict]) -> dict:
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("corrections", "nme_0", "nme_1")}
    out["one_click"] = 1 - out["nme_1"] / out["nme_0"]
    return out


if __name__ == "__main__":
    sys.exit(main())
