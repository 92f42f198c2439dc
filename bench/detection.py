"""Face detection: recall and speed of the app's detector (YuNet, model.detect) against dlib's
HOG detector (the app's detector before it), and false faces on pictures without one.

    python -m bench.detection                      # the whole validation split, table + JSON
    python -m bench.detection --limit 20 --canvas-faces 5 --no-dlib    # quick look

Pictures:
  crops     the validation split's 384 px crops as they are (202 faces)
  canvases  the first --canvas-faces of them pasted at scales 0.25 / 0.5 / 1 / 2 / 3 into a
            1600 x 1200 picture of smooth colour noise at a random position (faces of about
            50 to 700 px, some cut by the frame): full-picture conditions
  no face   a blank frame, noise, stripes, a checkerboard, smooth noise, and the astronaut
            sample below her face (the badge and the suit)
A face counts as found when a detection, calibrated to the landmark-box convention, overlaps
the annotation's tight box by IoU >= 0.3 (model.detect.match_detection). YuNet is reported at
several score thresholds (one detection run at the lowest, filtered after); the app uses
model.detect.SCORE_THRESHOLD. Writes OUT/detection.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model import detect
from model.detect import MIN_MATCH_IOU
from model.geometry import box_iou, box_of_points
from model.images import read_image
from model.resources import SAMPLE, resource

from .common import DEFAULT_DATA, DEFAULT_OUT, DEFAULT_SPLIT, dlib_hog_boxes, load_split, md_table, write_json

THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
CANVAS = (1200, 1600)  # h, w
CANVAS_SCALES = (0.25, 0.5, 1.0, 2.0, 3.0)


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cells: int = 12) -> np.ndarray:
    small = rng.integers(0, 256, (cells, cells * shape[1] // shape[0], 3), dtype=np.uint8)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def paste(face: np.ndarray, points: np.ndarray, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The crop resized by scale at a random position of a noise canvas (it may stick out of the
    frame by up to a fifth of its size); returns the canvas and the moved points."""
    h, w = CANVAS
    img = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ih, iw = img.shape[:2]
    x = int(rng.integers(-iw // 5, max(w - iw + iw // 5, -iw // 5 + 1)))
    y = int(rng.integers(-ih // 5, max(h - ih + ih // 5, -ih // 5 + 1)))
    canvas = smooth_noise(CANVAS, rng)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + iw, w), min(y + ih, h)
    canvas[y0:y1, x0:x1] = img[y0 - y : y1 - y, x0 - x : x1 - x]
    # resized pixel centre u is source coordinate (u + 0.5) / scale - 0.5
    pts = (points + 0.5) * scale - 0.5 + [x, y]
    return canvas, pts


def face_free_pictures(rng: np.random.Generator) -> dict[str, np.ndarray]:
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = ((xx // 12) % 2 * 255).astype(np.uint8)
    checker = (((xx // 40) + (yy // 40)) % 2 * 255).astype(np.uint8)
    astronaut = read_image(resource(SAMPLE))
    return {
        "blank frame": np.zeros((h, w, 3), np.uint8),
        "grey frame": np.full((h, w, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "stripes": np.repeat(stripes[..., None], 3, axis=2),
        "checkerboard": np.repeat(checker[..., None], 3, axis=2),
        "smooth noise": smooth_noise((h, w), rng),
        "astronaut below the face (badge, suit)": np.ascontiguousarray(astronaut[220:]),
    }


def run_yunet(img: np.ndarray) -> tuple[list[tuple[np.ndarray, float]], float]:
    t0 = time.perf_counter()
    found = detect.detect_raw(img, min_score=min(THRESHOLDS))
    dt = time.perf_counter() - t0
    return [(detect.to_landmark_box(b), s) for b, s, _ in found], dt


def run_dlib(img: np.ndarray) -> tuple[list[tuple[np.ndarray, float]], float]:
    t0 = time.perf_counter()
    found = dlib_hog_boxes(img)
    dt = time.perf_counter() - t0
    return [(c, s) for _, c, s in found], dt


def found_face(dets: list[tuple[np.ndarray, float]], truth: np.ndarray, threshold: float = -np.inf) -> bool:
    return any(box_iou(b, truth) >= MIN_MATCH_IOU for b, s in dets if s >= threshold)


def measure(pictures, use_dlib: bool, progress: bool, desc: str) -> dict:
    """pictures: iterable of (image, truth box or None). Per detector: found flags per
    threshold, detections on face-free pictures, and seconds per picture."""
    out = {"yunet": {"found": {t: [] for t in THRESHOLDS}, "false": {t: [] for t in THRESHOLDS}, "seconds": []}}
    if use_dlib:
        out["dlib_hog"] = {"found": {0.0: []}, "false": {0.0: []}, "seconds": []}
    for img, truth in tqdm(pictures, desc=desc, unit="picture", disable=not progress):
        runs = {"yunet": run_yunet(img)}
        if use_dlib:
            runs["dlib_hog"] = run_dlib(img)
        for name, (dets, dt) in runs.items():
            out[name]["seconds"].append(dt)
            for t in out[name]["found"]:
                if truth is None:
                    out[name]["false"][t].append(sum(s >= t for _, s in dets))
                else:
                    out[name]["found"][t].append(found_face(dets, truth, t))
    return out


def summarise(raw: dict) -> dict:
    res = {}
    for name, r in raw.items():
        res[name] = {
            "recall": {str(t): (float(np.mean(v)) if v else None) for t, v in r["found"].items()},
            "found": {str(t): int(np.sum(v)) for t, v in r["found"].items()},
            "faces": len(next(iter(r["found"].values()))),
            "false_faces": {str(t): int(np.sum(v)) for t, v in r["false"].items()},
            "ms_per_picture": float(np.median(r["seconds"]) * 1000) if r["seconds"] else None,
        }
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--names", default=str(DEFAULT_SPLIT))
    ap.add_argument("--limit", type=int, help="only the first N validation faces")
    ap.add_argument("--canvas-faces", type=int, default=40, help="faces pasted into canvases (x5 scales)")
    ap.add_argument("--no-dlib", action="store_true", help="YuNet only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    use_dlib = not a.no_dlib
    if use_dlib:
        try:
            import dlib  # noqa: F401
        except ImportError:
            print("bench.detection: dlib is not installed (pip install -e '.[bench]'), or use --no-dlib", file=sys.stderr)
            return 2
    try:
        samples, problems = load_split(a.data, a.names, a.limit)
    except (OSError, ValueError) as exc:
        print(f"bench.detection: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(a.seed)
    crops = measure(((read_image(s.image), box_of_points(s.points)) for s in samples), use_dlib, not a.quiet, "crops")

    def canvases():
        for s in samples[: a.canvas_faces]:
            img = read_image(s.image)
            for sc in CANVAS_SCALES:
                canvas, pts = paste(img, s.points, sc, rng)
                yield canvas, box_of_points(pts)

    canv = measure(canvases(), use_dlib, not a.quiet, "canvases")
    free = face_free_pictures(rng)
    none = measure(((img, None) for img in free.values()), use_dlib, not a.quiet, "no face")
    per_picture = {name: {"yunet": int(sum(s >= detect.SCORE_THRESHOLD for _, s in run_yunet(img)[0]))}
                   for name, img in free.items()}
    rep = {"crops": summarise(crops), "canvases": summarise(canv), "no_face": summarise(none),
           "no_face_pictures": per_picture, "score_threshold": detect.SCORE_THRESHOLD,
           "nms_iou": detect.NMS_IOU, "canvas": CANVAS, "canvas_scales": CANVAS_SCALES,
           "faces": len(samples), "canvas_faces": min(a.canvas_faces, len(samples)), "skipped": problems}
    print(format_report(rep))
    out = Path(a.out) / "detection.json"
    write_json(out, rep)
    print(f"wrote {out}")
    return 0


def format_report(rep: dict) -> str:
    rows = []
    for name, label in (("yunet", "YuNet"), ("dlib_hog", "dlib HOG")):
        if name not in rep["crops"]:
            continue
        for t in rep["crops"][name]["recall"]:
            c, v, n = rep["crops"][name], rep["canvases"][name], rep["no_face"][name]
            star = " (the app)" if name == "yunet" and float(t) == rep["score_threshold"] else ""
            rows.append([f"{label}, score >= {t}{star}" if name == "yunet" else label,
                         f"{c['found'][t]} of {c['faces']}", f"{v['found'][t]} of {v['faces']}",
                         n["false_faces"][t], c["ms_per_picture"], v["ms_per_picture"]])
    header = ["detector", "validation crops found", f"in {rep['canvas'][1]}x{rep['canvas'][0]} canvases found",
              f"false faces in {len(rep['no_face_pictures'])} face-free pictures", "ms per crop", "ms per canvas"]
    lines = [md_table(header, rows), "", "face-free pictures, YuNet detections at the app's threshold: "
             + ", ".join(f"{k} {v['yunet']}" for k, v in rep["no_face_pictures"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
