"""Training data: folders of pictures with same-stem iBUG .pts, the paper's crop protocol and
augmentation (rotations in {0, +-5, ..., +-30} degrees, box jitter, mirroring, colour jitter),
optionally eye-levelled crops with a small roll jitter, occlusion boxes and blur.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from . import annotation_files, geometry
from .images import list_images, read_image
from .layout import can_mirror, layout_for

ROTATIONS = np.arange(-30, 31, 5)
AUGMENTATIONS = ("drr", "star")
# The augmentation of the strongest from-scratch 300-W recipes (STAR, CVPR 2023; ADNet), in
# their probabilities and spreads: every crop is flipped at 0.5, rolled by a Gaussian of 18
# degrees, scaled by a Gaussian of 0.1 and shifted by one of 0.05 of the box; then occluded,
# blurred, gamma-changed and greyed at these rates. Issue 27's lever 2.
STAR_AUGMENTATION = dict(flip=0.5, rotate_sigma=18.0, scale_sigma=0.1, shift_sigma=0.05,
                         occlude=0.4, blur=0.3, gamma=0.2, grey=0.2)


@dataclass
class Sample:
    image: Path
    points: np.ndarray  # (p, 2) 0-based picture coordinates
    name: str  # path of the picture relative to its data root, without suffix


def find_samples(roots: list[str | Path] | str | Path, num_points: int | None = None) -> tuple[list[Sample], list[str]]:
    """Every face of every picture with annotations under the roots: NAME.pts, NAME_face2.pts, ...
    (model.annotation_files, the app's and drr-predict's names); face k is named
    face_name(NAME, k). Problems are returned as messages (naming the file) rather than raised,
    so that one bad file does not stop a run."""
    samples: list[Sample] = []
    problems: list[str] = []
    if isinstance(roots, (str, Path)):  # one folder, not its characters (a string is iterable)
        roots = [roots]
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            problems.append(f"{root}: not a folder")
            continue
        images = list_images(root)
        if not images:
            problems.append(f"{root}: no pictures found")
        for img in images:
            if not annotation_files.has_annotations(img.parent, img.stem):
                continue
            records, bad, _ = annotation_files.read_faces(img.parent, img.stem, num_points)
            problems += bad
            name = img.relative_to(root).with_suffix("").as_posix()
            for k, rec in enumerate(records):
                if num_points is None:
                    num_points = len(rec.points)
                elif len(rec.points) != num_points:
                    problems.append(f"{img}: face {k + 1} has {len(rec.points)} points, not {num_points}")
                    continue
                samples.append(Sample(img, rec.points, annotation_files.face_name(name, k)))
    return samples, problems


def split_by_names(samples: list[Sample], names: set[str]) -> tuple[list[Sample], list[Sample]]:
    train = [s for s in samples if s.name not in names]
    val = [s for s in samples if s.name in names]
    return train, val


def read_name_list(path: str | Path) -> set[str]:
    return {ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def _moved_box(box: np.ndarray, scale: float, shift_x: float, shift_y: float) -> np.ndarray:
    """The box scaled about its centre and shifted by fractions of its width and height."""
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2 + shift_x * w, (box[1] + box[3]) / 2 + shift_y * h
    return np.array([cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2])


def _grey(x: np.ndarray) -> np.ndarray:
    """The mean of the three channels in all three (float; the caller casts)."""
    return np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)


class FaceDataset(torch.utils.data.Dataset):
    """Crops of faces (3, S, S) float 0..255 with their points in crop pixels (p, 2).

    The face box is the tight box of the landmarks (the training protocol); with augment=True
    it is jittered in scale and position, rotated and mirrored."""

    def __init__(self, samples: list[Sample], size: int, augment: bool = False, seed: int = 0,
                 colour: bool = True, cache: bool = True, rotate_prob: float = 0.7,
                 level_eyes: bool = False, roll_jitter: float = 0.0, occlude_prob: float = 0.0,
                 blur_prob: float = 0.0, style: str = "drr") -> None:
        self.samples = samples
        self.size = size
        self.augment = augment
        self.colour = colour
        self.rotate_prob = rotate_prob  # share of augmented crops given one of ROTATIONS
        # level_eyes: crops are rotated so that the annotated eye line is level, then (when
        # augmenting) by a Gaussian residual of roll_jitter degrees (the error of the test-time
        # eye line: the detector's eyes or a first pass)
        self.level_eyes = level_eyes
        self.roll_jitter = roll_jitter
        self.occlude_prob = occlude_prob  # share of crops with a box of noise or flat colour
        self.blur_prob = blur_prob  # share of crops blurred (Gaussian or motion)
        if style not in AUGMENTATIONS:
            raise ValueError(f"augmentation style {style!r}: expected one of {', '.join(AUGMENTATIONS)}")
        self.style = style  # "drr": the recipe's draws above; "star": STAR_AUGMENTATION's
        self.rng = np.random.default_rng(seed)
        n = len(samples[0].points) if samples else 0
        self.layout = layout_for(n)
        self.mirror = can_mirror(self.layout)
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img = read_image(self.samples[i].image)
        if self._cache is not None:
            self._cache[i] = img
        return img

    def crop(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(crop uint8 (S,S,3), points in crop pixels, picture->crop matrix)."""
        s = self.samples[i]
        angle, flip = 0.0, False
        if self.level_eyes:
            angle = geometry.eye_angle(*self.layout.eye_centres(s.points))
            if self.augment and self.roll_jitter > 0:
                angle += float(np.clip(self.rng.normal(0.0, self.roll_jitter), -3 * self.roll_jitter,
                                       3 * self.roll_jitter))
        box = geometry.levelled_box(s.points, angle) if angle else geometry.box_of_points(s.points)
        star = self.augment and self.style == "star"
        if star:
            box, extra_angle, flip = self._star_geometry(box)
            angle += extra_angle
        elif self.augment:
            r = self.rng
            box = _moved_box(box, r.uniform(0.9, 1.12), r.uniform(-0.08, 0.08), r.uniform(-0.08, 0.08))
            if r.random() < self.rotate_prob:
                angle += float(r.choice(ROTATIONS))
            flip = self.mirror and r.random() < 0.5
        m = geometry.crop_matrix(box, self.size, angle, flip)
        crop = geometry.warp(self.image(i), m, self.size)
        pts = geometry.apply(m, s.points)
        if flip:
            pts = pts[self.layout.mirror_array()]
        if star:
            return self._star_texture(crop), pts, m
        if self.augment and self.colour:
            crop = self._colour(crop)
        if self.augment and self.blur_prob and self.rng.random() < self.blur_prob:
            crop = self._blur(crop)
        if self.augment and self.occlude_prob and self.rng.random() < self.occlude_prob:
            crop = self._occlude(crop)
        return crop, pts, m

    def crop_at(self, i: int, box: np.ndarray, angle: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The un-augmented crop of face i for a given box and roll (test-time protocol)."""
        m = geometry.crop_matrix(box, self.size, angle)
        return geometry.warp(self.image(i), m, self.size), geometry.apply(m, self.samples[i].points), m

    def _star_geometry(self, box: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """STAR_AUGMENTATION's box: Gaussian scale and shift, a Gaussian roll (cut at 3 sigma)."""
        a, r = STAR_AUGMENTATION, self.rng
        scale = float(np.clip(r.normal(1.0, a["scale_sigma"]), 0.7, 1.3))
        box = _moved_box(box, scale, r.normal(0.0, a["shift_sigma"]), r.normal(0.0, a["shift_sigma"]))
        angle = float(np.clip(r.normal(0.0, a["rotate_sigma"]), -3 * a["rotate_sigma"], 3 * a["rotate_sigma"]))
        return box, angle, self.mirror and r.random() < a["flip"]

    def _star_texture(self, crop: np.ndarray) -> np.ndarray:
        """STAR_AUGMENTATION's texture draws: a black box, a box blur, a gamma, then grey."""
        a, r = STAR_AUGMENTATION, self.rng
        out = crop.copy()
        s = self.size
        if r.random() < a["occlude"]:  # height 10-40% of the crop, width a little narrower or wider
            rh = r.uniform(0.2, 0.8)
            dh, dw = int(s / 2 * rh), int(s / 2 * (rh - 0.2 + 0.4 * r.random()))
            cx, cy = int(r.integers(0, s)), int(r.integers(0, s))
            out[max(0, cy - dh // 2):cy + dh // 2 + 1, max(0, cx - dw // 2):cx + dw // 2 + 1] = 0
        if r.random() < a["blur"]:
            k = int(s * 0.05 * r.random())
            if k > 1:
                out = cv2.blur(out, (k, k))
        if r.random() < a["gamma"]:  # darker or lighter, either side of 1 as often
            g = r.uniform(0.25, 1.0) if r.random() < 0.5 else r.uniform(1.0, 4.0)
            out = (255.0 * (out / 255.0) ** g).astype(np.uint8)
        if r.random() < a["grey"]:
            out = _grey(out).astype(np.uint8)
        return out

    def _blur(self, crop: np.ndarray) -> np.ndarray:
        """Out of focus or moving: a Gaussian of sigma 0.5-2 px, or a 3-9 px line in any direction."""
        r = self.rng
        if r.random() < 0.5:
            return cv2.GaussianBlur(crop, (0, 0), float(r.uniform(0.5, 2.0)))
        n = int(r.integers(3, 10))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        k = cv2.warpAffine(k, cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(r.uniform(0, 180)), 1.0), (n, n))
        return cv2.filter2D(crop, -1, k / max(k.sum(), 1e-6))

    def _occlude(self, crop: np.ndarray) -> np.ndarray:
        """A box over 5-25% of the crop (a hand, hair, a microphone): flat colour or noise. The
        points under it keep their annotated positions: the network learns to infer them."""
        r = self.rng
        s = self.size
        area = r.uniform(0.05, 0.25) * s * s
        aspect = np.exp(r.uniform(-0.8, 0.8))
        w = int(min(s, np.sqrt(area * aspect)))
        h = int(min(s, area / max(w, 1)))
        x0, y0 = int(r.integers(0, s - w + 1)), int(r.integers(0, s - h + 1))
        out = crop.copy()
        if r.random() < 0.5:
            out[y0:y0 + h, x0:x0 + w] = r.integers(0, 256, size=3, dtype=np.uint8)
        else:
            out[y0:y0 + h, x0:x0 + w] = r.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        return out

    def _colour(self, crop: np.ndarray) -> np.ndarray:
        r = self.rng
        x = crop.astype(np.float32)
        if r.random() < 0.1:
            x = _grey(x)
        x = (x - 128.0) * r.uniform(0.75, 1.25) + 128.0 + r.uniform(-25, 25)
        x *= r.uniform(0.9, 1.1, size=3)[None, None, :]
        return np.clip(x, 0, 255).astype(np.uint8)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        crop, pts, _ = self.crop(i)
        return torch.from_numpy(crop).permute(2, 0, 1).float(), torch.from_numpy(pts).float()

