"""Build the assisted-correction statistics that ship with a model.

    python -m model.cli.correction --heldout runs/heldout.pt --for resources/drr_default.pt

The statistics must describe the errors of a model on faces it never trained on, so they are
measured with the held-out recipe model (the same recipe trained without the validation split)
on the validation faces, pre-labelled as the app does (YuNet's box, one mirror-averaged pass;
the annotation's tight box where YuNet misses the face), and written beside the model they are
for (`NAME.correction.json`, see model/correction.py), stamped with that file's sha256 so that a
changed model never uses them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..correction import DEFAULT_SHRINKAGE, CorrectionModel, file_sha256, stats_path
from ..data import Sample, find_samples, read_name_list, split_by_names
from ..detect import detect_faces, match_detection
from ..geometry import box_of_points
from ..images import read_image
from ..predict import BoxSource, Predictor
from ..resources import DEFAULT_WEIGHTS, VAL_SPLIT, resource

LEARN_WEIGHT = 0.5  # a finished face counts half a prior face (bench.annotator: learning <= assisted at every tau)


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
        img = read_image(s.image)
        tb = box_of_points(s.points)
        if boxes == "detector":
            found = match_detection(detect_faces(img), tb)
            if found is not None:
                out.append(predictor.inference(img, [found.box], BoxSource.DETECTOR, [found.roll])[0])
                continue
            missed += 1
        out.append(predictor.inference(img, [tb])[0])
    return out, missed


def build(heldout: Path, target: Path, samples: list[Sample], shrinkage: float = DEFAULT_SHRINKAGE,
          progress: bool = True) -> CorrectionModel:
    predictor = Predictor.load(heldout, mirror_average=True)
    preds, missed = pre_label(predictor, samples, "detector", progress)
    truth = np.stack([s.points for s in samples])
    stats = CorrectionModel.estimate(preds, truth, shrinkage, learn_weight=LEARN_WEIGHT)
    stats.model = {"sha256": file_sha256(target), "name": target.name}
    stats.source = (f"residuals of {heldout.name} (trained without them) on {len(samples)} validation faces, "
                    f"YuNet box + one mirror-averaged pass ({missed} on the annotation box)")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.cli.correction", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heldout", required=True, help="the recipe trained without the validation faces")
    ap.add_argument("--for", dest="target", default=str(resource(DEFAULT_WEIGHTS)),
                    help="the checkpoint the statistics ship with (default: the shipped model)")
    ap.add_argument("--data", default="../shared/data/300w_train")
    ap.add_argument("--split", default=str(resource(VAL_SPLIT)), help="names of the validation faces")
    ap.add_argument("--shrinkage", type=float, default=DEFAULT_SHRINKAGE)
    a = ap.parse_args(argv)
    target = Path(a.target)
    if not target.is_file():
        print(f"correction: {target}: no such checkpoint", file=sys.stderr)
        return 2
    samples, problems = find_samples([a.data], 68)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    try:
        _, val = split_by_names(samples, read_name_list(a.split))
    except OSError as exc:
        print(f"correction: {a.split}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not val:
        print(f"correction: none of the names in {a.split} were found under {a.data}", file=sys.stderr)
        return 2
    try:
        stats = build(Path(a.heldout), target, sorted(val, key=lambda s: s.name), a.shrinkage)
    except CheckpointError as exc:
        print(f"correction: {exc}", file=sys.stderr)
        return 2
    out = stats_path(target)
    stats.save(out)
    print(f"correction: wrote {out} ({stats.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
