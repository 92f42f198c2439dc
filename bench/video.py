"""Video: DRR tracking against running every frame on its own, on synthetic clips.

    python -m bench.video                     # 3 clips x 60 frames (2 stills each: one cut per clip)
    python -m bench.video --clips 10 --frames 120 --stills 3
    python -m bench.video --mirror            # both methods mirror-averaged

No 68-point annotated video is at hand, so the clips are built from held-out stills of the
validation split (resources/val_split.txt; the shipped model never trained on them), each moving
on a 640 x 480 canvas (bench/video_clips.py: scale, roll up to 20 degrees, translation,
brightness drift, blur on one frame in ten, noise), encoded with OpenCV's mp4v writer into a
temporary folder and decoded back, the ground truth moved with them. THE MOTION IS 2-D: the
whole still moves as a picture does; no head turns in depth, no expression changes.

Methods (each reads the clip with model.video.VideoReader, decoding timed in):
  frame by frame   every frame as a picture: the detector, then one pass (the detector's policy)
  tracking         model.tracking.Tracker as drr-predict runs it (shape smoothing on)
  no smoothing     the same without the One-Euro shape filter
  S0 previous      no smoothing, and the previous frame's points as S^0 instead of a candidate
Reported per method: NME per frame (inter-ocular %, mean over frames), jitter (mean change of
the error vector between consecutive frames of one shot, % of the inter-ocular distance),
frames per second at 640 x 480 including decoding (wall clock: it depends on what else runs on
the machine, the load average is printed), frames per CPU-second (this process's CPU time over
all its threads, which other programs' load does not inflate as much; with --threads 1 on an idle
core it is the frame rate), detector calls, frames without a face.

Simulated annotator for clips (tau 0.07 of the outer-eye-corner distance, as bench.annotator):
  frame by frame, assisted   every frame's own prediction corrected with assisted correction
                             (model.correction, the shipped model's statistics): the farthest
                             point placed on the truth, the others follow, until all are in tau
  tracking, assisted         the same on the tracked points
  tracking + propagation     scanning the clip in order, the first frame whose worst point is
                             beyond tau is corrected that way and becomes a keyframe; the tracked
                             points of the other frames are pulled towards the keyframes
                             (model.tracking.propagate); until no frame is beyond tau
  + re-tracking              the same, and after each correction the frames after it up to the
                             next keyframe or cut are tracked again from the corrected points
                             (model.tracking.retrack), the correction carried forward measured
                             against the network's points on the keyframe framed by them
  re-tracking, correction    the same, the correction carried forward measured against the
    against the first points tracker's first points on the keyframe (as propagation alone does)
Corrections are counted per point placed, summed per clip. The statistics are the shipped
ones (resources/drr_default.correction.json: the training faces' residuals, their covariance's
scale calibrated on the validation faces these stills come from, which favours every assisted
row alike, slightly).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.checkpoint import CheckpointError
from model.correction import CorrectionModel, for_checkpoint
from model.geometry import box_iou, box_of_points
from model.images import read_image
from model.layout import layout_for
from model.metrics import jitter, nme
from model.predict import Predictor
from model.tracking import Tracker, TrackerSettings, propagate, retrack
from model.video import VideoReader, write_video

from .annotator import simulate
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
from .video_clips import Clip, make_clip

LAYOUT = layout_for(68)
TAU = 0.07
METHODS = {
    "frame by frame": None,
    "tracking": TrackerSettings(),
    "no smoothing": TrackerSettings(smoothing=False),
    "S0 previous": TrackerSettings(smoothing=False, start_from_previous=True),
}


@dataclass
class Run:
    points: list[np.ndarray | None]  # per frame, the face matched to the truth (None: no face)
    seconds: float
    cpu_seconds: float  # this process's CPU time (all its threads): the other programs' load not in it
    detector_calls: int


def matched(faces: list[np.ndarray], truth: np.ndarray) -> np.ndarray | None:
    """The face whose tight box overlaps the truth's most (IoU >= 0.3)."""
    tb = box_of_points(truth)
    iou, best = max(((box_iou(box_of_points(f), tb), f) for f in faces), key=lambda t: t[0], default=(0.0, None))
    return best if iou >= 0.3 else None


def run_method(predictor: Predictor, path: Path, truth: list[np.ndarray], settings: TrackerSettings | None) -> Run:
    """One method over one encoded clip, decoding included in the time."""
    start, cpu = time.perf_counter(), time.process_time()
    points: list[np.ndarray | None] = []
    with VideoReader(path) as reader:
        tracker = Tracker(predictor, settings, reader.fps) if settings is not None else None
        for i, image in enumerate(reader):
            if tracker is None:
                faces = [r.points for r in predictor.inference(image)]
            else:
                faces = [f.points for f in tracker.step(image).faces]
            points.append(matched(faces, truth[i]))
    calls = len(points) if tracker is None else tracker.detector_calls
    return Run(points, time.perf_counter() - start, time.process_time() - cpu, calls)


def shots(n: int, cuts: list[int]) -> list[range]:
    edges = [0, *cuts, n]
    return [range(a, b) for a, b in zip(edges[:-1], edges[1:])]


def scores(run: Run, clip: Clip) -> dict:
    """NME per frame and jitter of one run (frames without a face left out and counted)."""
    have = [i for i, p in enumerate(run.points) if p is not None]
    e = nme(np.stack([run.points[i] for i in have]), np.stack([clip.truth[i] for i in have]), LAYOUT, "inter-ocular")
    steps = []
    for shot in shots(len(clip.truth), clip.cuts):
        for a in shot[:-1]:
            if run.points[a] is not None and run.points[a + 1] is not None:
                steps += list(jitter(np.stack([run.points[a], run.points[a + 1]]),
                                     np.stack([clip.truth[a], clip.truth[a + 1]]), LAYOUT))
    return {"nme_per_frame": list(e * 100), "jitter_steps": [s * 100 for s in steps], "missed": len(run.points) - len(have)}


def annotate_frames(points: list[np.ndarray | None], truth: list[np.ndarray], stats: CorrectionModel) -> int:
    """Corrections when every frame is corrected on its own (a frame without a face: all points)."""
    return sum(simulate(p, t, TAU, stats)[0] if p is not None else len(t) for p, t in zip(points, truth))


def worst_beyond(points: np.ndarray, truth: np.ndarray) -> bool:
    d = float(np.linalg.norm(truth[36] - truth[45]))
    return float(np.linalg.norm(points - truth, axis=1).max()) > TAU * d


Retracker = Callable[[int, np.ndarray, int], tuple[np.ndarray, list[np.ndarray]]]
ANNOTATOR_MODES = {  # mode: (re-track after each correction, carry the correction forward from its base)
    "tracking + propagation": (False, False),
    "tracking + propagation + re-tracking": (True, True),
    "re-tracking, correction against the first points": (True, False),
}


def annotate_with_propagation(points: list[np.ndarray | None], truth: list[np.ndarray], cuts: list[int],
                              stats: CorrectionModel, retrack: Retracker | None = None,
                              use_base: bool = True) -> dict:
    """The first frame beyond tau is corrected and becomes a keyframe; with `retrack`, the frames
    after it up to the next keyframe or cut are tracked again from the corrected points
    (model.tracking.retrack); propagation moves the others; until no frame is beyond tau.
    {corrections, keyframes, nme (the final points, inter-ocular % per frame), retracked frames}."""
    n = len(truth)
    model = {i: (p if p is not None else truth[i]) for i, p in enumerate(points)}
    keys: dict[int, np.ndarray] = {}
    bases: dict[int, np.ndarray] = {}
    count = sum(len(t) for p, t in zip(points, truth) if p is None)  # no face: a person places every point
    keys.update({i: truth[i] for i, p in enumerate(points) if p is None})
    retracked = 0
    current = propagate(model, keys, set(cuts))
    for _ in range(n):
        bad = next((i for i in range(n) if i not in keys and worst_beyond(current[i], truth[i])), None)
        if bad is None:
            break
        clicks, fixed = simulate(current[bad], truth[bad], TAU, stats)
        count += clicks
        keys[bad] = fixed
        if retrack is not None:
            end = min([k for k in keys if k > bad] + [c for c in cuts if c > bad] + [n])
            base, again = retrack(bad, fixed, end)
            model.update({bad + 1 + j: p for j, p in enumerate(again)})
            retracked += len(again)
            if use_base:
                bases[bad] = base
        current = propagate(model, keys, set(cuts), bases)
    final = nme(np.stack([current[i] for i in range(n)]), np.stack(truth), LAYOUT, "inter-ocular") * 100
    return {"corrections": count, "keyframes": len(keys), "nme": float(np.mean(final)), "retracked": retracked}


def retracker(predictor: Predictor, reader: VideoReader) -> Retracker:
    """Re-tracking over a clip's frames: (keyframe, the person's points, end) -> (base, points
    of the frames keyframe + 1 .. end - 1 until the face is lost)."""
    def run(frame: int, points: np.ndarray, end: int) -> tuple[np.ndarray, list[np.ndarray]]:
        images = (reader.frame(f) for f in range(frame + 1, end))
        return retrack(predictor, reader.frame(frame), points, images, TrackerSettings(), reader.fps)
    return run


GAP_STEPS = (1, 2, 3, 5, 10, 20)


def retrack_gap(predictor: Predictor, clips: list[tuple[Path, Clip]]) -> dict:
    """Each shot re-tracked from the truth on its third frame, against the tracker's own chain:
    the mean point distance between the two (% of the inter-ocular distance) 1, 2, ... frames
    later, and both chains' NME over the re-tracked frames."""
    gaps: dict[int, list[float]] = {n: [] for n in GAP_STEPS}
    errors: dict[str, list[float]] = {"tracker": [], "re-tracked from the truth": []}
    for path, clip in clips:
        run = run_method(predictor, path, clip.truth, TrackerSettings())
        with VideoReader(path) as reader:
            for shot in shots(len(clip.truth), clip.cuts):
                k = shot.start + 2
                if k >= shot.stop - 1:
                    continue
                images = (reader.frame(f) for f in range(k + 1, shot.stop))
                _, again = retrack(predictor, reader.frame(k), clip.truth[k], images, TrackerSettings(), reader.fps)
                for j, p in enumerate(again):
                    f, d = k + 1 + j, float(np.linalg.norm(clip.truth[k + 1 + j][36] - clip.truth[k + 1 + j][45]))
                    if run.points[f] is None:
                        continue
                    if j + 1 in gaps:
                        gaps[j + 1].append(float(np.linalg.norm(p - run.points[f], axis=1).mean() / d * 100))
                    errors["tracker"].append(float(np.linalg.norm(run.points[f] - clip.truth[f], axis=1).mean() / d * 100))
                    errors["re-tracked from the truth"].append(float(np.linalg.norm(p - clip.truth[f], axis=1).mean() / d * 100))
    return {"gap_after_frames": {n: float(np.mean(v)) for n, v in gaps.items() if v},
            "nme": {k: float(np.mean(v)) for k, v in errors.items()}, "frames": len(errors["tracker"])}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT))
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--frames", type=int, default=60, help="frames per clip")
    ap.add_argument("--stills", type=int, default=2, help="stills per clip (each after the first makes a cut)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mirror", action="store_true", help="mirror-average every pass (both methods)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all this process may use)")
    ap.add_argument("--json", default=str(DEFAULT_OUT / "video.json"))
    ap.add_argument("--retrack-gap", action="store_true",
                    help="only: how far re-tracking from the truth on each shot's third frame stays from the tracker's chain")
    return ap


def build_clips(a: argparse.Namespace, folder: Path) -> list[tuple[Path, Clip]]:
    samples, problems = load_split(DEFAULT_DATA, DEFAULT_SPLIT)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    rng = np.random.default_rng(a.seed)
    picks = rng.choice(len(samples), size=a.clips * a.stills, replace=False)
    out = []
    per_still = max(2, a.frames // a.stills)
    for c in range(a.clips):
        stills = [(read_image(samples[i].image), samples[i].points) for i in picks[c * a.stills:(c + 1) * a.stills]]
        clip = make_clip(stills, per_still, seed=a.seed * 1000 + c)
        out.append((write_video(folder / f"clip{c + 1}.mp4", clip.frames), clip))
        clip.frames = []  # the encoded file is what the methods read
        print(f"clip {c + 1}: {', '.join(samples[i].name for i in picks[c * a.stills:(c + 1) * a.stills])}", file=sys.stderr)
    return out


def measure(predictor: Predictor, clips: list[tuple[Path, Clip]], stats: CorrectionModel) -> dict:
    per: dict = {m: {"nme": [], "jitter": [], "frames": 0, "seconds": 0.0, "cpu_seconds": 0.0, "detector_calls": 0,
                     "missed": 0}
                 for m in METHODS}
    annot: dict[str, list] = {"frame by frame, assisted": [], "tracking, assisted": [], **{m: [] for m in ANNOTATOR_MODES}}
    detail: dict[str, dict[str, list]] = {k: {m: [] for m in ANNOTATOR_MODES} for k in ("keyframes", "nme", "retracked")}
    for path, clip in clips:
        runs = {m: run_method(predictor, path, clip.truth, s) for m, s in METHODS.items()}
        for m, run in runs.items():
            s = scores(run, clip)
            agg = per[m]
            agg["nme"] += s["nme_per_frame"]
            agg["jitter"] += s["jitter_steps"]
            agg["frames"] += len(run.points)
            agg["seconds"] += run.seconds
            agg["cpu_seconds"] += run.cpu_seconds
            agg["detector_calls"] += run.detector_calls
            agg["missed"] += s["missed"]
        annot["frame by frame, assisted"].append(annotate_frames(runs["frame by frame"].points, clip.truth, stats))
        annot["tracking, assisted"].append(annotate_frames(runs["tracking"].points, clip.truth, stats))
        with VideoReader(path) as reader:
            for mode, (again, use_base) in ANNOTATOR_MODES.items():
                out = annotate_with_propagation(runs["tracking"].points, clip.truth, clip.cuts, stats,
                                                retracker(predictor, reader) if again else None, use_base)
                annot[mode].append(out["corrections"])
                for k in detail:
                    detail[k][mode].append(out[k])
    methods = {m: {"nme": float(np.mean(v["nme"])), "jitter": float(np.mean(v["jitter"])),
                   "fps": v["frames"] / v["seconds"], "frames_per_cpu_second": v["frames"] / v["cpu_seconds"],
                   "detector_calls": v["detector_calls"], "frames": v["frames"],
                   "frames_without_face": v["missed"]} for m, v in per.items()}
    return {"methods": methods, "annotator": {k: [int(x) for x in v] for k, v in annot.items()},
            "annotator_keyframes": detail["keyframes"], "annotator_nme": detail["nme"],
            "annotator_retracked_frames": detail["retracked"]}


def report(res: dict, a: argparse.Namespace) -> None:
    m = res["methods"]
    base = m["frame by frame"]
    rows = [[name, v["nme"], v["jitter"], v["jitter"] / base["jitter"], v["fps"], v["frames_per_cpu_second"],
             v["detector_calls"], v["frames"], v["frames_without_face"]] for name, v in m.items()]
    print(f"\n{a.clips} clips x {a.frames} frames at 640x480 ({a.stills} stills each; 2-D motion), "
          f"{'mirror-averaged' if a.mirror else 'one pass'}, {res['environment']['cpu_threads']} threads, "
          f"load average {res['environment']['load_average'][0]:.1f}")
    print(md_table(["method", "NME % (inter-ocular)", "jitter %", "jitter / frame by frame", "frames/s",
                    "frames per CPU-s", "detector calls", "frames", "no face"], rows))
    an = res["annotator"]
    fbf = np.mean(an["frame by frame, assisted"])
    rows = []
    for k, v in an.items():
        keyed = k in ANNOTATOR_MODES
        rows.append([k, float(np.mean(v)), float(np.mean(v)) / fbf, " ".join(map(str, v)),
                     " ".join(map(str, res["annotator_keyframes"][k])) if keyed else "",
                     f"{np.mean(res['annotator_nme'][k]):.2f}" if keyed else "",
                     sum(res["annotator_retracked_frames"][k]) if keyed else ""])
    print(f"\nSimulated annotator, corrections (points placed) per clip, tau {TAU}")
    print(md_table(["mode", "mean per clip", "/ frame by frame", "per clip", "keyframes per clip",
                    "final NME %", "frames re-tracked"], rows))


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    set_threads(a.threads)
    try:
        predictor = Predictor.load(a.checkpoint, mirror_average=a.mirror)
        with tempfile.TemporaryDirectory(prefix="drr-bench-video-") as tmp:
            clips = build_clips(a, Path(tmp))
            stats, why = for_checkpoint(a.checkpoint, 68)
            if why:
                print(f"bench.video: {why}", file=sys.stderr)
            t0 = time.perf_counter()
            if a.retrack_gap:
                gap = retrack_gap(predictor, clips)
                print(f"\nre-tracked from the truth on each shot's third frame, {gap['frames']} frames: distance to the "
                      f"tracker's chain (% inter-ocular) after n frames {gap['gap_after_frames']}; NME {gap['nme']}")
                return 0
            res = measure(predictor, clips, stats)
    except (OSError, ValueError, CheckpointError) as exc:
        print(f"bench.video: {exc}", file=sys.stderr)
        return 2
    res.update(clips=a.clips, frames_per_clip=a.frames, stills_per_clip=a.stills, seed=a.seed, mirror=a.mirror,
               tau=TAU, checkpoint=str(a.checkpoint), size=[640, 480], motion="2-D (similarity of the still)",
               seconds=time.perf_counter() - t0, environment=environment("cpu"))
    report(res, a)
    if a.json:
        write_json(a.json, res)
        print(f"\nwritten {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
