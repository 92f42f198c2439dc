"""Build the assisted-correction statistics that ship with a model.

    python -m model.cli.correction            # --heldout resources/drr_heldout.pt --for resources/drr_default.pt

The statistics describe the errors of a model as the app pre-labels faces (YuNet's box, one
mirror-averaged pass; the annotation's tight box where YuNet misses the face), measured with the
held-out recipe model (the same recipe trained without the validation split):

- mean and covariance from its residuals on the faces it trained on (1,810: every face it can
  give a residual for; the validation faces alone, 202, gave a noisier covariance: issue 34);
- their scale calibrated on the validation faces, which it never saw: residuals on training
  faces are smaller (rms 0.039 against 0.051 eye units), so the covariance is multiplied by the
  held-out faces' mean square over the training faces' (the update itself does not depend on the
  scale; how much a finished face teaches does).

They are written beside the model they are for (`NAME.correction.json`, see model/correction.py),
stamped with that file's sha256 so that a changed model never uses them. --source validation
builds them the way of issue 21 (the validation faces' residuals only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..correction import CorrectionModel, file_sha256, residual, stats_path
from ..data import Sample, find_samples, read_name_list, split_by_names
from ..geometry import box_of_points
from ..images import read_image
from ..predict import Predictor
from ..predict import pre_label as pre_label_as_app
from ..resources import DEFAULT_WEIGHTS, HELDOUT_WEIGHTS, VAL_SPLIT, resource

LEARN_WEIGHT = 0.5  # a finished face counts half a prior face (bench.annotator: learning <= assisted at every tau)
# covariance shrinkage towards its diagonal: 0.3 for 101 faces (issue 21); with the 1,810 training
# faces' residuals 0.1 (bench.annotator on the validation split, 0.07: 3.19 / 3.08 / 3.12 at 0 / 0.1 / 0.3)
SHRINKAGE = 0.1


def pre_label(predictor: Predictor, samples: list[Sample], boxes: str = "detector",
              progress: bool = True) -> tuple[np.ndarray, int]:
    """(n, p, 2) predictions as the app makes them; how many faces fell back to the truth box."""
    results, missed = pre_label_results(predictor, samples, boxes, progress)
    return np.stack([r.points for r in results]), missed


def pre_label_results(predictor: Predictor, samples: list[Sample], boxes: str = "detector",
                      progress: bool = True) -> tuple[list, int]:
    """The FaceResult of every face, pre-labelled as the app does (see pre_label)."""
    out, missed = [], 0
    for s in tqdm(samples, desc="pre-labelling", unit="face", disable=not progress):
        result, fell_back = pre_label_face(predictor, read_image(s.image), s.points, boxes)
        out.append(result)
        missed += fell_back
    return out, missed


def pre_label_face(predictor: Predictor, img: np.ndarray, points: np.ndarray, boxes: str = "detector"):
    """(FaceResult, whether the truth box stood in for a missed detection) of one annotated face:
    YuNet's box matched to it (boxes "detector") or the annotation's tight box ("truth")."""
    tb = box_of_points(points)
    if boxes == "detector":
        found = pre_label_as_app(predictor, img, tb)  # as the app runs (model.predict.pre_label)
        if found is not None:
            return found, False
        return predictor.inference(img, [tb])[0], True
    return predictor.inference(img, [tb])[0], False


def residuals(predictor: Predictor, samples: list[Sample], progress: bool) -> tuple[np.ndarray, int]:
    """(n, 2p) frame residuals of the faces pre-labelled the app's way; how many fell back."""
    preds, missed = pre_label(predictor, samples, "detector", progress)
    return np.stack([residual(p, s.points) for p, s in zip(preds, samples)]), missed


def build(heldout: Path, target: Path, train: list[Sample], val: list[Sample], shrinkage: float = SHRINKAGE,
          source: str = "training", progress: bool = True) -> CorrectionModel:
    """The statistics for `target` from the held-out model's residuals: on its training faces,
    scaled by the validation faces' (source "training"), or on the validation faces alone."""
    predictor = Predictor.load(heldout, mirror_average=True)
    if not predictor.meta.get("val_faces"):
        raise CheckpointError(f"{heldout.name} was trained without a validation split: its residuals on the "
                              "validation faces would not be a held-out model's")
    r_val, missed = residuals(predictor, val, progress)
    if source == "validation":
        stats = CorrectionModel.from_residuals(r_val, shrinkage, learn_weight=LEARN_WEIGHT)
        stats.source = (f"residuals of {heldout.name} (trained without them) on {len(val)} validation faces, "
                        f"YuNet box + one mirror-averaged pass ({missed} on the annotation box)")
    else:
        r_train, missed_train = residuals(predictor, train, progress)
        stats = CorrectionModel.from_residuals(r_train, shrinkage, learn_weight=LEARN_WEIGHT)
        scale = float(np.mean(r_val**2) / np.mean(r_train**2))
        stats.covariance = stats.covariance * scale
        stats.calibration = {"scale": scale, "faces": len(val), "rms_training": float(np.sqrt(np.mean(r_train**2))),
                             "rms_held_out": float(np.sqrt(np.mean(r_val**2)))}
        stats.source = (f"residuals of {heldout.name} on its {len(train)} training faces, covariance scaled by "
                        f"{scale:.3f} (mean square on {len(val)} validation faces it never saw over the training "
                        f"faces'), YuNet box + one mirror-averaged pass ({missed_train + missed} on the annotation box)")
    stats.model = {"sha256": file_sha256(target), "name": target.name}
    return stats


def add_heldout_arguments(ap: argparse.ArgumentParser, target_help: str) -> None:
    """The options of a tool built from the held-out run for a shipped checkpoint: --heldout,
    --for, --data, --split (this CLI's and model.cli.conditioned's)."""
    ap.add_argument("--heldout", default=str(resource(HELDOUT_WEIGHTS)),
                    help="the recipe trained without the validation faces (default: the shipped held-out twin)")
    ap.add_argument("--for", dest="target", default=str(resource(DEFAULT_WEIGHTS)), help=target_help)
    ap.add_argument("--data", default="../shared/data/300w_train")
    ap.add_argument("--split", default=str(resource(VAL_SPLIT)), help="names of the validation faces (never used)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.cli.correction", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_heldout_arguments(ap, "the checkpoint the statistics ship with (default: the shipped model)")
    ap.add_argument("--shrinkage", type=float, default=SHRINKAGE)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default; beside a "
                    "training run on 2 cores, 1 was 4x faster)")
    ap.add_argument("--source", choices=("training", "validation"), default="training",
                    help="whose residuals: the held-out model's training faces, scaled on the validation faces "
                    "(default), or the validation faces alone (issue 21's statistics)")
    a = ap.parse_args(argv)
    target = Path(a.target)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if not target.is_file():
        print(f"correction: {target}: no such checkpoint", file=sys.stderr)
        return 2
    samples, problems = find_samples([a.data], 68)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    try:
        train, val = split_by_names(samples, read_name_list(a.split))
    except OSError as exc:
        print(f"correction: {a.split}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not val:
        print(f"correction: none of the names in {a.split} were found under {a.data}", file=sys.stderr)
        return 2
    try:
        stats = build(Path(a.heldout), target, sorted(train, key=lambda s: s.name), sorted(val, key=lambda s: s.name),
                      a.shrinkage, a.source)
    except CheckpointError as exc:
        print(f"correction: {exc}", file=sys.stderr)
        return 2
    out = stats_path(target)
    stats.save(out)
    print(f"correction: wrote {out} ({stats.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
