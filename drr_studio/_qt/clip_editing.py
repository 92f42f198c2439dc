"""What a person does in the clip window: drag a point (the face's other points follow, the frame
becomes a keyframe), approve a face on a frame, delete a face from a frame on, add a face the
tracker missed (a box around it). Every change goes
through the document's methods inside an undo command (commands.ClipFaceEdit: one drag, one
approval, one deletion = one step, with redo); the views follow the document's events."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QUndoStack

from model.correction import CorrectionModel
from model.geometry import box_iou, box_of_points

from ..clip_document import ClipDocument
from .clip_views import ClipPoints
from .commands import ClipFaceEdit
from .timeline import Timeline

GRAB_PX = 10  # a press this close to a point (screen pixels) drags it
MIN_BOX_PX = 8  # a box drawn smaller than this (picture pixels) is taken for a slip
SAME_BOX_IOU = 0.5  # a box drawn over a face shown this much is taken for that face
UNDO_STEPS = 50  # changes Undo can take back (each keeps one face's edits before and after)


class ClipEditing:
    """The clip window's edits. Given the document, the timeline (the frame edited), the points
    view (a drag's preview), the assisted-correction statistics (None: the other points stay),
    the undo stack, and from the window: how many screen pixels a view pixel is, where the
    cursor is in the view, how to say something, what to do after a correction (re-track) and
    how to find a face in a box (the tracker's thread; face_found() gets the answer)."""

    def __init__(self, doc: ClipDocument, timeline: Timeline, points: ClipPoints,
                 corrector: CorrectionModel | None, stack: QUndoStack, view_pixel: Callable[[], float],
                 cursor: Callable[[], QPointF], say: Callable[[str], None],
                 corrected: Callable[[int, int], None],
                 find_face: Callable[[int, np.ndarray, dict[int, np.ndarray]], None]) -> None:
        self.doc, self.timeline, self.points, self.corrector, self.stack = doc, timeline, points, corrector, stack
        self.stack.setUndoLimit(UNDO_STEPS)
        self.view_pixel, self.cursor, self.say, self.corrected = view_pixel, cursor, say, corrected
        self.find_face = find_face
        # (track, frame) -> the face's points before its first drag there, and the points placed
        self._editing: dict[tuple[int, int], tuple[np.ndarray, dict[int, np.ndarray]]] = {}

    @property
    def frame(self) -> int:
        return self.timeline.frame

    # --- finding ------------------------------------------------------------------------------
    def point_near(self, pos: QPointF) -> tuple[int, int] | None:
        """(track, point) of the point nearest to a view position, within GRAB_PX on screen."""
        best, best_d = None, float("inf")
        for track, pts in self.doc.faces_at(self.frame).items():
            d = np.hypot(pts[:, 0] - pos.x(), pts[:, 1] - pos.y())
            k = int(np.argmin(d))
            if d[k] < best_d:
                best, best_d = (track, k), float(d[k])
        return best if best is not None and best_d / (self.view_pixel() or 1.0) <= GRAB_PX else None

    def face_at(self, pos: QPointF) -> int | None:
        """The track whose face (the box of its points, a little grown) holds a view position; the
        smallest such face, so that a face in front of a larger one can be picked."""
        best, best_area = None, float("inf")
        for track, pts in self.doc.faces_at(self.frame).items():
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            grow = 0.1 * max(x1 - x0, y1 - y0)
            area = (x1 - x0) * (y1 - y0)
            if x0 - grow <= pos.x() <= x1 + grow and y0 - grow <= pos.y() <= y1 + grow and area < best_area:
                best, best_area = track, area
        return best

    def on_face_under_cursor(self, key: str, what: str, act: Callable[[int], object]) -> None:
        """act(track) on the face under the cursor, or say how to pick one."""
        track = self.face_under_cursor(key, what)
        if track is not None:
            act(track)

    def face_under_cursor(self, key: str, what: str) -> int | None:
        """The face under the mouse cursor, or None after saying how to pick one."""
        track = self.face_at(self.cursor())
        if track is None:
            self.say(f"Point at a face, then press {key}: {what}")
        return track

    def pressed(self, pos: QPointF) -> None:
        """A press on a point while the clip plays stops it there: the drag to come corrects the
        frame it was pressed on, however long the mouse rests before moving."""
        if self.point_near(pos) is not None:
            self.timeline.pause()

    # --- changing -----------------------------------------------------------------------------
    def move_point(self, track: int, point: int, xy: np.ndarray, finished: bool) -> None:
        """A point dragged; when the drag ends, the face's other points follow (assisted
        correction from the points the frame had before its first drag) and the frame becomes a
        keyframe whose correction the frames around it follow: one undo step."""
        key = (track, self.frame)
        if key not in self._editing:  # the points placed before (on disk too) stay where they are
            shown = self.doc.faces_at(self.frame)[track].copy()
            self._editing[key] = (shown, {k: shown[k] for k in self.doc.placed_at(track, self.frame)})
        start, placed = self._editing[key]
        placed[point] = np.asarray(xy, dtype=np.float64)
        pts = start.copy() if self.corrector is None else self.corrector.update(start, placed)
        for k, p in placed.items():
            pts[k] = p
        if not finished:  # drawn only: the clip changes when the drag ends
            self.timeline.pause()  # a drag while the clip plays corrects the frame it began on
            self.points.preview({track: pts})
            return
        self.points.preview({})
        self._push(track, f"move point {point + 1} of face {track}",
                   lambda: self.doc.correct(track, self.frame, pts, set(placed)), keep_drags=True)
        self.corrected(track, self.frame)

    def approve_under_cursor(self) -> None:
        self.on_face_under_cursor("A", "it is approved on this frame", self.approve_face)

    def approve_shot_under_cursor(self) -> None:
        self.on_face_under_cursor("Shift+A", "it is approved on every frame of this shot", self.approve_shot)

    def approve_shot(self, track: int) -> None:
        """The face checked through the shot: approved on every frame of it tracking has reached
        (each a keyframe); where it already was on all of them, the approvals taken back."""
        done: list[int] = []
        self._push(track, f"approve face {track} through the shot",
                   lambda: done.extend(self.doc.approve_shot(track, self.frame)))
        self.say(f"Face {track} approved on frames {done[0] + 1}-{done[-1] + 1} (this shot)" if done else
                 f"Face {track}'s approvals in this shot taken back")

    def delete_under_cursor(self) -> None:
        self.on_face_under_cursor("Delete", "it goes from this frame on", self.delete_face)

    def hide_under_cursor(self) -> None:
        self.on_face_under_cursor("Shift+Delete", "it goes from this frame only", self.hide_face)

    def hide_face(self, track: int) -> None:
        """The face is not one (or not the one) on this frame alone: removed here, one undo step."""
        self._push(track, f"remove face {track}", lambda: self.doc.hide(track, self.frame))
        self.say(f"Face {track} removed from frame {self.frame + 1} only (Ctrl+Z brings it back)")

    def approve_face(self, track: int) -> None:
        """The face checked on this frame: approved, a keyframe that the frames around it follow;
        on an approved face, the approval taken back."""
        on = self.doc.is_approved(track, self.frame)
        self._push(track, f"{'take back the approval of' if on else 'approve'} face {track}",
                   lambda: self.doc.approve(track, self.frame))
        self.say(f"Face {track}'s approval on frame {self.frame + 1} taken back" if on else
                 f"Face {track} approved on frame {self.frame + 1}")

    def delete_face(self, track: int) -> None:
        """The face is not one (or no longer the one) from this frame on: hidden to the end of the
        clip, the tracker still following it so that it does not come back as a new face."""
        self._push(track, f"delete face {track} (and the frames after)", lambda: self.doc.delete(track, self.frame))
        self.say(f"Face {track} deleted from frame {self.frame + 1} on (Ctrl+Z brings it back)")

    def add_face_in_box(self, box: np.ndarray) -> bool:
        """A box a person drew around a face the tracker missed, on this frame: the face is looked
        for in it (in the tracker's thread; face_found() adds it). Whether it was asked for."""
        box = np.asarray(box, dtype=np.float64)
        if self.frame >= self.doc.tracked:
            self.say(f"Frame {self.frame + 1} is not tracked yet: add the face once tracking has reached it")
            return False
        if min(box[2] - box[0], box[3] - box[1]) < MIN_BOX_PX:
            self.say("That box is too small for a face: press B and drag a box around the face")
            return False
        shown = {t: box_of_points(p) for t, p in self.doc.faces_at(self.frame).items()}
        same = [t for t, b in shown.items() if box_iou(box, b) >= SAME_BOX_IOU]
        if same:
            self.say(f"That is face {same[0]} already: drag its points to correct it")
            return False
        self.find_face(self.frame, box, shown)
        self.say(f"Looking for the face in the box on frame {self.frame + 1}…")
        return True

    def face_found(self, track: int, frame: int, points: np.ndarray, unsure: bool = False) -> None:
        """The face in a person's box, found: a new face from that frame on, one undo step
        (undone, it is hidden from that frame on, as a deleted face). unsure: the model's two
        mirror passes disagree (a box on something that is not a face, or a hard one): said."""
        self._push(track, f"add face {track}", lambda: self.doc.add_face(track, frame, points),
                   before=self.doc.absent(frame), frame=frame, keep_drags=True)
        self.say(f"Face {track} added on frame {frame + 1}, " + (
            "but the model is unsure of it: check it is a face (Ctrl+Z takes it back)" if unsure else
            "and tracked on from there"))

    def _push(self, track: int, text: str, change: Callable[[], object], before=None, frame: int | None = None,
              keep_drags: bool = False) -> None:
        """The change made and pushed as one undo step. An approval, a deletion or a removal ends
        the drags under way (keep_drags: a drag, a face added): the next drag starts from the points
        as they are then."""
        frame = self.frame if frame is None else frame
        if not keep_drags:
            self._editing.clear()
        before = self.doc.face_state(track) if before is None else before
        change()
        self.stack.push(ClipFaceEdit(self.doc, track, frame, before, self.doc.face_state(track),
                                     f"{text} on frame {frame + 1}", restored=self._restored))

    def _restored(self, frame: int, text: str, undone: bool) -> None:
        """After an undo or a redo: the frame it changed is shown, and what happened said."""
        self._editing.clear()
        self.timeline.set_frame(frame)
        self.say(f"{'Undone' if undone else 'Redone'}: {text}")
