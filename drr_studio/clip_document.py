"""A clip being annotated: every tracked face's points per frame, the keyframes a person made,
and the files (model.annotation_files' clip folder). Qt-free, like the picture document.

Propagation is applied as each correction is made: a drag on frame f of a face makes f a
keyframe, and model.tracking.propagate moves the frames around it towards the new points, with
every earlier keyframe held where the person put it (its correction relative to the points on
screen is zero). So the points on screen are always what the files get, a reopened clip goes on
exactly where it was left, and fixing frames 1 and 50 fixes most of 2-49.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import annotation_files as files
from model.tracking import propagate

UNDO_STEPS = 20  # corrections that Undo can take back (each keeps a copy of one face's frames)


class ClipDocument:
    """frame -> {track: points} for one clip, its keyframes, cuts, and where it is saved."""

    def __init__(self, video: Path, frame_count: int, fps: float, folder: Path) -> None:
        self.video = Path(video)
        self.frame_count = frame_count
        self.fps = fps
        self.folder = Path(folder)  # the clip's annotation folder: 000001.pts, ..., drr_clip.json
        self.points: dict[int, dict[int, np.ndarray]] = {}  # track -> frame -> (p, 2)
        self.keys: dict[int, set[int]] = {}  # track -> keyframes
        self.cuts: set[int] = set()
        self.tracked = 0  # frames the tracker has been through (0 .. tracked - 1)
        self.dirty = False
        self._undo: list[tuple[int, dict[int, np.ndarray], set[int]]] = []  # (track, its frames, its keys) before

    # --- what the tracker gives -------------------------------------------------------------
    def set_model(self, frame: int, faces: dict[int, np.ndarray], cut: bool = False) -> None:
        """The tracker's points for a frame (track -> points); a keyframe's points are kept."""
        self.tracked = max(self.tracked, frame + 1)
        if cut:
            self.cuts.add(frame)
        for track, pts in faces.items():
            if frame not in self.keys.get(track, set()):
                self.points.setdefault(track, {})[frame] = np.asarray(pts, dtype=np.float64)
        self.dirty = True

    # --- what a person does -------------------------------------------------------------------
    def faces_at(self, frame: int) -> dict[int, np.ndarray]:
        return {t: by_frame[frame] for t, by_frame in sorted(self.points.items()) if frame in by_frame}

    def is_key(self, track: int, frame: int) -> bool:
        return frame in self.keys.get(track, set())

    def keyframes(self) -> list[int]:
        return sorted(set().union(*self.keys.values())) if self.keys else []

    def correct(self, track: int, frame: int, points: np.ndarray) -> None:
        """A person's points for a face on a frame: it becomes a keyframe, and the frames of its
        shot around it follow (model.tracking.propagate), other keyframes staying put."""
        by_frame = self.points.setdefault(track, {})
        keys = self.keys.setdefault(track, set())
        self._undo = (self._undo + [(track, dict(by_frame), set(keys))])[-UNDO_STEPS:]
        held = {k: by_frame[k] for k in keys if k in by_frame}
        held[frame] = np.asarray(points, dtype=np.float64)
        if frame not in by_frame:
            by_frame[frame] = held[frame]
        self.points[track] = propagate(by_frame, held, self.cuts)
        keys.add(frame)
        self.dirty = True

    def undo(self) -> int | None:
        """Take back the last correction (its face's frames and keyframes as they were); the
        track it touched, or None when there is nothing to undo."""
        if not self._undo:
            return None
        track, by_frame, keys = self._undo.pop()
        self.points[track], self.keys[track] = by_frame, keys
        self.dirty = True
        return track

    # --- files --------------------------------------------------------------------------------
    def to_annotation(self) -> files.ClipAnnotation:
        clip = files.ClipAnnotation(self.video.name, self.frame_count, self.fps, cuts=sorted(self.cuts),
                                    tracked=self.tracked)
        for track, by_frame in sorted(self.points.items()):
            for frame, pts in by_frame.items():
                key = frame in self.keys.get(track, set())
                record = files.FaceRecord(pts, "corrected" if key else "predicted", None)
                clip.frames.setdefault(frame, []).append(files.ClipFace(track, record, key))
        return clip

    def save(self) -> list[Path]:
        """Every frame's .pts and the side file (atomic writes); OSError propagates."""
        written = files.write_clip(self.folder, self.to_annotation())
        self.dirty = False
        return written

    @classmethod
    def open(cls, video: Path, frame_count: int, fps: float, folder: Path) -> tuple[ClipDocument, list[str]]:
        """A clip with what its folder holds (nothing yet: empty); problems name the files."""
        doc = cls(video, frame_count, fps, folder)
        if not files.is_clip_folder(folder):
            return doc, []
        clip, problems = files.read_clip(folder)
        doc.cuts = set(clip.cuts)
        # a folder saved before tracking ended says how far it got; any other was tracked through
        doc.tracked = min(clip.tracked if clip.tracked is not None else frame_count, frame_count)
        for frame, faces in clip.frames.items():
            for face in faces:
                doc.points.setdefault(face.track, {})[frame] = face.record.points
                if face.keyframe:
                    doc.keys.setdefault(face.track, set()).add(frame)
        return doc, problems

