"""Calibrate YuNet's boxes against annotated faces: the median relation between the detector's
box and the tight landmark box (model.detect's LANDMARK_BOX constants come from it).

    python -m model.cli.calibrate --calibrate ../shared/data/300w_train --exclude resources/val_split.txt
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..data import find_samples, read_name_list
from ..detect import detect_raw
from ..geometry import box_iou, box_of_points
from ..images import read_image


def calibrate(folder: str, names: set[str] | None = None) -> dict:
    """Median relation between YuNet's box and the landmark box on annotated faces."""
    samples, _ = find_samples([folder])
    if names is not None:
        samples = [s for s in samples if s.name not in names]
    rows = []
    for s in samples:
        lb = box_of_points(s.points)
        c = np.array([(lb[0] + lb[2]) / 2, (lb[1] + lb[3]) / 2])
        found = detect_raw(read_image(s.image))
        if not found:
            continue
        b = max(found, key=lambda t: box_iou(t[0], lb))[0]
        if box_iou(b, lb) < 0.3:
            continue
        w = b[2] - b[0]
        dc = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        rows.append([(c[0] - dc[0]) / w, (c[1] - dc[1]) / w, max(lb[2] - lb[0], lb[3] - lb[1]) / w])
    r = np.median(np.array(rows), axis=0)
    return {"dx": round(float(r[0]), 4), "dy": round(float(r[1]), 4), "side": round(float(r[2]), 4),
            "faces": len(rows), "of": len(samples)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.cli.calibrate", description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", required=True, help="folder of pictures with .pts")
    ap.add_argument("--exclude", help="file of names to leave out (e.g. resources/val_split.txt)")
    a = ap.parse_args(argv)
    print(calibrate(a.calibrate, read_name_list(a.exclude) if a.exclude else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
