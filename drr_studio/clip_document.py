"""A clip being annotated: the tracker's points per face and frame, the keyframes a person made,
the points shown (the two combined), and the files (model.annotation_files' clip folder).
Qt-free, like the picture document.

What is shown is always model.tracking.propagate(the tracker's points, the keyframes, the cuts),
as bench.video measures it: a drag on frame f makes f a keyframe, and the frames of its shot
follow (between two keyframes both corrections, blended in time; after the last one its
correction held). Frames the tracker delivers after a correction get it too, so correcting while
tracking runs loses nothing. The files hold what is shown; a reopened clip takes those points as
the tracker's (its keyframes then carry no correction of their own, as they are already in the
points), so it goes on exactly where it was left.

Re-tracking (`retrack_span`, `set_retracked`): after a correction on frame k the app tracks the
frames after k again from the corrected points, up to the next keyframe of the face, the next
cut or the frames tracked so far (model.tracking.Retrack, in the tracker's thread). The results
replace the tracker's points of those frames as they come, and propagation pulls them towards
the keyframes on both sides, the correction carried forward measured against the network's
points on k framed by the person's points (its base). A result is taken only while frame k is
still the keyframe it was tracked from, and only up to the face's next keyframe or cut as they
are when it arrives. Undo puts back the tracker's points as they were before the correction.

Deleting a face (`delete`: not a face, or no longer the face, from a frame on) hides its track
from that frame to the end of the clip. The tracker goes on tracking it, so a detection of that
face later continues the hidden track rather than bringing it back under a new identity; the side
file keeps the deletion and the tracker's last points of the track, so a clip reopened before
tracking ended resumes it hidden (`tracker_faces`). Undo brings the face back. A face can also be
removed from one frame alone (`hide`: a false detection for a frame, a face covered for a moment):
the side file keeps those frames too.

Evented like the picture document (psygnal): `frames_changed` says which frames' shown faces (their
points or status) changed, `marks_changed` that the keyframes, the cuts or how far tracking got
did; the views and the autosave subscribe. Undo lives in the window's QUndoStack: a change is the
face's `face_state()` before and after it, put back with `set_face_state()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from psygnal import Signal

from model import annotation_files as files
from model.tracking import propagate


@dataclass(frozen=True)
class ClipFaceState:
    """One face's edits at a moment (before or after a correction, an approval, a deletion): what
    undo and redo put back. The dicts are copies; the arrays are shared, never written into."""

    keys: dict[int, np.ndarray]
    model: dict[int, np.ndarray]  # the tracker's points (re-tracking after a correction changes them)
    bases: dict[int, np.ndarray]
    deleted: int | None  # the frame it is hidden from
    approved: dict[int, bool]
    hidden: frozenset[int] = frozenset()  # single frames a person removed it from
    placed: dict[int, frozenset[int]] = field(default_factory=dict)  # keyframe -> the points set by hand


class ClipDocument:
    """track -> frame -> points for one clip (the tracker's, the keyframes, what is shown), its
    cuts, and where it is saved."""

    frames_changed = Signal(object)  # frozenset: frames whose shown faces (points or status) changed
    marks_changed = Signal()  # the keyframes, the cuts or how far tracking got changed

    def __init__(self, video: Path, frame_count: int, fps: float, folder: Path) -> None:
        self.video = Path(video)
        self.frame_count = frame_count
        self.fps = fps
        self.folder = Path(folder)  # the clip's annotation folder: 000001.pts, ..., drr_clip.json
        self.model: dict[int, dict[int, np.ndarray]] = {}  # the tracker's points
        self.keys: dict[int, dict[int, np.ndarray]] = {}  # a person's points (keyframes)
        self.bases: dict[int, dict[int, np.ndarray]] = {}  # keyframe -> the points re-tracked from
        self.points: dict[int, dict[int, np.ndarray]] = {}  # what is shown and saved
        self.cuts: set[int] = set()
        self.deleted: dict[int, int] = {}  # track -> the first frame it is hidden from (a person deleted it)
        self.hidden: dict[int, set[int]] = {}  # track -> single frames a person removed it from
        self.placed: dict[int, dict[int, frozenset[int]]] = {}  # track -> keyframe -> points set by hand
        # track -> frames a person approved (keyframes; the value: whether it was a keyframe before)
        self.approved: dict[int, dict[int, bool]] = {}
        self.tracked = 0  # frames the tracker has been through (0 .. tracked - 1)
        self.dirty = False
        self._unsaved: set[int] = set()  # frames whose shown points changed since the last save
        self._changed: set[int] = set()  # frames changed by the edit under way (announced at its end)

    @contextmanager
    def _announcing(self, keys: bool = True) -> Iterator[None]:
        """Around every change: what it changed is announced once, at its end. keys False: the
        change cannot touch the keyframes (the tracker's frames): their list is not compared, which
        on a clip approved through would cost a sort of every frame per tracked frame."""
        marks = self._marks(keys)
        yield
        frames, self._changed = frozenset(self._changed), set()
        self._unsaved |= frames
        self.dirty = self.dirty or bool(frames)
        if frames:
            self.frames_changed.emit(frames)
        if self._marks(keys) != marks:
            self.marks_changed.emit()

    def _marks(self, keys: bool) -> tuple:
        return tuple(self.keyframes()) if keys else (), len(self.cuts), self.tracked

    # --- what the tracker gives -------------------------------------------------------------
    def set_model(self, frame: int, faces: dict[int, np.ndarray], cut: bool = False) -> None:
        """The tracker's points for a frame (track -> points), shown with the keyframes' pull."""
        with self._announcing(keys=False):
            self.tracked = max(self.tracked, frame + 1)
            new_cut = cut and frame not in self.cuts
            if cut:
                self.cuts.add(frame)
            self._changed.add(frame)
            for track, pts in faces.items():
                self.model.setdefault(track, {})[frame] = np.asarray(pts, dtype=np.float64)
                keys = self.keys.get(track, {})
                if frame in keys or not self._shows(track, frame):
                    continue
                # only this frame needs the keyframes' pull: propagate it with the keyframes alone
                model = {k: self.model[track][k] for k in keys if k in self.model[track]}
                model[frame] = self.model[track][frame]
                shown = propagate(model, keys, self.cuts, self.bases.get(track))[frame]
                self.points.setdefault(track, {})[frame] = shown
            if new_cut:  # keyframes no longer reach past it
                for track in self.keys:
                    self._show(track)

    def _show(self, track: int) -> None:
        old = self.points.get(track, {})
        new = propagate(self.model.get(track, {}), self.keys.get(track, {}), self.cuts, self.bases.get(track))
        if track in self.deleted or self.hidden.get(track):
            new = {f: p for f, p in new.items() if self._shows(track, f)}
        self._changed.update(f for f, p in new.items() if f not in old or not np.array_equal(old[f], p))
        self._changed.update(set(old) - set(new))
        self.points[track] = new

    def retrack_span(self, track: int, frame: int) -> range:
        """The frames to track again after a correction of `track` on `frame`: up to its next
        keyframe, the next cut or the last frame tracked, whichever comes first."""
        ends = [k for k in self.keys.get(track, {}) if k > frame] + [c for c in self.cuts if c > frame]
        return range(frame + 1, min([*ends, self.tracked]))

    def set_retracked(self, track: int, frame: int, key: np.ndarray, base: np.ndarray,
                      faces: dict[int, np.ndarray]) -> list[int]:
        """Frames re-tracked from the keyframe `key` of `track` on `frame` (Retrack.base, frame ->
        points); taken only while that keyframe is as it was and within its span as it is now.
        The frames taken."""
        if self.keys.get(track, {}).get(frame) is not key:
            return []
        span = self.retrack_span(track, frame)
        taken = sorted(f for f in faces if f in span)
        with self._announcing(keys=False):
            self.bases.setdefault(track, {})[frame] = np.asarray(base, dtype=np.float64)
            for f in taken:
                self.model.setdefault(track, {})[f] = np.asarray(faces[f], dtype=np.float64)
            self._show(track)
        return taken

    # --- what a person does -------------------------------------------------------------------
    def faces_at(self, frame: int) -> dict[int, np.ndarray]:
        return {t: by_frame[frame] for t, by_frame in sorted(self.points.items()) if frame in by_frame}

    def next_track(self) -> int:
        """The identity a new face gets: above every track the clip has had."""
        return max([*self.points, *self.model, 0]) + 1

    def is_key(self, track: int, frame: int) -> bool:
        return frame in self.keys.get(track, {})

    def keyframes(self) -> list[int]:
        """The frames a person corrected a face on that is still shown there."""
        return sorted({f for t, keys in self.keys.items() for f in keys if self._shows(t, f)})

    def _shows(self, track: int, frame: int) -> bool:
        """Whether a person left the face on that frame (not deleted from before it, not removed there)."""
        return frame < self.deleted.get(track, frame + 1) and frame not in self.hidden.get(track, ())

    def tracker_faces(self, frame: int) -> dict[int, np.ndarray]:
        """What the tracker goes on from after `frame`: the faces shown, and the tracker's points
        of the faces a person deleted (kept tracked, so that they stay hidden)."""
        hidden = {t: by_frame[frame] for t, by_frame in self.model.items()
                  if frame in by_frame and not self._shows(t, frame)}
        return {**hidden, **self.faces_at(frame)}

    def add_face(self, track: int, frame: int, points: np.ndarray) -> None:
        """A face a person found on a frame (the tracker missed it): a new track with a keyframe
        there; the tracker's points of the frames after it come through set_model."""
        with self._announcing():
            points = np.asarray(points, dtype=np.float64)
            self.model.setdefault(track, {})[frame] = points
            self.keys.setdefault(track, {})[frame] = points
            self.deleted.pop(track, None)
            self._changed.add(frame)
            self._show(track)

    @staticmethod
    def absent(frame: int) -> ClipFaceState:
        """A face's state before a person added it on `frame`: none, hidden from there on (so
        that undoing the addition keeps the tracker's later frames of it hidden)."""
        return ClipFaceState({}, {}, {}, frame, {})

    def hide(self, track: int, frame: int) -> None:
        """A person says `track` is not a face (or not the face) on this frame alone: removed
        there (its file too), shown on the frames around it as before."""
        with self._announcing():
            self.hidden.setdefault(track, set()).add(frame)
            self._changed.add(frame)
            self._show(track)

    def delete(self, track: int, frame: int) -> None:
        """A person says `track` is not a face (or no longer the face) from `frame` on: hidden
        from there to the end of the clip (its files too)."""
        with self._announcing():
            self.deleted[track] = min(frame, self.deleted.get(track, frame))
            self._show(track)

    def is_approved(self, track: int, frame: int) -> bool:
        return frame in self.approved.get(track, {})

    def approve(self, track: int, frame: int) -> bool:
        """A person checked the face on this frame: approved, and a keyframe with the points shown
        (the frames around it are pulled to them, as to a correction). On an approved face it
        takes the approval back (and the keyframe, when the approval made it). Whether it is
        approved now."""
        on = not self.is_approved(track, frame)
        with self._announcing():
            self._set_approval(track, frame, on)
            self._show(track)
        return on

    def shot(self, frame: int) -> range:
        """The frames tracked of the shot `frame` is in: from the cut at or before it (a cut is
        the first frame of its shot) to the next cut."""
        start = max([c for c in self.cuts if c <= frame], default=0)
        return range(start, min([c for c in self.cuts if c > frame] + [self.tracked]))

    def approve_shot(self, track: int, frame: int) -> list[int]:
        """The face checked on every frame of the shot around `frame` (where it is shown): each
        approved, as approve() does; where every one of them is approved already, the approvals
        are taken back. The frames, empty when it took the approvals back."""
        frames = [f for f in self.shot(frame) if f in self.points.get(track, {})]
        on = not all(self.is_approved(track, f) for f in frames)
        with self._announcing():
            for f in frames:
                if self.is_approved(track, f) != on:
                    self._set_approval(track, f, on)
            self._show(track)
        return frames if on else []

    def _set_approval(self, track: int, frame: int, on: bool) -> None:
        marks = self.approved.setdefault(track, {})
        if not on:
            if not marks.pop(frame):
                self.keys[track].pop(frame, None)
        else:
            marks[frame] = frame in self.keys.get(track, {})
            self.keys.setdefault(track, {})[frame] = self.points[track][frame]
        self._changed.add(frame)  # its status changed, even where no point moved

    def placed_at(self, track: int, frame: int) -> frozenset[int]:
        """The points of the face a person set by hand on that frame (a keyframe's)."""
        return self.placed.get(track, {}).get(frame, frozenset()) if self.is_key(track, frame) else frozenset()

    def correct(self, track: int, frame: int, points: np.ndarray, placed: set[int] | None = None) -> None:
        """A person's points for a face on a frame: it becomes a keyframe, and the frames of its
        shot follow (model.tracking.propagate). placed: the points set by hand (saved with it,
        so that a later drag on that frame keeps them where they are)."""
        with self._announcing():
            if placed is not None:
                self.placed.setdefault(track, {})[frame] = frozenset(placed)
            self.approved.get(track, {}).pop(frame, None)  # moved again: corrected, no longer approved
            self.keys.setdefault(track, {})[frame] = np.asarray(points, dtype=np.float64)
            self._changed.add(frame)  # its status: corrected, even where the points are the same
            self._show(track)

    def face_state(self, track: int) -> ClipFaceState:
        """The face's edits as they are now (for undo and redo)."""
        return ClipFaceState(dict(self.keys.get(track, {})), dict(self.model.get(track, {})),
                             dict(self.bases.get(track, {})), self.deleted.get(track),
                             dict(self.approved.get(track, {})), frozenset(self.hidden.get(track, ())),
                             dict(self.placed.get(track, {})))

    def set_face_state(self, track: int, state: ClipFaceState) -> None:
        """Put a face's edits back as they were (undo, redo). Frames tracked since stay tracked."""
        with self._announcing():
            # frames whose status changes (a keyframe or an approval comes or goes), even where the
            # points stay: _show only notices moved points
            self._changed.update(set(state.keys) ^ set(self.keys.get(track, {})))
            self._changed.update(set(state.approved) ^ set(self.approved.get(track, {})))
            self._changed.update(set(state.hidden) ^ self.hidden.get(track, set()))
            self.hidden[track] = set(state.hidden)
            self.placed[track] = dict(state.placed)
            self.keys[track], self.bases[track] = dict(state.keys), dict(state.bases)
            self.approved[track] = dict(state.approved)
            if state.deleted is None:
                self.deleted.pop(track, None)
            else:
                self.deleted[track] = state.deleted
            self.model.setdefault(track, {}).update(state.model)
            self._show(track)

    # --- files --------------------------------------------------------------------------------
    def to_annotation(self) -> files.ClipAnnotation:
        return self._snapshot()()

    def _snapshot(self) -> Callable[[], files.ClipAnnotation]:
        """The clip as it is now, turned into files' records when called (also later, in another
        thread): the points and keyframes are copied by reference, which is safe because the
        document replaces arrays and never writes into them."""
        points = {t: dict(by_frame) for t, by_frame in self.points.items()}
        keys = {t: set(k) for t, k in self.keys.items()}
        approved = {t: set(a) for t, a in self.approved.items()}
        placed = {t: dict(p) for t, p in self.placed.items()}
        video, count, fps, cuts, tracked = self.video.name, self.frame_count, self.fps, sorted(self.cuts), self.tracked
        hidden = {t: set(frames) for t, frames in self.hidden.items() if frames}
        deleted = {}
        for t, start in self.deleted.items():
            last = max(self.model.get(t, {}), default=None)  # the tracker's latest points of it
            deleted[t] = files.DeletedTrack(start, last, None if last is None else self.model[t][last])

        def build() -> files.ClipAnnotation:
            clip = files.ClipAnnotation(video, count, fps, cuts=cuts, tracked=tracked, deleted=deleted, hidden=hidden)
            for track, by_frame in sorted(points.items()):
                for frame, pts in by_frame.items():
                    key = frame in keys.get(track, ())
                    status = "approved" if frame in approved.get(track, ()) else "corrected" if key else "predicted"
                    by_hand = placed.get(track, {}).get(frame) if key else None
                    record = files.FaceRecord(pts, status, None, placed=None if by_hand is None else set(by_hand))
                    clip.frames.setdefault(frame, []).append(files.ClipFace(track, record, key))
            return clip

        return build

    def save(self) -> list[Path]:
        """Every frame's .pts and the side file (atomic writes); OSError propagates."""
        clip = self.to_annotation()
        written = files.write_clip(self.folder, clip)
        for frame in sorted(self._unsaved - set(clip.frames)):  # every face of it deleted: its files go
            written += files.write_clip_frame(self.folder, frame, [])
        self.dirty = False
        self._unsaved.clear()
        return written

    def save_changes(self) -> list[Path]:
        """The autosave: the .pts of the frames that changed since the last save, and the side
        file (atomic writes); OSError propagates and the frames stay unsaved."""
        frames, write = self.take_changes()
        try:
            return write()
        except OSError:
            self.unsaved(frames)
            raise

    def take_changes(self) -> tuple[list[int], Callable[[], list[Path]]]:
        """The autosave in two halves: (the frames changed since the last save, a function that
        writes them and the side file as they are now). Taking is quick and marks them saved;
        the writing can run in another thread (the clip window's); if it fails, give the frames
        back with unsaved()."""
        frames, build, folder = sorted(self._unsaved), self._snapshot(), self.folder
        self._unsaved.clear()
        self.dirty = False

        def write() -> list[Path]:
            clip = build()
            written = [p for f in frames for p in files.write_clip_frame(folder, f, clip.frames.get(f, []))]
            return written + [files.write_clip_sidecar(folder, clip)]

        return frames, write

    def unsaved(self, frames: list[int]) -> None:
        """Frames whose writing failed: written again at the next save."""
        self._unsaved.update(frames)
        self.dirty = True

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
        doc.hidden = {t: set(frames) for t, frames in clip.hidden.items()}
        for track, d in clip.deleted.items():
            doc.deleted[track] = d.start
            if d.points is not None:
                doc.model.setdefault(track, {})[d.frame] = d.points
        for frame, faces in clip.frames.items():
            for face in faces:
                doc.model.setdefault(face.track, {})[frame] = face.record.points
                doc.points.setdefault(face.track, {})[frame] = face.record.points
                if face.keyframe:
                    doc.keys.setdefault(face.track, {})[frame] = face.record.points
                    if face.record.placed:
                        doc.placed.setdefault(face.track, {})[frame] = frozenset(face.record.placed)
                    if face.record.status == "approved":  # taking it back keeps the keyframe
                        doc.approved.setdefault(face.track, {})[frame] = True
        return doc, problems
