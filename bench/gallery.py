"""Look at the points: a contact sheet of held-out faces with the model's points drawn.

    python -m bench.gallery                       # runs/gallery.png (runs/ is not committed)
    python -m bench.gallery --checkpoint my.pt --out /tmp/sheet.png --no-detector

Every face of the validation split is predicted as the app does (the YuNet detector, the passes
model.predict's policy gives its boxes, mirror averaging; --no-detector uses the annotation's box
instead, --no-mirror no mirror averaging),
its inter-pupil NME is measured, and the sheet shows the best, the median and the worst faces
(--per-row of each), each with the model's points (green, joined as in the editor) and the
human annotation (small red dots). The 300-W pictures are research-only: the sheet is written
outside the repository's tracked files and must not be committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from model import geometry
from model.checkpoint import CheckpointError
from model.evaluate import evaluate
from model.images import read_image
from model.layout import layout_for
from model.predict import Predictor

from .common import DEFAULT_DATA, DEFAULT_SPLIT, HELDOUT_CHECKPOINT, REPO, load_split, set_threads

CELL = 256


def draw_face(image: np.ndarray, points: np.ndarray, truth: np.ndarray, label: str) -> np.ndarray:
    """A CELL x CELL picture of the face (box of the annotation, padded) with both shapes."""
    m = geometry.crop_matrix(geometry.box_of_points(truth), CELL)
    cell = cv2.cvtColor(geometry.warp(image, m, CELL), cv2.COLOR_RGB2BGR)
    p, t = geometry.apply(m, points), geometry.apply(m, truth)
    for a, b in layout_for(len(points)).lines():
        cv2.line(cell, tuple(np.round(p[a]).astype(int)), tuple(np.round(p[b]).astype(int)), (80, 200, 80), 1, cv2.LINE_AA)
    for x, y in t:
        cv2.circle(cell, (int(round(x)), int(round(y))), 2, (40, 40, 230), -1, cv2.LINE_AA)
    for x, y in p:
        cv2.circle(cell, (int(round(x)), int(round(y))), 2, (60, 230, 60), -1, cv2.LINE_AA)
    cv2.rectangle(cell, (0, 0), (CELL - 1, 18), (0, 0, 0), -1)
    cv2.putText(cell, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return cell


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gallery", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT))
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--names", default=str(DEFAULT_SPLIT))
    ap.add_argument("--out", default=str(REPO / "runs" / "gallery.png"))
    ap.add_argument("--per-row", type=int, default=5, help="faces per row (best, median, worst)")
    ap.add_argument("--no-detector", action="store_true", help="crop from the annotation's box instead")
    ap.add_argument("--no-mirror", action="store_true", help="one pass, no mirror averaging")
    ap.add_argument("--limit", type=int, help="only the first N faces of the split")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    set_threads(a.threads)
    try:
        predictor = Predictor.load(a.checkpoint, mirror_average=not a.no_mirror)
        samples, problems = load_split(a.data, a.names, a.limit)
        for p in problems:
            print(f"skipped: {p}", file=sys.stderr)
        # the same pass over the faces as drr-eval: the box's source decides the passes (model.predict)
        ev = evaluate(predictor, samples, "truth" if a.no_detector else "detector")
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"gallery: {exc}", file=sys.stderr)
        return 2
    image_of = {s.name: s.image for s in samples}
    errors = ev.errors("inter-pupil") * 100
    faces = [(float(e), name, image_of[name], stages[-1], truth)
             for e, name, stages, truth in zip(errors, ev.names, ev.stages, ev.truth)]
    faces.sort(key=lambda f: f[0])
    n, k = len(faces), min(a.per_row, len(faces))
    mid = max(0, n // 2 - k // 2)
    rows = [("best", faces[:k]), ("median", faces[mid : mid + k]), ("worst", faces[-k:])]
    sheet = []
    for title, row in rows:
        cells = [draw_face(read_image(f[2]), f[3], f[4], f"{title} {f[0]:.1f}%  {Path(f[1]).name}") for f in row]
        cells += [np.zeros((CELL, CELL, 3), np.uint8)] * (k - len(cells))
        sheet.append(np.concatenate(cells, axis=1))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    if not cv2.imwrite(str(tmp), np.concatenate(sheet, axis=0)):
        print(f"gallery: could not write {out}", file=sys.stderr)
        return 1
    tmp.replace(out)
    print(f"{n} faces ({len(ev.skipped)} skipped: missed by the detector or unreadable): inter-pupil NME "
          f"mean {errors.mean():.2f}%, median {np.median(errors):.2f}%; sheet written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
