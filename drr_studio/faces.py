"""A picture and its faces, and the one rule for a picture's status: the plain records the
document (drr_studio/document.py) holds and the views draw. No Qt, no files."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from model.detect import MIN_MATCH_IOU
from model.geometry import box_iou
from model.qa import SUSPICIOUS


class Status(str, Enum):
    PENDING = "not predicted"
    PREDICTED = "predicted"
    CORRECTED = "corrected"
    APPROVED = "approved"


HUMAN = (Status.CORRECTED, Status.APPROVED)
ERROR_STATUS = "error"
NO_FACE_STATUS = "no face found"  # the detector ran and found none: draw a box (B)
BAD_FILE_STATUS = "bad annotation file"  # a malformed .pts or side file, left as it is


_uids = itertools.count(1)


@dataclass(frozen=True, eq=False)
class FaceState:
    """What one undo step restores: everything the user can change about a face."""

    points: np.ndarray | None
    status: Status
    occluded: frozenset[int]
    box: np.ndarray
    placed: frozenset[int] = frozenset()  # points a person put where they are (assisted correction)
    source: str = "annotation"  # where the box came from (model.predict.BoxSource): it decides the passes


@dataclass(eq=False)
class Face:
    box: np.ndarray  # [x0, y0, x1, y1] picture pixels
    points: np.ndarray | None = None  # (p, 2) 0-based; None until the model has run on the box
    status: Status = Status.PENDING
    occluded: set[int] = field(default_factory=set)
    result: Any = None  # the model's FaceResult (trace) for this box; never saved
    annotation: np.ndarray | None = None  # points as read from disk, to compare with the model
    uid: int = field(default_factory=lambda: next(_uids))
    box_version: int = 0  # bumped when the box changes so that stale predictions are dropped
    qa_scores: np.ndarray | None = None  # (p,) model-annotation disagreement (review.Review); never saved
    # points a person placed (dragged, nudged, or read from a file without this list): assisted
    # correction never moves them; the others are the model's, moved by the tool
    placed: set[int] = field(default_factory=set)
    # where the box came from (model.predict.BoxSource: detector, annotation, person) and the
    # detector's eye line: a face predicted again gets the same passes, so the same points
    source: str = "annotation"
    roll: float = 0.0

    @property
    def human(self) -> bool:
        return self.status in HUMAN

    def state(self) -> FaceState:
        pts = None if self.points is None else self.points.copy()
        return FaceState(pts, self.status, frozenset(self.occluded), self.box.copy(), frozenset(self.placed),
                         self.source)

    def restore(self, state: FaceState) -> None:
        if not np.array_equal(self.box, state.box):
            self.box_version += 1
        self.points = None if state.points is None else state.points.copy()
        self.status = state.status
        self.occluded = set(state.occluded)
        self.box = state.box.copy()
        self.placed = set(state.placed)
        self.source = state.source

    @property
    def uncertain(self) -> bool:
        """Model points the model itself doubts (its mirror passes disagree, see
        FaceResult.needs_review): worth checking first. Human points never are."""
        return not self.human and self.points is not None and bool(getattr(self.result, "needs_review", False))

    @property
    def suspicious(self) -> set[int]:
        """Human points the model disagrees with most (model.qa.SUSPICIOUS or more): a possible
        labelling mistake, worth a second look. Only on an annotation whose every point is a
        person's (a dataset under review); on a face being corrected here from the model's
        prediction, the points just placed and their followers differ from the model by
        design, and rings there would only be noise."""
        if self.qa_scores is None or not self.human or len(self.placed) < len(self.qa_scores):
            return set()
        return {int(k) for k in np.flatnonzero(self.qa_scores >= SUSPICIOUS)}

    def reference(self) -> np.ndarray | None:
        """The human shape to measure the model against, if there is one."""
        if self.annotation is not None:
            return self.annotation
        return self.points if self.human else None


@dataclass(eq=False)
class ImageEntry:
    path: Path
    faces: list[Face] = field(default_factory=list)
    error: str | None = None  # why the picture or its annotations could not be used
    predicted: bool = False  # the current model has run on every face
    dirty: bool = False  # human changes not yet written
    loaded: bool = False  # annotation files have been read
    size: tuple[int, int] | None = None  # (width, height) once the picture was decoded
    unreadable: set[Path] = field(default_factory=set)  # malformed annotation files seen on load
    saved_status: str | None = None  # from the side file, before the annotations are read (peek_statuses)
    # boxes of faces a person deleted: saved in the side file, and no detection near one comes back
    deleted: list[np.ndarray] = field(default_factory=list)
    # its annotation files as read (model.annotation_files.disk_stamp): a save keeps another
    # program's later edit of them as NAME.theirs instead of overwriting it silently
    disk_stamp: dict[str, tuple[int, int]] | None = None

    @property
    def status(self) -> str:
        return picture_status(self)

    @property
    def status_text(self) -> str:
        return status_text(self)

    @property
    def to_check(self) -> int:
        """How many of its faces carry model points the model doubts."""
        return sum(f.uncertain for f in self.faces)

    def needs_a_look(self, face: Face) -> bool:
        """Model points to approve only deliberately: the model doubts them (pink box) or the
        face is cut by the picture's edge (its box reaches 5% of its side past the border)."""
        if face.human or face.points is None:
            return False
        if face.uncertain:
            return True
        if self.size is None:
            return False
        x0, y0, x1, y1 = face.box
        m = 0.05 * max(x1 - x0, y1 - y0)
        return x0 < -m or y0 < -m or x1 > self.size[0] + m or y1 > self.size[1] + m

    def face_by_uid(self, uid: int) -> Face | None:
        return next((f for f in self.faces if f.uid == uid), None)


def picture_status(entry: ImageEntry) -> str:
    """The one rule for a picture's status, from its faces (tests/test_status_rule.py runs it
    over every combination). A person's work (a human face, a deleted face) is never shown as
    the model's; a picture is approved only when every face is."""
    faces = entry.faces
    human = [f for f in faces if f.human]
    if entry.error and not faces and entry.size is None:
        return ERROR_STATUS
    if entry.unreadable and not human:
        return BAD_FILE_STATUS
    if faces and len(human) == len(faces) and all(f.status == Status.APPROVED for f in faces):
        return Status.APPROVED.value
    if human or (entry.loaded and entry.deleted):  # a deleted face is a person's work too
        return Status.CORRECTED.value
    if not entry.loaded and entry.saved_status:
        return entry.saved_status
    if entry.predicted and not faces:
        return NO_FACE_STATUS
    if entry.predicted and all(f.points is not None for f in faces):
        return Status.PREDICTED.value
    return Status.PENDING.value


def status_text(entry: ImageEntry) -> str:
    """What the image list says: the status, and how far a picture a person started is
    ("approved 1 of 2": one face approved, the other still the model's)."""
    status = picture_status(entry)
    human = [f for f in entry.faces if f.human]
    if status != Status.CORRECTED.value or not entry.faces:
        return "faces deleted" if status == Status.CORRECTED.value and entry.loaded and not entry.faces else status
    if len(human) == len(entry.faces):
        return status
    word = Status.APPROVED.value if human and all(f.status == Status.APPROVED for f in human) else status
    return f"{word} {len(human)} of {len(entry.faces)}"


def carry_faces(source: list[Face], source_size: tuple[int, int] | None, target: list[Face],
                target_size: tuple[int, int] | None) -> tuple[list[tuple[Face, Face | None]], int, int]:
    """Faces of another picture (the previous frame of a burst) placed on this one as a person's
    faces: each is fitted to the model face here that it overlaps (its points moved from its box
    to that box), which it then replaces; without one it is copied as it is only when both
    pictures have the same size (the same framing), else skipped, since a shape from another
    framing would mean nothing here. A face that overlaps a person's face here (corrected or
    approved) is not copied: that face is already done, and a second one on it would be a
    duplicate. Returns ([(copy, replaced face or None)], skipped, left for a person's face)."""
    sx = sy = 1.0
    same_size = source_size is None or target_size is None or tuple(source_size) == tuple(target_size)
    if not same_size:
        sx, sy = target_size[0] / source_size[0], target_size[1] / source_size[1]
    out: list[tuple[Face, Face | None]] = []
    skipped = covered = 0
    free = [g for g in target if not g.human]
    done = [g for g in target if g.human]
    for f in source:
        if f.points is None:
            continue
        box = f.box * np.array([sx, sy, sx, sy])
        if any(box_iou(g.box, box) >= MIN_MATCH_IOU for g in done):
            covered += 1
            continue
        match = max(free, key=lambda g: box_iou(g.box, box), default=None)
        if match is not None and box_iou(match.box, box) < MIN_MATCH_IOU:
            match = None
        if match is None and not same_size:
            skipped += 1
            continue
        new_box = match.box.copy() if match is not None else f.box.copy()
        scale = (new_box[2:] - new_box[:2]) / np.maximum(f.box[2:] - f.box[:2], 1e-6)
        points = (f.points - f.box[:2]) * scale + new_box[:2]
        copy = Face(box=new_box, points=points, status=Status.CORRECTED, occluded=set(f.occluded),
                    placed=set(range(len(points))), source=f.source if match is None else match.source,
                    roll=f.roll if match is None else match.roll)
        if match is not None:
            free.remove(match)
        out.append((copy, match))
    return out, skipped, covered
