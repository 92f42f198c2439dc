"""A clip's window: the frame, its faces' points, and the timeline under them.

`drr-studio clip.mp4` or File -> Open video... opens it. The faces are tracked in a background
thread (model.tracking, the first frame shown at once, the rest as they come); drag a point to
correct it: the face's other points follow (assisted correction, as on pictures), the frame
becomes a keyframe (green on the timeline) and the frames around it follow it
(drr_studio.clip_document); with File -> Re-track after a correction (off by default: bench.video
counted more corrections with it) the frames after it are also tracked again from it, in the same
thread. Ctrl+S saves the clip folder (300-VW's layout beside the clip, or
under --output), as does closing the window and the end of tracking.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QAction, QCursor, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QGraphicsRectItem,
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from model.correction import CorrectionModel, for_checkpoint
from model.predict import DEFAULT_CHECKPOINT
from model.video import VIDEO_SUFFIXES, VideoError, VideoReader

from ..clip_document import ClipDocument
from .clip_editing import ClipEditing
from .clip_tracker import AddFaceJob, ClipTracker, RetrackJob, TraceJob
from .clip_views import POINT_COLOURS, ClipAutosave, ClipPoints, ClipTrace
from .timeline import Timeline

RETRACK_DEFAULT = False  # off: bench.video counted more corrections per clip with it (docs/video.md)
HINT = ("Drag a point · A approve (Shift+A: the shot) · Del delete from here (Shift+Del: this frame) · "
        "B add a face · ,/. step · [ ] keyframes · Space play · F fit")


class PointView(pg.ViewBox):
    """The picture's view box: a drag that starts on a point moves the point; elsewhere it pans;
    in box mode (B) a drag draws a box around a face the tracker missed."""

    def __init__(self) -> None:
        super().__init__(invertY=True, lockAspect=True)
        self.setMenuEnabled(False)  # pyqtgraph's plot menu (axes, export) has nothing for a frame
        self.editing: ClipEditing | None = None
        self.box_mode = False
        self.box_drawn: Callable[[np.ndarray], None] | None = None  # [x0, y0, x1, y1] when a box is drawn
        self._grab: tuple[int, int] | None = None
        self._rubber: QGraphicsRectItem | None = None

    def mousePressEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        if ev.button() == Qt.MouseButton.LeftButton and self.editing is not None and not self.box_mode:
            self.editing.pressed(self.mapSceneToView(ev.scenePos()))
        super().mousePressEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 - Qt's name
        if ev.button() != pg.QtCore.Qt.MouseButton.LeftButton or self.editing is None:
            return super().mouseDragEvent(ev, axis)
        if self.box_mode:
            ev.accept()
            self._draw_box(QRectF(self.mapSceneToView(ev.buttonDownScenePos()),
                                  self.mapSceneToView(ev.scenePos())).normalized(), ev.isFinish())
            return None
        if ev.isStart():
            self._grab = self.editing.point_near(self.mapSceneToView(ev.buttonDownScenePos()))
        if self._grab is None:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        pos = self.mapSceneToView(ev.scenePos())
        self.editing.move_point(*self._grab, np.array([pos.x(), pos.y()]), ev.isFinish())
        if ev.isFinish():
            self._grab = None
        return None

    def _draw_box(self, rect: QRectF, finished: bool) -> None:
        if self._rubber is None:
            self._rubber = QGraphicsRectItem()
            self._rubber.setPen(pg.mkPen(POINT_COLOURS[True], width=2, style=Qt.PenStyle.DashLine, cosmetic=True))
            self.addItem(self._rubber)
        self._rubber.setRect(rect)
        if finished:
            self.removeItem(self._rubber)
            self._rubber = None
            if self.box_drawn is not None:
                self.box_drawn(np.array([rect.left(), rect.top(), rect.right(), rect.bottom()]))


class ClipWindow(QMainWindow):
    """Builds the clip's views and wires them to its document, its tracker and its edits."""

    def __init__(self, video: Path, checkpoint: Path | None = None, output: Path | None = None,
                 parent: QWidget | None = None) -> None:
        reader = VideoReader(video)  # first: a clip that cannot be read leaves no half-made window
        super().__init__(parent)  # a window of its own, kept alive by its parent (the main window)
        self.reader = reader
        folder = (Path(output) if output else Path(video).parent) / Path(video).stem
        self.doc, problems = ClipDocument.open(Path(video), len(self.reader), self.reader.fps, folder)
        self.checkpoint = checkpoint
        self.retrack = RETRACK_DEFAULT  # track the frames after a correction again from it
        self.setWindowTitle(f"{Path(video).name} - DRR Studio")
        self.autosave = ClipAutosave(self.doc, self)
        self.autosave.failed.connect(self.statusBar().showMessage)
        self._build()
        self.show_frame(0)
        if problems:
            self.statusBar().showMessage("; ".join(problems), 15000)
        self.tracker: ClipTracker | None = None
        self.tracking_ended = self.doc.tracked >= self.doc.frame_count
        if not self.tracking_ended:
            self._start_tracker().done.connect(self._tracking_done)

    def _build(self) -> None:
        self.view = PointView()
        self.graphics = pg.GraphicsView()
        self.graphics.setCentralItem(self.view)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.timeline = Timeline(self.doc.frame_count, self.doc.fps)
        self.timeline.follow(self.doc)
        self.timeline.frameChanged.connect(self.show_frame)
        self.points = ClipPoints(self.doc, self.timeline)
        self.view.addItem(self.points)
        self.trace = ClipTrace(self.view, self.timeline)
        self.undo_stack = QUndoStack(self)
        self.editing = ClipEditing(self.doc, self.timeline, self.points, self._corrector(self.checkpoint),
                                   self.undo_stack, lambda: self.view.viewPixelSize()[0], self._cursor_in_view,
                                   lambda text: self.statusBar().showMessage(text, 5000), self._corrected,
                                   lambda frame, box, shown: self._start_tracker().request(AddFaceJob(frame, box, shown)))
        self.view.editing = self.editing
        self.view.box_drawn = self._box_drawn
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.timeline)
        self.setCentralWidget(central)
        self._menus()
        # the keys, shown whenever no message is (a message hides it for its time)
        self.hint = QLabel(HINT)
        self.hint.setToolTip(HINT)
        self.hint.setMinimumWidth(100)
        self.statusBar().addWidget(self.hint, 1)
        self.timeline.message.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.resize(960, 720)

    def _menus(self) -> None:
        self.file_menu = self.menuBar().addMenu("&File")
        self._action(self.file_menu, "Save", self.save, "Ctrl+S")
        again = QAction("Re-track after a correction", self, checkable=True, checked=self.retrack)
        again.toggled.connect(lambda on: setattr(self, "retrack", on))
        self.file_menu.addAction(again)
        self._action(self.file_menu, "Close", self.close, "Ctrl+W")
        self._action(self.file_menu, "Quit DRR Studio", QApplication.closeAllWindows, "Ctrl+Q")
        edit = self.menuBar().addMenu("&Edit")
        for act, keys in ((self.undo_stack.createUndoAction(self, "Undo"), ["Ctrl+Z"]),
                          (self.undo_stack.createRedoAction(self, "Redo"), ["Ctrl+Shift+Z", "Ctrl+Y"])):
            act.setShortcuts(keys)
            edit.addAction(act)
        self._action(edit, "Approve the face under the cursor on this frame (again: take it back)",
                     self.editing.approve_under_cursor, "A")
        self._action(edit, "Approve the face under the cursor on every frame of this shot (again: take them back)",
                     self.editing.approve_shot_under_cursor, "Shift+A")
        self._action(edit, "Delete the face under the cursor from this frame on", self.editing.delete_under_cursor,
                     "Delete")
        self._action(edit, "Remove the face under the cursor from this frame only", self.editing.hide_under_cursor,
                     "Shift+Delete")
        self.add_face_action = self._action(edit, "Add a face the tracker missed: drag a box around it", None, "B")
        self.add_face_action.setCheckable(True)
        self.add_face_action.toggled.connect(self._set_box_mode)
        view = self.menuBar().addMenu("&View")
        self._action(view, "Fit frame", lambda: self.view.autoRange(padding=0.02), "F")
        self._action(view, "The model's trace of the face under the cursor (heatmaps, S0, the steps; again: hide it)",
                     self.trace_face_under_cursor, "T")

    def _action(self, menu, text: str, slot, key: str) -> QAction:
        act = QAction(text, self)
        act.setShortcut(QKeySequence(key))
        if slot is not None:
            act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _set_box_mode(self, on: bool) -> None:
        self.view.box_mode = on
        self.graphics.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        if on:
            self.statusBar().showMessage("Drag a box around the face the tracker missed (Esc: no box)")

    def _box_drawn(self, box: np.ndarray) -> None:
        self.add_face_action.setChecked(False)
        self.editing.add_face_in_box(box)

    def _cursor_in_view(self):
        return self.view.mapSceneToView(self.graphics.mapToScene(self.graphics.mapFromGlobal(QCursor.pos())))

    @staticmethod
    def _corrector(checkpoint: Path | None) -> CorrectionModel | None:
        stats, _ = for_checkpoint(checkpoint or DEFAULT_CHECKPOINT, 68)
        return stats if stats.active else None

    @property
    def frame(self) -> int:
        return self.timeline.frame

    def show_frame(self, frame: int) -> None:
        try:
            picture = self.reader.frame(frame)
        except VideoError as exc:
            self.statusBar().showMessage(str(exc))
            return
        first = self.image.image is None
        self.image.setImage(picture, autoLevels=False, levels=(0, 255))
        if first:
            self.view.autoRange(padding=0.02)
            self.points.redraw()

    # --- tracking -----------------------------------------------------------------------------
    def _start_tracker(self) -> ClipTracker:
        """The background thread: tracks what is not tracked yet, then serves re-tracking."""
        if self.tracker is None:
            start = self.doc.tracked
            resume = self.doc.tracker_faces(start - 1) if start > 0 else {}  # deleted faces too: kept hidden
            self.tracker = ClipTracker(self.doc.video, self.checkpoint, start, resume, self.doc.next_track())
            self.tracker.tracked.connect(self.doc.set_model)
            self.tracker.retracked.connect(self._retracked)
            self.tracker.added.connect(lambda job, track, points, unsure:
                                       self.editing.face_found(track, job.frame, points, unsure))
            self.tracker.refused.connect(lambda job, why: self.statusBar().showMessage(why, 8000))
            self.tracker.traced.connect(self._traced)
            self.tracker.failed.connect(lambda msg: self.statusBar().showMessage(msg))
            self.tracker.start()
        return self.tracker

    def trace_face_under_cursor(self) -> None:
        """View -> The model's trace (T): the network's trace for the face under the cursor on this
        frame, computed in the tracker's thread; T again (or another frame) hides it."""
        if self.trace.shown is not None:
            self.trace.clear()
            self.statusBar().clearMessage()
            return
        self.editing.on_face_under_cursor("T", "the model's trace of it is shown", self.trace_face)

    def trace_face(self, track: int) -> None:
        self._start_tracker().request(TraceJob(self.frame, track, self.doc.faces_at(self.frame)[track]))
        self.statusBar().showMessage(f"Running the model on face {track}…")

    def _traced(self, job: TraceJob, result, input_size: int) -> None:
        if job.frame == self.frame:  # not drawn on another frame than its own
            self.statusBar().showMessage(self.trace.show(job.track, job.frame, result, input_size))

    def _corrected(self, track: int, frame: int) -> None:
        """After a correction, with File -> Re-track on: the frames after it tracked again from it."""
        span = self.doc.retrack_span(track, frame) if self.retrack else range(0)
        if len(span):
            self._start_tracker().request(RetrackJob(track, frame, self.doc.keys[track][frame], span))

    def _retracked(self, job: RetrackJob, base: np.ndarray, faces: dict) -> None:
        self.doc.set_retracked(job.track, job.frame, job.key, base, faces)

    def _tracking_done(self) -> None:
        self.tracking_ended = True
        if self.doc.tracked == self.doc.frame_count:
            self.save()

    # --- files --------------------------------------------------------------------------------
    def save(self) -> bool:
        self.autosave.flush()  # an autosave under way lands first, not after this
        try:
            self.doc.save()
        except OSError as exc:
            QMessageBox.warning(self, "Not saved", f"{self.doc.folder}: cannot save ({exc.strerror or exc})")
            return False
        self.statusBar().showMessage(f"Saved to {self.doc.folder}", 5000)
        return True

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        shift = bool(event.modifiers() & pg.QtCore.Qt.KeyboardModifier.ShiftModifier)
        if event.key() == Qt.Key.Key_Escape and self.add_face_action.isChecked():
            self.add_face_action.setChecked(False)
            self.statusBar().clearMessage()
        elif not self.timeline.handle_key(event.key(), shift):
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.tracker is not None:
            self.tracker.stop()
        self.autosave.stop()
        if self.doc.dirty and self.doc.points:
            self.save()
        self.timeline.timer.stop()
        self.reader.close()
        super().closeEvent(event)


def open_clip(video: Path, parent: QWidget | None = None, checkpoint: Path | None = None,
              output: Path | None = None) -> ClipWindow | None:
    """A clip's window, shown; None (and a message naming the file) when it cannot be read."""
    try:
        window = ClipWindow(Path(video), checkpoint, output, parent)
    except VideoError as exc:
        QMessageBox.warning(parent, "Cannot open the clip", str(exc))
        return None
    window.show()
    return window


def open_video_dialog(parent: QWidget) -> ClipWindow | None:
    """File -> Open video...: choose a clip and open its window."""
    patterns = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
    path, _ = QFileDialog.getOpenFileName(parent, "Open video", "", f"Videos ({patterns});;All files (*)")
    if not path:
        return None
    return open_clip(Path(path), parent, getattr(parent, "checkpoint", None), getattr(parent, "output_dir", None))
