"""Annotation review in the app: how far the model and the human points disagree, per point and
per picture, over the open folder (model.qa's ranking, the one `drr-eval --qa` writes), and the
error curve (CED) of the model against the folder's annotations.

Plain Python and numpy, no Qt: `Review.update(document, layout)` computes everything from the
faces' human points and model results; the image list orders by `picture_scores`, the canvas
rings `Face.suspicious` points and the review panel plots `errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.layout import Layout
from model.metrics import normaliser
from model.qa import SUSPICIOUS, rank_faces

from .document import Document, Face


def compared_faces(document: Document, num_points: int) -> list[tuple[int, Face]]:
    """(picture index, face) of every face with both a human shape and a model result. A face
    approved as the model predicted it (no point placed by a person) is left out: its human shape
    is the model's own, and comparing the two says nothing."""
    out = []
    for i, entry in enumerate(document.entries):
        for f in entry.faces:
            ref = f.reference()
            model = getattr(f.result, "points", None)
            if not f.placed:
                continue
            if ref is not None and model is not None and len(ref) == len(model) == num_points:
                out.append((i, f))
    return out


@dataclass
class Review:
    """The folder's review state after the last `update`."""

    picture_scores: dict[int, float] = field(default_factory=dict)  # picture index -> worst point score
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per face, inter-pupil NME %
    suspicious_points: int = 0  # points at or over model.qa.SUSPICIOUS, in all faces

    def update(self, document: Document, layout: Layout) -> None:
        """Score every compared face (each face's `suspicious` and `qa_scores` are set) and
        clear the marks of the others."""
        for entry in document.entries:
            for f in entry.faces:
                f.qa_scores = None
        pairs = compared_faces(document, layout.num_points)
        self.picture_scores, self.suspicious_points = {}, 0
        if not pairs:
            self.errors = np.zeros(0)
            return
        model = np.stack([np.asarray(f.result.points, float) for _, f in pairs])
        human = np.stack([np.asarray(f.reference(), float) for _, f in pairs])
        gaps = [getattr(f.result, "uncertainty", None) for _, f in pairs]
        ranked = rank_faces([str(k) for k in range(len(pairs))], model, human, layout, gaps)
        for qa in ranked:
            picture, face = pairs[int(qa.name)]
            face.qa_scores = qa.points
            self.picture_scores[picture] = max(self.picture_scores.get(picture, 0.0), qa.score)
            self.suspicious_points += len(face.suspicious)  # what the canvas rings
        # the annotation is the reference here, as in drr-eval
        self.errors = 100.0 * np.linalg.norm(model - human, axis=-1).mean(-1) / normaliser(human, layout)

    def order(self, count: int) -> list[int]:
        """Picture indices, most suspicious first; pictures without a comparison keep their
        folder order after the others."""
        scored = sorted(self.picture_scores, key=lambda i: (-self.picture_scores[i], i))
        rest = [i for i in range(count) if i not in self.picture_scores]
        return scored + rest

    def summary(self, threshold: float = 8.0) -> str:
        n = len(self.errors)
        if not n:
            return ("No face to compare yet: the curve needs faces with human points (corrected, "
                    "approved, or read from .pts) that the model has also run on (Model → Predict all).")
        fail = float((self.errors > threshold).mean() * 100)
        return (f"{n} face(s): model vs annotation, inter-pupil NME mean {self.errors.mean():.2f}%, "
                f"median {np.median(self.errors):.2f}%, over {threshold:g}%: {fail:.1f}%; "
                f"{self.suspicious_points} suspicious point(s) (score ≥ {SUSPICIOUS:g})")


def ced(errors: np.ndarray, limit: float = 10.0, n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """x (error %, 0..limit) and the share of faces at or under x."""
    x = np.linspace(0.0, limit, n)
    if not len(errors):
        return x, np.zeros_like(x)
    return x, (np.sort(errors)[None, :] <= x[:, None]).mean(1)
