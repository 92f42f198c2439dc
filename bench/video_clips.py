"""Synthetic clips for bench.video: held-out stills moving on a larger canvas, with the ground
truth moved the same way. The motion is 2-D (a similarity transform of the whole still: scale,
roll, translation), never a head turning in depth; no 68-point annotated video is at hand.

Each still moves smoothly (sums of two sines with periods of 2-6 s at 25 fps): scale 0.65-1.0
of the still, roll up to `max_roll` degrees, translation across the canvas; the frame's brightness drifts by up to 20%,
one frame in ten (at random) is blurred, every frame gets Gaussian noise, and OpenCV's mp4v
encoder adds its own artefacts. Several stills in a row make cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CANVAS = (640, 480)  # width, height: the frame size the speed target is stated for


@dataclass
class Clip:
    frames: list[np.ndarray]  # RGB uint8 (h, w, 3)
    truth: list[np.ndarray]  # (p, 2) per frame, 0-based picture pixels
    cuts: list[int]  # 0-based frames that start a new still (the first frame excluded)


def background(rng: np.random.Generator, size: tuple[int, int] = CANVAS) -> np.ndarray:
    """A smooth random colour field with fine texture: no face in it for the detector to find."""
    w, h = size
    low = rng.uniform(40, 200, size=(3, 4, 3)).astype(np.float32)
    field = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    field += rng.normal(0, 6, size=(h, w, 3)).astype(np.float32)
    return np.clip(field, 0, 255)


PERIODS = (50.0, 150.0)  # frames (2-6 s at 25 fps): a head moving at up to ~0.1 eye distances a frame


def _wave(rng: np.random.Generator, n: int, amplitude: float, centre: float = 0.0) -> np.ndarray:
    """A smooth random curve over n frames: two sines of random phase and period (PERIODS), so
    that the speed does not depend on the clip's length."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for _ in range(2):
        out += np.sin(2 * np.pi * t / rng.uniform(*PERIODS) + rng.uniform(0, 2 * np.pi))
    return centre + amplitude * out / 2


def motion(rng: np.random.Generator, n: int, still: int, max_roll: float,
           size: tuple[int, int] = CANVAS) -> list[np.ndarray]:
    """n affine matrices (2 x 3) still -> canvas, smooth in time."""
    w, h = size
    scale = _wave(rng, n, 0.17, 0.82)
    roll = _wave(rng, n, max_roll)
    half = still * scale / 2
    cx = _wave(rng, n, max(w / 2 - half.max(), 0) * 0.8, w / 2)
    cy = _wave(rng, n, max(h / 2 - half.max(), 0) * 0.8 + 20, h / 2)
    mats = []
    c0 = (still - 1) / 2
    for s, a, x, y in zip(scale, roll, cx, cy):
        m = cv2.getRotationMatrix2D((c0, c0), float(a), float(s))
        m[:, 2] += np.array([x - c0, y - c0])
        mats.append(m)
    return mats


def render(image: np.ndarray, m: np.ndarray, bg: np.ndarray, gain: float, blur: float,
           noise: float, rng: np.random.Generator) -> np.ndarray:
    w, h = bg.shape[1], bg.shape[0]
    warped = cv2.warpAffine(image.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones(image.shape[:2], np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    frame = (warped * mask + bg * (1 - mask)) * gain
    if blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    frame += rng.normal(0, noise, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_clip(stills: list[tuple[np.ndarray, np.ndarray]], frames_per_still: int, seed: int,
              max_roll: float = 20.0, blur_every: float = 0.1, noise: float = 4.0) -> Clip:
    """A clip of the stills (RGB picture, (p, 2) points) one after the other."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    out = Clip([], [], [])
    for image, points in stills:
        if out.frames:
            out.cuts.append(len(out.frames))
        mats = motion(rng, frames_per_still, image.shape[0], max_roll)
        gain = _wave(rng, frames_per_still, 0.2, 1.0)
        for m, g in zip(mats, gain):
            blur = rng.uniform(1.2, 2.5) if rng.random() < blur_every else 0.0
            out.frames.append(render(image, m, bg, float(g), blur, noise, rng))
            out.truth.append(np.asarray(points, float) @ m[:, :2].T + m[:, 2])
    return out
