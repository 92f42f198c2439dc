"""Annotation QA: rank the points a person annotated by how far the model disagrees with them,
in % of the eye-centre distance and discounted by the model's own doubt about the face (the
mirror-pass gap, model.metrics.REVIEW_MIRROR_GAP), so that a reviewer sees the most suspicious
points first. It orders the reading; it does not decide what is wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layout import Layout
from .metrics import REVIEW_MIRROR_GAP, normaliser
from .pts import atomic_write_text

SUSPICIOUS = 10.0  # a point scoring this much (% of the eye distance, discounted) is listed
TYPICAL_FLOOR = 0.5  # % of the eye distance: the least a point's typical disagreement counts as


@dataclass
class FaceQA:
    name: str
    score: float  # the face's worst point
    points: np.ndarray  # (p,) each point's score
    distance: np.ndarray  # (p,) model-annotation distance, % of the eye distance
    mirror_gap: float | None


def point_scores(predicted: np.ndarray, annotated: np.ndarray, layout: Layout,
                 mirror_gap: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(score, distance) per point of one face: the distance in % of the predicted shape's eye
    distance (the annotation's own eyes may be the mistake), divided by 1 + gap / REVIEW_MIRROR_GAP."""
    iod = float(normaliser(predicted[None], layout)[0])
    dist = 100.0 * np.linalg.norm(predicted - annotated, axis=-1) / max(iod, 1e-6)
    doubt = 1.0 + (mirror_gap or 0.0) / REVIEW_MIRROR_GAP
    return dist / doubt, dist


def rank_faces(names: list[str], predicted: np.ndarray, annotated: np.ndarray, layout: Layout,
               gaps: list[float | None] | None = None, per_point: bool = True) -> list[FaceQA]:
    """Faces most suspicious first. per_point: each point's score is also divided by that
    point's median disagreement over the folder (times the median of those), so that a jaw
    point, which the model places less surely than an eye corner, needs a larger disagreement
    to count; the folder calibrates itself, mistakes being the minority."""
    predicted, annotated = np.asarray(predicted, np.float64), np.asarray(annotated, np.float64)
    if not len(names):
        return []
    # point_scores for all faces at once (the app reviews thousands while the loop waits)
    iod = np.maximum(normaliser(predicted, layout), 1e-6)
    dists = 100.0 * np.linalg.norm(predicted - annotated, axis=-1) / iod[:, None]
    gap = np.array([(g or 0.0) for g in gaps], np.float64) if gaps is not None else np.zeros(len(names))
    scores = dists / (1.0 + gap / REVIEW_MIRROR_GAP)[:, None]
    if per_point and len(scores) >= 5:
        # floored at TYPICAL_FLOOR: where model and annotation agree almost exactly (a folder
        # approved as predicted), a tiny median must not blow up or zero the scores
        typical = np.maximum(np.median(scores, axis=0), TYPICAL_FLOOR)
        scores = scores / typical * float(np.median(typical))
    out = [FaceQA(name, float(scores[i].max()), scores[i], dists[i], gaps[i] if gaps is not None else None)
           for i, name in enumerate(names)]
    return sorted(out, key=lambda f: -f.score)


def write_qa_csv(path: str | Path, ranked: list[FaceQA], layout: Layout) -> None:
    """One row a face, most suspicious first: its score, worst point, and the points over SUSPICIOUS."""
    names = layout.point_names()
    rows = [["rank", "face", "score", "worst point", "worst point name", "mirror gap %", "suspicious points (1-based: score)"]]
    for r, f in enumerate(ranked, start=1):
        k = int(np.argmax(f.points))
        sus = [f"{i + 1}: {f.points[i]:.1f}" for i in np.argsort(-f.points) if f.points[i] >= SUSPICIOUS]
        rows.append([r, f.name, f"{f.score:.2f}", k + 1, names[k] if k < len(names) else "",
                     "" if f.mirror_gap is None else f"{f.mirror_gap:.2f}", "; ".join(sus)])
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    atomic_write_text(path, buf.getvalue())
