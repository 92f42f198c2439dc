"""Does the app's review flag point at the faces the model gets wrong?

The app predicts each face twice, on the crop and on its mirror image, and shows the mean
(mirror averaging). Where the two passes disagree the points are often wrong: the flag
(`FaceResult.needs_review`) marks faces whose passes lie further apart than
`model.metrics.REVIEW_MIRROR_GAP` % of the eye distance. This script runs the app's pipeline
(YuNet boxes, one pass as model.predict's policy gives them, mirror averaging) on the validation split and reports, for several
thresholds, how many faces are flagged and how many of the failures (inter-pupil NME > 8%)
are among them.

    python -m bench.uncertainty                      # shipped model -> bench/results/uncertainty.json
    python -m bench.uncertainty --checkpoint runs/x/last.pt --limit 50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.checkpoint import CheckpointError
from model.geometry import box_of_points
from model.images import ImageError, read_image
from model.layout import layout_for
from model.metrics import REVIEW_MIRROR_GAP, nme
from model.predict import Predictor, pre_label

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

THRESHOLDS = (3.0, 4.0, 5.0, 6.0, 8.0)
FAILURE = 8.0  # inter-pupil NME in %, the paper's failure limit


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (no ties expected in real-valued errors)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def measure(predictor: Predictor, samples, quiet: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uncertainty %, inter-pupil NME %) of every face the detector finds, as the app runs."""
    layout = layout_for(predictor.config.num_points)
    gaps, errors, skipped = [], [], []
    for s in tqdm(samples, desc="faces", unit="face", disable=quiet):
        try:
            img = read_image(s.image)
        except ImageError as exc:
            skipped.append(str(exc))
            continue
        r = pre_label(predictor, img, box_of_points(s.points))  # as the app runs
        if r is None:
            skipped.append(f"{s.image}: no face detected")
            continue
        gaps.append(r.uncertainty)
        errors.append(float(nme(r.points[None], s.points[None], layout)[0] * 100))
    return np.array(gaps), np.array(errors), skipped


def summarise(gaps: np.ndarray, errors: np.ndarray) -> dict:
    fail = errors > FAILURE
    rows = []
    for t in THRESHOLDS:
        flagged = gaps >= t
        rows.append({"threshold": t, "flagged": int(flagged.sum()), "flagged_share": float(flagged.mean()),
                     "failures_caught": int((flagged & fail).sum()),
                     "mean_nme_flagged": float(errors[flagged].mean()) if flagged.any() else None,
                     "mean_nme_unflagged": float(errors[~flagged].mean()) if (~flagged).any() else None})
    return {"faces": int(len(errors)), "failures": int(fail.sum()), "rank_correlation": rank_correlation(gaps, errors),
            "mean_nme": float(errors.mean()), "app_threshold": REVIEW_MIRROR_GAP, "thresholds": rows}


def format_report(rep: dict) -> str:
    rows = [[f"{r['threshold']:.0f}" + (" (app)" if r["threshold"] == rep["app_threshold"] else ""),
             f"{r['flagged']} ({100 * r['flagged_share']:.0f}%)", f"{r['failures_caught']} of {rep['failures']}",
             r["mean_nme_flagged"], r["mean_nme_unflagged"]] for r in rep["thresholds"]]
    head = (f"{rep['faces']} faces, mean inter-pupil NME {rep['mean_nme']:.2f}%, {rep['failures']} failures (> {FAILURE:.0f}%); "
            f"rank correlation of mirror gap and error {rep['rank_correlation']:.2f}")
    return head + "\n\n" + md_table(["flag at mirror gap ≥ (% of eye distance)", "faces flagged", "failures flagged",
                                     "mean NME flagged", "mean NME not flagged"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.uncertainty", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT), help="DRR checkpoint (default: %(default)s)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="300w_train folder (default: %(default)s)")
    ap.add_argument("--names", default=str(DEFAULT_SPLIT), help="validation split file (default: %(default)s)")
    ap.add_argument("--limit", type=int, help="only the first N faces of the split (quick runs)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="folder for uncertainty.json (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = all cores)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    set_threads(a.threads)
    try:
        samples, problems = load_split(a.data, a.names, a.limit)
        predictor = Predictor.load(a.checkpoint, mirror_average=True)  # as the app runs
    except (OSError, ValueError, CheckpointError) as exc:
        print(f"bench.uncertainty: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    gaps, errors, skipped = measure(predictor, samples, a.quiet)
    if not len(errors):
        print("bench.uncertainty: no face could be measured", file=sys.stderr)
        return 2
    rep = {"checkpoint": a.checkpoint, "skipped": skipped, **summarise(gaps, errors), "environment": environment()}
    print(format_report(rep))
    out = Path(a.out) / "uncertainty.json"
    write_json(out, rep)
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
