"""Landmark layouts: names, connecting lines, parts, left/right mirror order and eye indices.

This is the one place that knows the iBUG 68-point scheme; the editor draws with it and the
training flips use its mirror permutation. Indices are 0-based. "Right" and "left" are the
subject's (the subject's right eye appears on the image's left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Part:
    name: str
    indices: tuple[int, ...]
    closed: bool  # drawn as a loop (eyes, lips) or an open chain (jaw, brows)
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Layout:
    num_points: int
    parts: tuple[Part, ...]
    mirror: tuple[int, ...]  # mirror[i] = index of point i after a horizontal flip
    right_eye: tuple[int, ...]  # points averaged for the right pupil
    left_eye: tuple[int, ...]
    right_outer_corner: int
    left_outer_corner: int

    def point_names(self) -> list[str]:
        names = [f"point {i + 1}" for i in range(self.num_points)]
        for part in self.parts:
            for k, i in enumerate(part.indices):
                names[i] = f"{part.name} {k + 1}"
        return names

    def lines(self) -> list[tuple[int, int]]:
        """Pairs of point indices to connect when drawing the shape."""
        pairs: list[tuple[int, int]] = []
        for part in self.parts:
            idx = part.indices
            pairs += list(zip(idx[:-1], idx[1:]))
            if part.closed and len(idx) > 2:
                pairs.append((idx[-1], idx[0]))
        return pairs

    def part_at(self, points: np.ndarray, x: float, y: float, sx: float = 1.0, sy: float = 1.0) -> tuple[Part, float] | None:
        """The part whose drawn line passes nearest to (x, y), with that distance; distances are
        measured after dividing x by sx and y by sy (a view's pixel size, for screen pixels)."""
        best: tuple[Part, float] | None = None
        p = np.asarray(points, dtype=np.float64) / [sx, sy]
        q = np.array([x / sx, y / sy])
        for part in self.parts:
            idx = list(part.indices) + ([part.indices[0]] if part.closed and len(part.indices) > 2 else [])
            a, b = p[idx[:-1]], p[idx[1:]]
            ab = b - a
            t = np.clip(((q - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
            d = float(np.min(np.hypot(*(a + t[:, None] * ab - q).T))) if len(a) else float("inf")
            if best is None or d < best[1]:
                best = (part, d)
        return best

    def part_of(self) -> list[str]:
        owner = ["" for _ in range(self.num_points)]
        for part in self.parts:
            for i in part.indices:
                owner[i] = part.name
        return owner

    def point_colors(self) -> list[tuple[int, int, int]]:
        colors = [(255, 255, 0)] * self.num_points
        for part in self.parts:
            for i in part.indices:
                colors[i] = part.color
        return colors

    def mirror_array(self) -> np.ndarray:
        return np.asarray(self.mirror, dtype=np.int64)

    def eye_centres(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(right pupil, left pupil) of a (p, 2) shape: the means of each eye's points."""
        p = np.asarray(points, dtype=np.float64)
        return p[list(self.right_eye)].mean(0), p[list(self.left_eye)].mean(0)


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b))


def _mirror68() -> tuple[int, ...]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    m = list(range(68))
    for a, b in pairs:
        m[a], m[b] = b, a
    return tuple(m)


IBUG68 = Layout(
    num_points=68,
    parts=(
        Part("jaw", _r(0, 17), False, (255, 200, 60)),
        Part("right brow", _r(17, 22), False, (255, 120, 40)),
        Part("left brow", _r(22, 27), False, (255, 120, 40)),
        Part("nose bridge", _r(27, 31), False, (80, 220, 255)),
        Part("nostrils", _r(31, 36), False, (80, 220, 255)),
        Part("right eye", _r(36, 42), True, (80, 255, 120)),
        Part("left eye", _r(42, 48), True, (80, 255, 120)),
        Part("outer lips", _r(48, 60), True, (255, 90, 160)),
        Part("inner lips", _r(60, 68), True, (255, 150, 200)),
    ),
    mirror=_mirror68(),
    right_eye=_r(36, 42),
    left_eye=_r(42, 48),
    right_outer_corner=36,
    left_outer_corner=45,
)

# The 5-point layout of MAFL/CelebA: right eye, left eye, nose, right and left mouth corner.
FIVE_POINT = Layout(
    num_points=5,
    parts=(
        Part("right eye", (0,), False, (80, 255, 120)),
        Part("left eye", (1,), False, (80, 255, 120)),
        Part("nose", (2,), False, (80, 220, 255)),
        Part("right mouth corner", (3,), False, (255, 90, 160)),
        Part("left mouth corner", (4,), False, (255, 90, 160)),
    ),
    mirror=(1, 0, 2, 4, 3),
    right_eye=(0,),
    left_eye=(1,),
    right_outer_corner=0,
    left_outer_corner=1,
)


def generic_layout(num_points: int) -> Layout:
    """A layout for an unknown point count: no lines, no mirroring, first two points as eyes."""
    return Layout(
        num_points=num_points,
        parts=(),
        mirror=_r(0, num_points),
        right_eye=(0,),
        left_eye=(min(1, num_points - 1),),
        right_outer_corner=0,
        left_outer_corner=min(1, num_points - 1),
    )


def layout_for(num_points: int) -> Layout:
    if num_points == 68:
        return IBUG68
    if num_points == 5:
        return FIVE_POINT
    return generic_layout(num_points)


def can_mirror(layout: Layout) -> bool:
    """Mirroring is only safe when the layout really defines its left/right pairs."""
    return layout in (IBUG68, FIVE_POINT)
