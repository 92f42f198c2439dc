"""Training data: folders of pictures with same-stem iBUG .pts, the paper's crop protocol and
augmentation (rotations in {0, +-5, ..., +-30} degrees, box jitter, mirroring, colour jitter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import geometry
from .images import list_images, read_image
from .layout import can_mirror, layout_for
from .pts import PtsError, read_pts

ROTATIONS = np.arange(-30, 31, 5)


@dataclass
class Sample:
    image: Path
    points: np.ndarray  # (p, 2) 0-based picture coordinates
    name: str  # path of the picture relative to its data root, without suffix


def find_samples(roots: list[str | Path], num_points: int | None = None) -> tuple[list[Sample], list[str]]:
    """Every picture with a usable same-stem .pts under the roots; problems are returned as
    messages (naming the file) rather than raised, so that one bad file does not stop a run."""
    samples: list[Sample] = []
    problems: list[str] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            problems.append(f"{root}: not a folder")
            continue
        images = list_images(root)
        if not images:
            problems.append(f"{root}: no pictures found")
        for img in images:
            pts = img.with_suffix(".pts")
            if not pts.exists():
                continue
            try:
                points = read_pts(pts, expected_points=num_points)
            except PtsError as exc:
                problems.append(str(exc))
                continue
            if num_points is None:
                num_points = len(points)
            name = img.relative_to(root).with_suffix("").as_posix()
            samples.append(Sample(img, points, name))
    return samples, problems


def split_by_names(samples: list[Sample], names: set[str]) -> tuple[list[Sample], list[Sample]]:
    train = [s for s in samples if s.name not in names]
    val = [s for s in samples if s.name in names]
    return train, val


def read_name_list(path: str | Path) -> set[str]:
    return {ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith("#")}


class FaceDataset(torch.utils.data.Dataset):
    """Crops of faces (3, S, S) float 0..255 with their points in crop pixels (p, 2).

    The face box is the tight box of the landmarks (the training protocol); with augment=True
    it is jittered in scale and position, rotated and mirrored."""

    def __init__(self, samples: list[Sample], size: int, augment: bool = False, seed: int = 0,
                 colour: bool = True, cache: bool = True, rotate_prob: float = 0.7) -> None:
        self.samples = samples
        self.size = size
        self.augment = augment
        self.colour = colour
        self.rotate_prob = rotate_prob  # share of augmented crops given one of ROTATIONS
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
        box = geometry.box_of_points(s.points)
        angle, flip = 0.0, False
        if self.augment:
            r = self.rng
            w, h = box[2] - box[0], box[3] - box[1]
            scale = r.uniform(0.9, 1.12)
            cx = (box[0] + box[2]) / 2 + r.uniform(-0.08, 0.08) * w
            cy = (box[1] + box[3]) / 2 + r.uniform(-0.08, 0.08) * h
            box = np.array([cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2])
            angle = float(r.choice(ROTATIONS)) if r.random() < self.rotate_prob else 0.0
            flip = self.mirror and r.random() < 0.5
        m = geometry.crop_matrix(box, self.size, angle, flip)
        crop = geometry.warp(self.image(i), m, self.size)
        pts = geometry.apply(m, s.points)
        if flip:
            pts = pts[self.layout.mirror_array()]
        if self.augment and self.colour:
            crop = self._colour(crop)
        return crop, pts, m

    def _colour(self, crop: np.ndarray) -> np.ndarray:
        r = self.rng
        x = crop.astype(np.float32)
        if r.random() < 0.1:
            x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
        x = (x - 128.0) * r.uniform(0.75, 1.25) + 128.0 + r.uniform(-25, 25)
        x *= r.uniform(0.9, 1.1, size=3)[None, None, :]
        return np.clip(x, 0, 255).astype(np.uint8)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        crop, pts, _ = self.crop(i)
        return torch.from_numpy(crop).permute(2, 0, 1).float(), torch.from_numpy(pts).float()

