"""Shared pieces of the benchmarks: the validation faces, crops, per-step summaries, timing,
markdown tables and a description of the machine the numbers were taken on."""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model import geometry
from model.data import Sample, read_name_list
from model.images import IMAGE_SUFFIXES
from model.inference import keep_freed_memory, native_bf16
from model.layout import layout_for
from model.metrics import auc, failure_rate, nme
from model.pts import PtsError, read_pts
from model.resources import DEFAULT_WEIGHTS, HELDOUT_WEIGHTS, VAL_SPLIT, resource

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "300w_train"
DEFAULT_SPLIT = resource(VAL_SPLIT)
DEFAULT_CHECKPOINT = resource(DEFAULT_WEIGHTS)
# benchmarks that count errors on the validation split default to the held-out twin (the same
# recipe trained without those faces): the shipped model trained on them
HELDOUT_CHECKPOINT = resource(HELDOUT_WEIGHTS)
DEFAULT_OUT = REPO / "bench" / "results"


def trained_on_validation(predictor) -> bool:
    """The checkpoint was trained with no validation split (the shipped all-faces model)."""
    return predictor.meta.get("val_faces") == 0
KINDS = ("inter-pupil", "inter-ocular")


def load_split(data: str | Path, names_file: str | Path, limit: int | None = None) -> tuple[list[Sample], list[str]]:
    """The faces named in a split file (names relative to `data`, without suffix) in sorted
    order, at most `limit` of them; returns (samples, problems), problems naming the file."""
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such data folder")
    names = sorted(read_name_list(names_file))
    if not names:
        raise ValueError(f"{names_file}: no names in the split file")
    samples: list[Sample] = []
    problems: list[str] = []
    for name in names:
        if limit is not None and len(samples) >= limit:
            break
        image = next((p for p in (data / (name + s) for s in IMAGE_SUFFIXES) if p.is_file()), None)
        if image is None:
            problems.append(f"{data / name}: no picture with that name")
            continue
        try:
            points = read_pts(image.with_suffix(".pts"))
        except PtsError as exc:
            problems.append(str(exc))
            continue
        samples.append(Sample(image, points, name))
    if not samples:
        raise ValueError(f"none of the names in {names_file} were found under {data}")
    return samples, problems


def stage_names(num_stages: int) -> list[str]:
    """S_hat, S0 .. S_K for a (n, K + 2, p, 2) stack of stages."""
    return ["S_hat"] + [f"S{k}" for k in range(num_stages - 1)]


def summarise(stages: np.ndarray, truth: np.ndarray, names: list[str] | None = None) -> dict:
    """NME (%) of every stage, and AUC@0.08, failure rate, median and mean signed offset of the
    last one. stages (n, S, p, 2), truth (n, p, 2), both in the same (picture or crop) pixels;
    crops are similarity transforms of the picture, so the normalised errors are the same."""
    stages = np.asarray(stages, dtype=np.float64)
    names = names or stage_names(stages.shape[1])
    layout = layout_for(truth.shape[1])
    out: dict = {"faces": int(len(truth))}
    for kind in KINDS:
        per = [nme(stages[:, k], truth, layout, kind) for k in range(stages.shape[1])]
        e = per[-1]
        out[kind] = {
            "nme": float(e.mean() * 100),
            "median": float(np.median(e) * 100),
            "auc@0.08": auc(e),
            "failure@0.08": failure_rate(e),
            "steps": {n: float(p.mean() * 100) for n, p in zip(names, per)},
        }
    bias = (stages[:, -1] - truth).mean(axis=(0, 1))
    out["mean_offset_px"] = [float(bias[0]), float(bias[1])]
    return out


def face_errors(stages: np.ndarray, truth: np.ndarray, kind: str = "inter-pupil") -> np.ndarray:
    """Per-face NME of the last stage, (n,)."""
    return nme(np.asarray(stages)[:, -1], truth, layout_for(truth.shape[1]), kind)


def truth_crops(samples: list[Sample], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops (n, S, S, 3) uint8 cut with the tight landmark box (the training protocol) and
    the annotated points in crop pixels (n, p, 2)."""
    from model.images import read_image

    crops, pts = [], []
    for s in samples:
        m = geometry.crop_matrix(geometry.box_of_points(s.points), size)
        crops.append(geometry.warp(read_image(s.image), m, size))
        pts.append(geometry.apply(m, s.points))
    return np.stack(crops), np.stack(pts)


def pick_device(name: str | None) -> str:
    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return name


def set_threads(n: int = 0) -> int:
    """Use n CPU threads (0 = every core this process may run on)."""
    keep_freed_memory()  # every benchmark predicts in a loop, as the CLI tools do
    if n <= 0:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return torch.get_num_threads()


def synchroniser(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def time_ms(fn: Callable[[], object], warmup: int = 3, repeats: int = 20, max_seconds: float = 20.0,
            min_repeats: int = 3, sync: Callable[[], None] | None = None) -> dict:
    """Median (and min) wall time of fn in ms after `warmup` calls; stops after `repeats` runs,
    or earlier once `max_seconds` have passed and at least `min_repeats` runs were made."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max(repeats, 1):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000.0)
        if len(times) >= min_repeats and time.perf_counter() - start > max_seconds:
            break
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": len(times)}


def median_ms(times_s: list[float]) -> float | None:
    return statistics.median(times_s) * 1000.0 if times_s else None


def md_table(header: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu") -> dict:
    """Where and when the numbers were taken (timings depend on all of it)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "git": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        # the vector units decide the speed: AVX2 machines ran these models 2-3x slower
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _plain(v: object) -> object:
    """JSON-safe copy: NaN and infinities become null (standard JSON has no NaN)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_json(path: str | Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(obj), indent=2, allow_nan=False) + "\n")


def checkpoint_label(spec: str) -> tuple[str, Path]:
    """'LABEL=PATH' or PATH; runs/x/best.pt is labelled x/best."""
    if "=" in spec and not Path(spec).exists():
        label, path = spec.split("=", 1)
        return label, Path(path)
    p = Path(spec)
    return (f"{p.parent.name}/{p.stem}" if p.stem in ("best", "last") else p.stem), p


# dlib's HOG detector, kept in the benchmarks for the comparison (dlib is in the `bench` extra,
# not a runtime dependency). Its box is related to the landmark box by the calibration the app
# used before YuNet (median over 345 training faces).
DLIB_CALIBRATION = {"dx": -0.024, "dy": 0.085, "side": 0.893}


def dlib_hog_boxes(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """dlib HOG faces as (raw box, box in the landmark convention, score), best first; as the
    app ran it (pictures over 1600 px reduced, one upsampling below 800 px)."""
    import cv2

    h, w = image.shape[:2]
    f = min(1.0, 1600 / max(h, w))
    img = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else image
    dets, scores, _ = _hog().run(np.ascontiguousarray(img), 1 if max(img.shape[:2]) < 800 else 0, 0.0)
    out = []
    for d, s in zip(dets, scores):
        raw = np.array([d.left(), d.top(), d.right(), d.bottom()], dtype=np.float64) / f
        bw = raw[2] - raw[0]
        cx = (raw[0] + raw[2]) / 2 + DLIB_CALIBRATION["dx"] * bw
        cy = (raw[1] + raw[3]) / 2 + DLIB_CALIBRATION["dy"] * bw
        half = DLIB_CALIBRATION["side"] * bw / 2
        out.append((raw, np.array([cx - half, cy - half, cx + half, cy + half]), float(s)))
    return sorted(out, key=lambda t: -t[2])


@functools.lru_cache(maxsize=1)
def _hog():
    import dlib  # the bench extra only

    return dlib.get_frontal_face_detector()
