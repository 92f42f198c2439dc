"""Face detection with OpenCV's YuNet (`cv2.FaceDetectorYN`, the MIT-licensed model in
resources/): boxes with five points (eyes, nose tip, mouth corners) for every face.

YuNet finds faces of about 10 to 300 pixels at the scale it runs at, frontal or turned, so a
picture is searched at up to three scales and the detections merged by non-maximum
suppression: reduced to at most MAX_SIDE (speed, and faces up to ~300 px there), reduced again
by LARGE_FACE_SCALE when there is room for larger faces, and doubled when the picture is small
(tiny faces). Boxes are converted to the box convention the network is trained with (the tight
box of the 68 landmarks) by a calibration measured on the training split:
`python -m model.cli.calibrate --calibrate FOLDER`. The eye points give the face's roll, which
eye-levelled models (DRRConfig.level_eyes) use to level the crop of their first pass.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import box_iou, eye_angle
from .resources import DETECTOR, resource

DETECTOR_MODEL = resource(DETECTOR)

# landmark-box centre offset and side, in units of the YuNet box width (python -m model.cli.calibrate --calibrate)
# on the 1,810 training faces (all found): {'dx': -0.0003, 'dy': 0.1645, 'side': 1.0464}
CALIBRATION = {"dx": -0.0003, "dy": 0.1645, "side": 1.0464}
MAX_SIDE = 1000  # pictures are reduced to this before detection; boxes are mapped back
LARGE_FACE_SCALE = 0.4  # second scale for faces larger than YuNet's ~300 px range
SMALL_PICTURE = 256  # pictures smaller than this are also searched at twice their size
SCORE_THRESHOLD = 0.6  # chosen with python -m bench.detection (see README)
NMS_IOU = 0.3


class DetectorError(RuntimeError):
    pass


@dataclass
class Detection:
    """One face; picture pixels, 0-based."""

    box: np.ndarray  # (4,) x0, y0, x1, y1 in the network's convention (tight landmark box)
    score: float
    raw_box: np.ndarray  # (4,) YuNet's own box
    points: np.ndarray  # (5, 2) right eye (image left), left eye, nose tip, right and left mouth corner

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.points[0], self.points[1]

    @property
    def roll(self) -> float:
        """In-plane rotation of the eye line, degrees."""
        return eye_angle(*self.eyes)


_local = threading.local()  # cv2.FaceDetectorYN is not thread-safe: one instance per thread


def _yunet():
    det = getattr(_local, "det", None)
    if det is None:
        if not DETECTOR_MODEL.is_file():
            raise DetectorError(f"{DETECTOR_MODEL}: face detector model missing (reinstall drr-studio)")
        # threshold 0.3 here: detections are filtered after merging the scales
        det = cv2.FaceDetectorYN.create(str(DETECTOR_MODEL), "", (320, 320), 0.3, NMS_IOU, 5000)
        _local.det = det
    return det


def _detect_at(image: np.ndarray, f: float) -> np.ndarray:
    """YuNet rows (x, y, w, h, 10 point coordinates, score) in picture pixels, the picture
    resized by f for detection."""
    h, w = image.shape[:2]
    size = (max(1, round(w * f)), max(1, round(h * f)))
    img = image if f == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    det = _yunet()
    det.setInputSize(size)
    _, faces = det.detect(np.ascontiguousarray(img[:, :, ::-1]))  # YuNet wants BGR
    if faces is None:
        return np.zeros((0, 15), np.float32)
    faces = faces.astype(np.float64)
    # resized pixel centre u is picture coordinate (u + 0.5) / f - 0.5
    faces[:, :14] = faces[:, :14] / f
    faces[:, [0, 1, *range(4, 14)]] += 0.5 / f - 0.5  # positions, not the box's width and height
    return faces


def scales_for(shape: tuple[int, ...]) -> list[float]:
    """Detection scales for a picture of this shape (see the module docstring)."""
    side = max(shape[:2])
    base = min(1.0, MAX_SIDE / side)
    scales = [base]
    if side * base * LARGE_FACE_SCALE >= 160:  # room for a face larger than ~300 px at base
        scales.append(base * LARGE_FACE_SCALE)
    if side < SMALL_PICTURE:
        scales.append(2.0)
    return scales


def detect_raw(image: np.ndarray, min_score: float = SCORE_THRESHOLD) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """YuNet's faces (box x0, y0, x1, y1, score, (5, 2) points), best first, over all scales."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB picture (h, w, 3), got shape {image.shape}")
    rows = np.concatenate([_detect_at(image, f) for f in scales_for(image.shape)])
    rows = rows[np.isfinite(rows).all(1) & (rows[:, 14] >= min_score)]  # YuNet can emit a NaN row
    if not len(rows):
        return []
    keep = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, 14].tolist(), min_score, NMS_IOU)
    out = []
    for i in np.asarray(keep, dtype=np.int64).reshape(-1):
        x, y, w, h = rows[i, :4]
        out.append((np.array([x, y, x + w, y + h]), float(rows[i, 14]), rows[i, 4:14].reshape(5, 2)))
    return sorted(out, key=lambda t: -t[1])


def to_landmark_box(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    w = x1 - x0
    cx = (x0 + x1) / 2 + CALIBRATION["dx"] * w
    cy = (y0 + y1) / 2 + CALIBRATION["dy"] * w
    half = CALIBRATION["side"] * w / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def drawn_box_to_landmark_box(box: np.ndarray) -> np.ndarray:
    """A box a person drags around a face spans it from the forehead to the chin, as YuNet's
    box does, not the landmark box (brows to chin) the network is trained on: it is converted
    with the detector's calibration, and the app then runs the re-crop pass on it."""
    x0, y0, x1, y1 = (float(v) for v in box)
    # the calibration is per box width; a drawn box may be any shape, so use its mean side
    side = ((x1 - x0) + (y1 - y0)) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return to_landmark_box(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))


def detect_faces(image: np.ndarray, min_score: float = SCORE_THRESHOLD) -> list[Detection]:
    """Every face of an RGB picture, best first, with its box in the network's convention.
    This is the one detector of drr-predict, drr-eval, the benchmarks and the app."""
    return [Detection(to_landmark_box(b), s, b, p) for b, s, p in detect_raw(image, min_score)]


MIN_MATCH_IOU = 0.3


def match_detection(found: list[Detection], truth_box: np.ndarray) -> Detection | None:
    """The detection (box in the landmark-box convention) that overlaps the annotated face most, if it
    overlaps it by IoU >= 0.3. The centre-distance rule this replaces accepted a spurious box a
    third of the face's size around one eye (lfpw image_0601, IoU 0.12), which no landmark
    model can work from; on the validation split the true matches all have IoU >= 0.49."""
    iou, best = max(((box_iou(d.box, truth_box), d) for d in found), key=lambda t: t[0], default=(0.0, None))
    return best if iou >= MIN_MATCH_IOU else None
