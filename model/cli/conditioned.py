"""Train DRR's steps conditioned on the annotator's points (model/conditioned.py, issue 34;
experimental: no steps are shipped, see model/conditioned.py for why).

    python -m model.cli.conditioned --heldout resources/drr_heldout.pt --for resources/drr_heldout.pt

The held-out recipe model pre-labels its training faces the app's way; its frozen backbone's
deconv7 maps of each face's crop are cached (box maxima, fp16); each face gets --draws draws of
0-10 placed points (the worst first or random) on top of its prediction or of the prediction
moved by an error drawn from the shipped residual statistics, starting from their Gaussian
update; the steps learn to bring the other points to the truth. Written beside --for as
NAME.steps.pt. --cache keeps the pre-labelled faces between runs (an .pt file).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import geometry
from ..checkpoint import CheckpointError
from ..conditioned import ConditionedSteps, StepsConfig, face_maps, steps_path
from ..correction import CorrectionModel, for_checkpoint, from_frame
from ..data import Sample, find_samples, read_name_list, split_by_names
from ..images import read_image
from ..predict import Predictor
from .correction import add_heldout_arguments, pre_label_face

MAX_PLACED = 10


@dataclass
class Faces:
    """Pre-labelled faces: maps (n, C, H, W) fp16, to_crop (n, 2, 3), preds and truth (n, p, 2)
    in picture pixels."""

    maps: torch.Tensor
    to_crop: np.ndarray
    preds: np.ndarray
    truth: np.ndarray


def cache_faces(predictor: Predictor, samples: list[Sample], progress: bool = True) -> Faces:
    maps, mats, preds = [], [], []
    for s in tqdm(samples, desc="caching features", unit="face", disable=not progress):
        img = read_image(s.image)
        result, _ = pre_label_face(predictor, img, s.points)
        m, to_crop = face_maps(predictor.model, img, result.crop_to_image)
        maps.append(m)
        mats.append(to_crop)
        preds.append(result.points)
    return Faces(torch.stack(maps), np.stack(mats), np.stack(preds), np.stack([s.points for s in samples]))


def load_or_cache(path: str | None, predictor: Predictor, samples: list[Sample]) -> Faces:
    """The cached features of these faces (tensors only: read with weights_only=True, so a cache
    file from elsewhere cannot run code), or computed and cached; an unreadable or stale cache is
    computed again."""
    names = [s.name for s in samples]
    if path and Path(path).is_file():
        try:
            d = torch.load(path, weights_only=True)
            if list(d["names"]) == names:
                return Faces(d["maps"], d["to_crop"].numpy(), d["preds"].numpy(), d["truth"].numpy())
        except Exception:  # noqa: BLE001 - any unusable cache is simply rebuilt
            pass
    faces = cache_faces(predictor, samples)
    if path:
        torch.save({"names": names, "maps": faces.maps, "to_crop": torch.from_numpy(np.asarray(faces.to_crop)),
                    "preds": torch.from_numpy(np.asarray(faces.preds)),
                    "truth": torch.from_numpy(np.asarray(faces.truth))}, path)
    return faces


def draw(stats: CorrectionModel, pred: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
         chol: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """(start, placed mask) of one training draw, picture pixels: the prediction (or it moved by
    an error from the statistics), 0-10 points placed on the truth (the worst first or random),
    their Gaussian update."""
    base = np.asarray(pred, dtype=np.float64)
    if rng.random() < 0.5:
        base = base + from_frame(base, (chol @ rng.standard_normal(len(chol))).reshape(-1, 2) * noise)
    k = int(rng.integers(0, MAX_PLACED + 1))
    placed: dict[int, np.ndarray] = {}
    current = base
    worst = rng.random() < 0.5
    order = rng.permutation(len(base))
    for j in range(k):
        if worst:
            err = np.linalg.norm(current - truth, axis=1)
            err[list(placed)] = -1.0
            i = int(np.argmax(err))
        else:
            i = int(order[j])
        placed[i] = truth[i]
        current = stats.update(base, placed)
    if placed and rng.random() < 0.2:  # a plain start: only the placed points moved
        current = base.copy()
        current[list(placed)] = truth[list(placed)]
    mask = np.zeros(len(base), dtype=bool)
    mask[list(placed)] = True
    return current, mask


def make_draws(faces: Faces, stats: CorrectionModel, per_face: int, seed: int, noise: float) -> dict:
    """Training draws in crop pixels: face index, start, placed mask, truth."""
    rng = np.random.default_rng(seed)
    _, cov = stats.statistics()
    chol = np.linalg.cholesky(cov + 1e-9 * np.trace(cov) / len(cov) * np.eye(len(cov)))
    idx, starts, masks, truths = [], [], [], []
    for i in range(len(faces.preds)):
        m = faces.to_crop[i]
        for _ in range(per_face):
            start, mask = draw(stats, faces.preds[i], faces.truth[i], rng, chol, noise)
            idx.append(i)
            starts.append(geometry.apply(m, start))
            masks.append(mask)
            truths.append(geometry.apply(m, faces.truth[i]))
    return {"face": torch.tensor(idx), "start": torch.tensor(np.stack(starts), dtype=torch.float32),
            "mask": torch.from_numpy(np.stack(masks)), "truth": torch.tensor(np.stack(truths), dtype=torch.float32)}


def step_loss(shapes: list[torch.Tensor], truth: torch.Tensor, mask: torch.Tensor, size: float) -> torch.Tensor:
    """Mean distance of the points not placed to the truth, in crop units, summed over steps."""
    free = (~mask).float()
    total = truth.new_zeros(())
    for s in shapes[1:]:
        d = (s - truth).norm(dim=-1) / size
        total = total + (d * free).sum() / free.sum().clamp(min=1.0)
    return total


def train_steps(faces: Faces, draws: dict, cfg: StepsConfig, epochs: int, lr: float = 1e-3,
                batch: int = 64, seed: int = 0, log=print) -> ConditionedSteps:
    torch.manual_seed(seed)
    steps = ConditionedSteps(cfg)
    opt = torch.optim.Adam(steps.parameters(), lr=lr)
    n = len(draws["face"])
    total = max(1, epochs * math.ceil(n / batch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 0.5 * (1 + math.cos(math.pi * it / total)))
    size = float(cfg.input_size)
    for epoch in range(epochs):
        perm, t0, seen = torch.randperm(n), time.time(), 0.0
        for b0 in range(0, n, batch):
            j = perm[b0 : b0 + batch]
            shapes = steps(faces.maps[draws["face"][j]], draws["start"][j], draws["mask"][j])
            loss = step_loss(shapes, draws["truth"][j], draws["mask"][j], size)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += float(loss.detach()) * len(j)
        log(f"epoch {epoch + 1}/{epochs}: loss {seen / n / cfg.steps:.5f} ({time.time() - t0:.0f} s)")
    return steps.eval()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m model.cli.conditioned", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_heldout_arguments(ap, "the checkpoint the steps ship with (its statistics start them; default: the "
                              "shipped model)")
    ap.add_argument("--draws", type=int, default=8, help="draws per face")
    ap.add_argument("--noise", type=float, default=0.7, help="scale of the drawn prediction errors")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="at most this many training faces")
    ap.add_argument("--cache", help="keep the pre-labelled faces here (.pt) between runs")
    ap.add_argument("--out", help="where to write the steps (default: beside --for)")
    ap.add_argument("--threads", type=int, default=0)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    target = Path(a.target)
    samples, _ = find_samples([a.data], 68)
    train, _ = split_by_names(samples, read_name_list(a.split))
    train = sorted(train, key=lambda s: s.name)[: a.limit]
    try:
        predictor = Predictor.load(a.heldout, mirror_average=True)
    except CheckpointError as exc:
        print(f"conditioned: {exc}", file=sys.stderr)
        return 2
    stats, why = for_checkpoint(target, 68)
    if why is not None:
        print(f"conditioned: {why}: build the statistics first (python -m model.cli.correction)", file=sys.stderr)
        return 2
    faces = load_or_cache(a.cache, predictor, train)
    draws = make_draws(faces, stats, a.draws, a.seed, a.noise)
    cfg = StepsConfig(68, int(faces.maps.shape[1]), predictor.config.input_size, a.steps)
    steps = train_steps(faces, draws, cfg, a.epochs, a.lr, seed=a.seed)
    out = Path(a.out) if a.out else steps_path(target)
    source = (f"trained on {len(train)} training faces of {Path(a.heldout).name} (x{a.draws} draws, noise {a.noise}, "
              f"{a.epochs} epochs, {a.steps} steps, seed {a.seed})")
    steps.save(out, target, source)
    print(f"conditioned: wrote {out} ({source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
