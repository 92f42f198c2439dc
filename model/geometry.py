"""The crop protocol of the paper and exact coordinate transforms.

All coordinates are 0-based pixel centres. A crop is a 2x3 affine matrix A mapping picture
coordinates to crop coordinates (x_c = A @ [x, y, 1]); cv2.warpAffine uses the same
pixel-centre convention, so points and pixels stay aligned to float precision.
"""

from __future__ import annotations

import cv2
import numpy as np

BOX_PAD = 0.2  # the paper pads the face box by 0.2 W on every side


def box_of_points(points: np.ndarray) -> np.ndarray:
    """Tight box [x0, y0, x1, y1] of a shape."""
    p = np.asarray(points, dtype=np.float64)
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()])


def crop_matrix(box, size: int, angle_deg: float = 0.0, mirror: bool = False) -> np.ndarray:
    """Affine picture->crop for a face box: pad by 0.2 W on each side, scale the longer side
    of the padded box to `size`, centre it (the shorter side is zero-padded). Optional rotation
    about the box centre and horizontal mirror, for augmentation."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
    pw, ph = w + 2 * BOX_PAD * w, h + 2 * BOX_PAD * w
    s = size / max(pw, ph)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    t = np.deg2rad(angle_deg)
    c, si = np.cos(t) * s, np.sin(t) * s
    lin = np.array([[c, si], [-si, c]])
    if mirror:
        lin = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ lin
    centre = (size - 1) / 2.0
    off = np.array([centre, centre]) - lin @ np.array([cx, cy])
    return np.hstack([lin, off[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the crop out of a picture. When the crop shrinks the picture a lot, the picture is
    first reduced with area averaging (no aliasing) and the matrix adjusted exactly."""
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        f = 1.0 / (2.0 * scale)  # reduce so that the remaining warp shrinks by ~2x
        h, w = image.shape[:2]
        nw, nh = max(1, int(round(w / f))), max(1, int(round(h / f)))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        # small pixel centre u maps to picture coordinate (u + 0.5) * w / nw - 0.5
        sx, sy = w / nw, h / nh
        to_pic = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        m = (np.vstack([m, [0, 0, 1.0]]) @ to_pic)[:2]
        image = small
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def eye_angle(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    """Roll of a face in degrees: the angle of the line from the subject's right eye (the
    image's left) to the left eye. crop_matrix(..., angle_deg=eye_angle(...)) levels it."""
    d = np.asarray(left_eye, dtype=np.float64) - np.asarray(right_eye, dtype=np.float64)
    return float(np.degrees(np.arctan2(d[1], d[0])))


def levelled_box(points: np.ndarray, angle_deg: float) -> np.ndarray:
    """The box to give crop_matrix(box, size, angle_deg) so that the crop frames the tight box
    of the points as seen in the rotated (levelled) frame: its sides are those of the rotated
    shape's tight box, its centre that box's centre mapped back into the picture."""
    p = np.asarray(points, dtype=np.float64)
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # crop_matrix's rotation
    q = p @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = rot.T @ ((lo + hi) / 2)  # rot is orthonormal: its inverse is its transpose
    half = (hi - lo) / 2
    return np.array([centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1]])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0
