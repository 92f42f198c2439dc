"""Helpers for the app tests: a fast deterministic stand-in for model.predict.Predictor (same
attributes and FaceResult fields), synthetic pictures and a window fixture factory."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from model.layout import layout_for  # noqa: E402
from model.metrics import REVIEW_MIRROR_GAP  # noqa: E402
from model.predict import SECOND_PASS, BoxSource, refined_box  # noqa: E402

K_STEPS = 4
CROP = 32


def template68() -> np.ndarray:
    """A cartoon 68-point face in the unit square, ordered like iBUG."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.5 * np.cos(t), 0.25 + 0.75 * np.sin(t)], 1)
    brow_r = np.stack([np.linspace(0.1, 0.4, 5), np.full(5, 0.1)], 1)
    brow_l = np.stack([np.linspace(0.6, 0.9, 5), np.full(5, 0.1)], 1)
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.25, 0.55, 4)], 1)
    nostrils = np.stack([np.linspace(0.4, 0.6, 5), np.full(5, 0.6)], 1)

    def ellipse(cx, cy, rx, ry, n):
        a = np.linspace(np.pi, 3 * np.pi, n, endpoint=False)
        return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)

    parts = [jaw, brow_r, brow_l, bridge, nostrils, ellipse(0.28, 0.3, 0.1, 0.04, 6),
             ellipse(0.72, 0.3, 0.1, 0.04, 6), ellipse(0.5, 0.8, 0.2, 0.08, 12), ellipse(0.5, 0.8, 0.12, 0.04, 8)]
    return np.concatenate(parts)


@dataclass
class FakeResult:
    box: np.ndarray
    points: np.ndarray
    s_hat: np.ndarray
    s0: np.ndarray
    steps: np.ndarray
    candidate_index: int
    candidate_distances: np.ndarray
    candidates: np.ndarray
    heatmaps: np.ndarray
    crop_to_image: np.ndarray
    sip_box_image: float
    detector_score: float | None = None
    uncertainty: float | None = None
    box_source: str = "annotation"
    roll: float = 0.0

    @property
    def needs_review(self) -> bool:
        return self.uncertainty is not None and self.uncertainty >= REVIEW_MIRROR_GAP


@dataclass
class FakeConfig:
    num_points: int = 68
    steps: int = K_STEPS
    input_size: int = CROP


class FakePredictor:
    """Deterministic: the template fitted to the box, approached over K steps from a shifted
    start. `delay` simulates model time; `calls` records every inference with the boxes'
    sources. It implements model.predict.LandmarkPredictor (a test holds it to that) and follows
    the same policy table (model.predict.SECOND_PASS): a face whose source gets the second pass
    is fitted to the tight box of its first points, so a test sees which passes a face got."""

    def __init__(self, name: str = "fake", delay: float = 0.0, faces: int = 1,
                 uncertainty: float | None = None) -> None:
        self.name, self.delay, self.faces, self.uncertainty = name, delay, faces, uncertainty
        self.path: Path | None = Path(f"/nowhere/{name}.pt")
        self.device = "cpu"
        self.precision = "fp32"
        self.mirror_average = False
        self.config = FakeConfig()
        self.layout = layout_for(68)
        self.calls: list[tuple[str, int, tuple[str, ...]]] = []

    def with_mirror_average(self, on: bool) -> FakePredictor:
        self.mirror_average = bool(on)
        return self

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        h, w = image.shape[:2]
        if float(image.std()) < 1.0:  # a blank picture has no face
            return []
        side = 0.4 * min(h, w)
        out = []
        for k in range(self.faces):
            cx = w * (k + 1) / (self.faces + 1)
            out.append((np.array([cx - side / 2, h / 2 - side / 2, cx + side / 2, h / 2 + side / 2]), 1.0))
        return out

    def inference(self, image: np.ndarray, boxes=None, sources=None, rolls=None, batch_size: int = 8) -> list[FakeResult]:
        if self.delay:
            time.sleep(self.delay)
        kind = "detect" if boxes is None else "boxes"
        if boxes is None:
            boxes, sources = [b for b, _ in self.detect(image)], BoxSource.DETECTOR
        if sources is None or isinstance(sources, (str, BoxSource)):
            sources = [sources or BoxSource.ANNOTATION] * len(boxes)
        sources = [BoxSource(s) for s in sources]
        self.calls.append((kind, len(boxes), tuple(s.value for s in sources)))
        out = []
        for b, src in zip(boxes, sources):
            r = self._result(np.asarray(b, float))
            if SECOND_PASS[src]:
                r = self._result(refined_box(np.asarray(b, float), r.points))
            r.box_source = src.value
            out.append(r)
        return out

    def _result(self, box: np.ndarray) -> FakeResult:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        final = template68() * [w, h] + [x0, y0]
        s0 = final + [0.08 * w, -0.05 * h]
        steps = np.stack([s0 + (final - s0) * (k / K_STEPS) for k in range(K_STEPS + 1)])
        a = np.array([[w / (CROP - 1), 0, x0], [0, h / (CROP - 1), y0]])  # crop -> picture
        crop_pts = (final - [x0, y0]) / [w / (CROP - 1), h / (CROP - 1)]
        yy, xx = np.mgrid[0:CROP, 0:CROP]
        heat = np.exp(-((xx[None] - crop_pts[:, 0, None, None]) ** 2 + (yy[None] - crop_pts[:, 1, None, None]) ** 2) / 4)
        heat = (heat / heat.sum((1, 2), keepdims=True)).astype(np.float32)
        cands = np.stack([s0 + [dx, 0] for dx in (0.0, 5.0, -5.0)])
        return FakeResult(box=box, points=final, s_hat=final + 0.5, s0=s0, steps=steps, candidate_index=0,
                          candidate_distances=np.array([1.0, 3.0, 4.0]), candidates=cands, heatmaps=heat,
                          crop_to_image=a, sip_box_image=0.06 * w, detector_score=1.0,
                          uncertainty=self.uncertainty)


def fake_factory(predictor: FakePredictor | None = None, fail: str | None = None):
    """A worker factory returning `predictor` (or raising a CheckpointError-like message)."""

    def factory(checkpoint):
        if fail or (checkpoint is not None and "bad" in str(checkpoint)):
            raise ValueError(fail or f"{checkpoint}: not a DRR checkpoint (no 'config' entry)")
        return predictor or FakePredictor()

    return factory


def face_image(path: Path, size: tuple[int, int] = (240, 320), seed: int = 0) -> Path:
    """A textured synthetic picture (the fake detector finds one face in anything not blank)."""
    rng = np.random.default_rng(seed)
    img = (rng.random((*size, 3)) * 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    cv2.imwrite(str(path), img)
    return path


def make_folder(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        face_image(root / f"img{i:02d}.png", seed=i)
    return root
