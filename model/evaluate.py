"""drr-eval: NME (inter-pupil and inter-ocular) per refinement step, AUC@0.08, failure rate and
the CED curve of a checkpoint on a folder of annotated pictures."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import geometry
from .annotation_files import ClipAnnotation
from .data import Sample
from .images import ImageError, read_image
from .layout import layout_for
from .metrics import auc, ced, failure_rate, jitter, nme
from .predict import BoxSource, Predictor, pre_label


@dataclass
class Evaluation:
    names: list[str]
    # (n, K + 2, p, 2): S_hat, S^0 .. S^K per face, picture coordinates
    stages: np.ndarray
    truth: np.ndarray  # (n, p, 2)
    skipped: list[str] = field(default_factory=list)
    gaps: list[float | None] = field(default_factory=list)  # mirror-pass gap per face (mirror averaging)

    def stage_names(self) -> list[str]:
        return ["S_hat"] + [f"S{k}" for k in range(self.stages.shape[1] - 1)]

    def errors(self, kind: str = "inter-pupil", stage: int = -1) -> np.ndarray:
        layout = layout_for(self.truth.shape[1])
        return nme(self.stages[:, stage], self.truth, layout, kind)

    def summary(self) -> dict:
        out: dict = {"faces": len(self.names), "skipped": len(self.skipped)}
        for kind in ("inter-pupil", "inter-ocular"):
            e = self.errors(kind)
            out[kind] = {
                "nme": float(e.mean() * 100), "auc@0.08": auc(e), "failure@0.08": failure_rate(e),
                "steps": {n: float(self.errors(kind, k).mean() * 100) for k, n in enumerate(self.stage_names())},
            }
        return out


def evaluate(predictor: Predictor, samples: list[Sample], boxes: str = "truth",
             box_file: dict | None = None, show_progress: bool = True) -> Evaluation:
    """boxes: 'truth' (tight box of the annotation, the training protocol), 'detector' (as the
    app runs: model.predict.pre_label; faces the detector misses are skipped and listed) or
    'file'."""
    names, stages, truth, skipped, gaps = [], [], [], [], []
    for s in tqdm(samples, desc="evaluating", unit="face", disable=not show_progress):
        try:
            img = read_image(s.image)
        except ImageError as exc:
            skipped.append(str(exc))
            continue
        tb = geometry.box_of_points(s.points)
        if boxes == "truth":
            box = tb
        elif boxes == "file":
            box = (box_file or {}).get(s.image.name)
            if box is None:
                skipped.append(f"{s.image}: no box in the boxes file")
                continue
        if boxes == "detector":
            r = pre_label(predictor, img, tb)  # as the app runs
            if r is None:
                skipped.append(f"{s.image}: no face detected")
                continue
        else:
            r = predictor.inference(img, [box], BoxSource.ANNOTATION)[0]
        names.append(s.name)
        gaps.append(r.uncertainty)
        stages.append(np.concatenate([r.s_hat[None], r.steps]))
        truth.append(s.points)
    if not names:
        raise ValueError("no face could be evaluated")
    return Evaluation(names, np.stack(stages), np.stack(truth), skipped, gaps)


def evaluate_clip(pred: ClipAnnotation, truth: ClipAnnotation) -> dict:
    """A clip's predicted faces against its ground truth, frame by frame: each annotated face is
    matched with the predicted face whose tight box overlaps its own most (IoU >= 0.3; else it
    counts as missed). NME (mean, AUC@0.08, failure rate) per normalisation, and jitter (mean
    change of the error vector between consecutive frames of one annotated face, both matched,
    no cut between; % of the distance)."""
    layout = layout_for(len(next(iter(truth.frames.values()))[0].record.points)) if truth.frames else layout_for(68)
    cuts = set(truth.cuts) | set(pred.cuts)
    matched: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}  # truth track -> frame -> (pred, truth)
    faces = missed = 0
    for i, faces_i in sorted(truth.frames.items()):
        for t in faces_i:
            faces += 1
            tb = geometry.box_of_points(t.record.points)
            cands = [(geometry.box_iou(geometry.box_of_points(p.record.points), tb), p) for p in pred.frames.get(i, [])
                     if p.record.points.shape == t.record.points.shape]
            iou, best = max(cands, key=lambda c: c[0], default=(0.0, None))
            if best is None or iou < 0.3:
                missed += 1
                continue
            matched.setdefault(t.track, {})[i] = (best.record.points, t.record.points)
    pairs = [v for m in matched.values() for v in m.values()]
    if not pairs:
        raise ValueError("no annotated face of the clip has a predicted face on its frame")
    p_all, t_all = np.stack([p for p, _ in pairs]), np.stack([t for _, t in pairs])
    out: dict = {"frames": len(truth.frames), "faces": faces, "matched": len(pairs), "missed": missed}
    for kind in ("inter-pupil", "inter-ocular"):
        e = nme(p_all, t_all, layout, kind)
        steps = []
        for m in matched.values():
            for a in sorted(m):
                if a + 1 in m and a + 1 not in cuts:
                    steps.append(jitter(np.stack([m[a][0], m[a + 1][0]]), np.stack([m[a][1], m[a + 1][1]]), layout, kind)[0])
        out[kind] = {"nme": float(e.mean() * 100), "auc@0.08": auc(e), "failure@0.08": failure_rate(e),
                     "jitter": float(np.mean(steps) * 100) if steps else None}
    return out


def format_clip_table(summary: dict) -> str:
    rows = ["| | inter-pupil | inter-ocular |", "|---|---|---|"]
    ip, io = summary["inter-pupil"], summary["inter-ocular"]
    rows.append(f"| NME % | {ip['nme']:.2f} | {io['nme']:.2f} |")
    rows.append(f"| AUC@0.08 | {ip['auc@0.08']:.3f} | {io['auc@0.08']:.3f} |")
    rows.append(f"| failure > 0.08 | {ip['failure@0.08'] * 100:.1f}% | {io['failure@0.08'] * 100:.1f}% |")
    if ip["jitter"] is not None:
        rows.append(f"| jitter % | {ip['jitter']:.2f} | {io['jitter']:.2f} |")
    return "\n".join(rows)


def format_table(summary: dict) -> str:
    rows = ["| stage | inter-pupil NME % | inter-ocular NME % |", "|---|---|---|"]
    for name in summary["inter-pupil"]["steps"]:
        rows.append(f"| {name} | {summary['inter-pupil']['steps'][name]:.2f} | {summary['inter-ocular']['steps'][name]:.2f} |")
    ip, io = summary["inter-pupil"], summary["inter-ocular"]
    rows.append(f"| AUC@0.08 | {ip['auc@0.08']:.3f} | {io['auc@0.08']:.3f} |")
    rows.append(f"| failure > 0.08 | {ip['failure@0.08'] * 100:.1f}% | {io['failure@0.08'] * 100:.1f}% |")
    return "\n".join(rows)


def write_ced(curves: dict[str, np.ndarray], csv_path: Path, png_path: Path | None, kind: str) -> None:
    """CED of one or several methods (name -> per-face errors) as CSV and PNG."""
    xs = ced(next(iter(curves.values())))[0]
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["error"] + list(curves))
        cols = [ced(e)[1] for e in curves.values()]
        for i, x in enumerate(xs):
            w.writerow([f"{x:.4f}"] + [f"{c[i]:.4f}" for c in cols])
    if png_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for name, e in curves.items():
        x, y = ced(e)
        ax.plot(x, y, label=f"{name} (NME {e.mean() * 100:.2f}%, AUC {auc(e):.3f})")
    ax.set_xlabel(f"{kind} normalised error")
    ax.set_ylabel("fraction of faces")
    ax.set_xlim(0, 0.08)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
