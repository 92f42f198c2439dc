"""drr-predict: landmarks for pictures, one iBUG .pts per face (and the whole trace with --trace)."""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..annotation_files import ClipAnnotation, pts_name, write_clip_frame, write_clip_sidecar
from ..checkpoint import CheckpointError
from ..images import ImageError, is_image_file, list_images, read_image
from ..inference import PRECISIONS, keep_freed_memory
from ..metrics import REVIEW_MIRROR_GAP
from ..options import MIRROR_AVERAGE
from ..predict import FaceResult, Predictor
from ..pts import write_pts
from ..tracking import Tracker, TrackerSettings, clip_faces
from ..video import VideoError, VideoReader, is_video_file


def expand_inputs(items: list[str]) -> tuple[list[Path], list[str], list[Path]]:
    """(pictures, problems, clips): folders give their pictures, clips are listed apart."""
    files, problems, clips = [], [], []
    for it in items:
        p = Path(it)
        if p.is_dir():
            found = list_images(p)
            if not found:
                problems.append(f"{p}: no pictures in this folder")
            files += found
        elif p.is_file():
            if is_image_file(p):
                files.append(p)
            elif is_video_file(p):
                clips.append(p)
            else:
                problems.append(f"{p}: not a picture or video file (by its suffix)")
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems, clips


def predict_clip(predictor: Predictor, path: Path, out: Path, smoothing: bool = True) -> tuple[int, float]:
    """Track the faces of a clip into out/CLIP/000001.pts, ... and its side file (model.tracking,
    model.annotation_files). Returns (frames, seconds, reading included); VideoError or OSError
    propagate, naming the file. A clip that stops decoding part way (truncated) keeps the frames
    tracked before, and its side file says how far it got ("tracked")."""
    start = time.perf_counter()
    with VideoReader(path) as reader:
        tracker = Tracker(predictor, TrackerSettings(smoothing=smoothing), reader.fps)
        folder = out / path.stem
        clip = ClipAnnotation(path.name, len(reader), reader.fps, tracked=0)
        try:
            for image in tqdm(reader, total=len(reader), desc=path.name, unit="frame"):
                frame = tracker.step(image)
                if frame.cut:
                    clip.cuts.append(frame.index)
                clip.frames[frame.index] = clip_faces(frame)
                write_clip_frame(folder, frame.index, clip.frames[frame.index])
                clip.tracked = frame.index + 1
        finally:
            clip.frame_count = len(reader)
            if clip.tracked:
                write_clip_sidecar(folder, clip)
    return clip.frame_count, time.perf_counter() - start


def predict_clips(predictor: Predictor, clips: list[Path], out: Path, smoothing: bool) -> int:
    """Every clip in turn; the number that failed (each named on stderr)."""
    failed = 0
    for path in clips:
        try:
            frames, seconds = predict_clip(predictor, path, out, smoothing)
        except (VideoError, OSError) as exc:
            failed += 1
            print(f"drr-predict: {exc}", file=sys.stderr)
            continue
        print(f"drr-predict: {path.name}: {frames} frames tracked into {out / path.stem} "
              f"in {seconds:.1f} s ({frames / max(seconds, 1e-9):.1f} frames per second, reading included)")
    return failed


def read_boxes(path: str) -> dict[str, list[np.ndarray]]:
    """boxes.json: {"file name": [x0, y0, x1, y1]} or {"file name": [[...], [...]]}."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the boxes file ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object mapping file names to boxes")
    out = {}
    for name, v in raw.items():
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != 4 or not np.isfinite(arr).all():
            raise ValueError(f"{path}: box for {name!r} is not [x0, y0, x1, y1]")
        if ((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])).any():
            raise ValueError(f"{path}: box for {name!r} has x1 <= x0 or y1 <= y0")
        out[name] = list(arr)
    return out


def save_trace(path: Path, r: FaceResult) -> None:
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, box=r.box, points=r.points, s_hat=r.s_hat, s0=r.s0, steps=r.steps,
                        candidate_index=r.candidate_index, candidate_distances=r.candidate_distances,
                        candidates=r.candidates, heatmaps=r.heatmaps.astype(np.float16),
                        crop_to_image=r.crop_to_image, sip_box_image=r.sip_box_image)
    tmp.replace(path)


def draw_faces(path: Path, image: np.ndarray, results: list[FaceResult], layout) -> None:
    """The picture with each face's box, lines and points, written atomically as PNG."""
    import cv2  # only needed for --draw

    canvas = np.ascontiguousarray(image[..., ::-1])  # RGB -> BGR for OpenCV
    size = max(image.shape[:2])
    thick = max(1, int(round(size / 500)))
    for r in results:
        x0, y0, x1, y1 = (int(round(v)) for v in r.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (200, 200, 200), thick, cv2.LINE_AA)
        pts = np.round(r.points * 16).astype(np.int32)  # 4 bits of sub-pixel precision
        for i, j in layout.lines():
            cv2.line(canvas, tuple(pts[i]), tuple(pts[j]), (60, 200, 255), thick, cv2.LINE_AA, shift=4)
        for (x, y), (cr, cg, cb) in zip(pts, layout.point_colors()):
            cv2.circle(canvas, (int(x), int(y)), (thick + 1) * 16, (cb, cg, cr), -1, cv2.LINE_AA, shift=4)
    ok, data = cv2.imencode(".png", canvas)
    if not ok:
        raise OSError(f"{path}: could not encode the drawing")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)


# a full disk, a read-only or forbidden output folder: no later picture can be written either
OUTPUT_FATAL = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drr-predict", description=__doc__)
    ap.add_argument("images", nargs="+", help="pictures, folders of pictures, or video clips (mp4, avi, mov, mkv, ...: "
                    "each tracked into OUT/CLIP/000001.pts, ...)")
    ap.add_argument("--out", required=True, help="folder for the .pts files")
    ap.add_argument("--boxes", help="JSON mapping a file name to its face box [x0, y0, x1, y1] (pixels)")
    ap.add_argument("--checkpoint", help="default: the shipped model")
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--mirror-average", action=argparse.BooleanOptionalAction, default=MIRROR_AVERAGE,
                    help="also run each face mirrored and average the two shapes (more accurate, about twice "
                         "the time); faces whose two passes disagree are listed to check first")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="auto (default): bf16 backbone on a CPU with native bf16, else fp32")
    ap.add_argument("--trace", action="store_true", help="also save the whole trace per face (.npz)")
    ap.add_argument("--draw", action="store_true", help="also save each picture with its points drawn (.drawn.png)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for the network (default: torch's choice, every core). On a machine "
                         "other programs keep busy, 1 can be much faster: bench.video tracked 65 frames/s with one "
                         "thread and 5.6 with two on 2 cores at load 7")
    ap.add_argument("--no-smoothing", action="store_true",
                    help="clips: the tracked points as the network gives them, without the One-Euro shape filter")
    return ap


class OutputFailed(Exception):
    """The output folder cannot take another file (full, read-only): the message, said once."""


def predict_picture(predictor: Predictor, f: Path, out: Path, boxes: dict | None, a: argparse.Namespace,
                    doubtful: list[str]) -> int:
    """One picture's faces written as NAME.pts, NAME_face2.pts, ... (the app's names, no side
    file: the app and drr-train read them as a person's annotations to check); returns the
    number of faces. ImageError for the picture; OutputFailed when nothing more can be written."""
    img = read_image(f)
    if boxes is not None and f.name not in boxes:
        raise ImageError(f"{f}: no box for it in {a.boxes}")
    results = predictor.inference(img, boxes[f.name] if boxes is not None else None)
    if not results:
        raise ImageError(f"{f}: no face found")
    try:
        for i, r in enumerate(results):
            name = pts_name(f.stem, i)
            write_pts(out / name, r.points)
            if r.needs_review:
                doubtful.append(f"{name} ({r.uncertainty:.1f}%)")
            if a.trace:
                save_trace(out / (name.removesuffix(".pts") + ".trace.npz"), r)
        if a.draw:
            draw_faces(out / f"{f.stem}.drawn.png", img, results, predictor.layout)
    except OSError as exc:
        if exc.errno in OUTPUT_FATAL:  # every next picture would fail the same way: say it once, stop
            raise OutputFailed(f"{exc.filename or out}: {exc.strerror}; stopped at {f.name} (the .pts written "
                               "so far are complete, no partial file is left)") from None
        raise ImageError(f"{f}: {exc.strerror or exc}") from None
    return len(results)


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # a tool that predicts in a loop (see model.inference)
    a = build_parser().parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        predictor = Predictor.load(a.checkpoint, a.device, a.mirror_average, a.precision)
        boxes = read_boxes(a.boxes) if a.boxes else None
    except (CheckpointError, ValueError) as exc:
        print(f"drr-predict: {exc}", file=sys.stderr)
        return 2
    files, problems, clips = expand_inputs(a.images)
    for p in problems:
        print(f"drr-predict: {p}", file=sys.stderr)
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"drr-predict: {out}: cannot create the output folder ({exc.strerror})", file=sys.stderr)
        return 2
    failed, faces, doubtful = len(problems), 0, []
    clips_failed = predict_clips(predictor, clips, out, not a.no_smoothing) if clips else 0
    if clips and not files:
        return 1 if failed or clips_failed else 0
    for f in tqdm(files, desc="predicting", unit="image"):
        try:
            faces += predict_picture(predictor, f, out, boxes, a, doubtful)
        except OutputFailed as exc:
            tqdm.write(f"drr-predict: {exc}", file=sys.stderr)
            return 1
        except (ImageError, OSError) as exc:
            failed += 1
            tqdm.write(f"drr-predict: {exc}", file=sys.stderr)
    done = len(files) - (failed - len(problems))
    print(f"drr-predict: {faces} faces from {done} pictures written to {out}"
          + (f"; {failed} problems (see above)" if failed else ""))
    if doubtful:
        print(f"drr-predict: check first, the mirror passes disagree by {REVIEW_MIRROR_GAP:.0f}% of the eye "
              f"distance or more: {', '.join(doubtful)}")
    return 1 if failed or clips_failed else 0


if __name__ == "__main__":
    sys.exit(main())
