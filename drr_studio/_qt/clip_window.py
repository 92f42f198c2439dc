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

import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QThread, QTimer, Signal
from PySide6.QtGui import QAction, QCursor, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from model.correction import CorrectionModel, for_checkpoint
from model.predict import DEFAULT_CHECKPOINT
from model.video import VIDEO_SUFFIXES, VideoError, VideoReader

from ..clip_document import ClipDocument
from ..document import AUTOSAVE_MS
from .timeline import Timeline

if TYPE_CHECKING:
    from model.predict import Predictor

GRAB_PX = 10  # a press this close to a point (screen pixels) drags it
POINT_COLOURS = {True: (40, 200, 90), False: (255, 170, 40)}  # keyframe, model's points
APPROVED_COLOUR = (70, 150, 255)  # a face a person approved on this frame
RETRACK_CHUNK = 8  # re-tracked frames handed over at a time
RETRACK_DEFAULT = False  # off: bench.video counted more corrections per clip with it (docs/video.md)


@dataclass
class RetrackJob:
    """Track a face again after a correction: from its keyframe's points over `span`."""

    track: int
    frame: int
    key: np.ndarray  # the keyframe's points as the document holds them (identity is checked)
    span: range


class ClipTracker(QThread):
    """Tracks the clip's frames in order, from `start`, and hands each frame's faces over; then
    stays to re-track after corrections (`request`), which go before the next frame."""

    tracked = Signal(int, object, bool)  # frame, {track: points}, cut
    retracked = Signal(object, object, object)  # RetrackJob, base, {frame: points} (a chunk)
    done = Signal()  # every frame from `start` tracked
    failed = Signal(str)

    def __init__(self, video: Path, checkpoint: Path | None, start: int = 0,
                 resume: dict[int, np.ndarray] | None = None, next_track: int = 1) -> None:
        super().__init__()
        self.video, self.checkpoint, self.start_frame = video, checkpoint, start
        # a clip reopened before its tracking ended: frame start - 1's faces, whose identities go on
        self.resume, self.next_track = resume or {}, next_track
        self._stop = False
        self._jobs: queue.Queue[RetrackJob] = queue.Queue()

    def request(self, job: RetrackJob) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        self._stop = True
        self.wait(60000)

    def run(self) -> None:
        from model.checkpoint import CheckpointError
        from model.predict import Predictor
        from model.tracking import Tracker

        try:
            predictor = Predictor.load(self.checkpoint)
            with VideoReader(self.video) as reader:  # its own reader: a capture is not thread-safe
                tracker = Tracker(predictor, fps=reader.fps)
                if self.start_frame > 0:
                    tracker.resume(reader.frame(self.start_frame - 1), self.resume, self.start_frame, self.next_track)
                for i in range(self.start_frame, len(reader)):
                    self._serve(predictor, reader, block=False)
                    if self._stop:
                        return
                    frame = tracker.step(reader.frame(i))
                    self.tracked.emit(i, {f.track: f.points for f in frame.faces}, frame.cut)
                self.done.emit()
                while not self._stop:
                    self._serve(predictor, reader, block=True)
        except (VideoError, CheckpointError, OSError) as exc:
            self.failed.emit(str(exc))

    def _serve(self, predictor: Predictor, reader: VideoReader, block: bool) -> None:
        """The re-tracking jobs waiting (with block, waits a moment for one)."""
        from model.tracking import Retrack

        while not self._stop:
            try:
                job = self._jobs.get(timeout=0.05) if block else self._jobs.get_nowait()
            except queue.Empty:
                return
            retrack = Retrack(predictor, reader.frame(job.frame), job.key, fps=reader.fps)
            chunk: dict[int, np.ndarray] = {}
            for f in job.span:
                points = None if self._stop else retrack.step(reader.frame(f))
                if points is None:
                    break
                chunk[f] = points
                if len(chunk) == RETRACK_CHUNK:
                    self.retracked.emit(job, retrack.base, chunk)
                    chunk = {}
            self.retracked.emit(job, retrack.base, chunk)


class PointView(pg.ViewBox):
    """The picture's view box: a drag that starts on a point moves the point; elsewhere it pans."""

    def __init__(self, window: ClipWindow) -> None:
        super().__init__(invertY=True, lockAspect=True)
        self.window = window
        self._grab: tuple[int, int] | None = None

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 - Qt's name
        if ev.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        if ev.isStart():
            self._grab = self.window.point_near(self.mapSceneToView(ev.buttonDownScenePos()))
        if self._grab is None:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        pos = self.mapSceneToView(ev.scenePos())
        self.window.move_point(*self._grab, np.array([pos.x(), pos.y()]), ev.isFinish())
        if ev.isFinish():
            self._grab = None


class ClipWindow(QMainWindow):
    save_failed = Signal(object, str)  # the autosave's frames and what went wrong (from its thread)

    def __init__(self, video: Path, checkpoint: Path | None = None, output: Path | None = None,
                 parent: QWidget | None = None) -> None:
        reader = VideoReader(video)  # first: a clip that cannot be read leaves no half-made window
        super().__init__(parent)  # a window of its own, kept alive by its parent (the main window)
        self.reader = reader
        folder = (Path(output) if output else Path(video).parent) / Path(video).stem
        self.doc, problems = ClipDocument.open(Path(video), len(self.reader), self.reader.fps, folder)
        self.checkpoint = checkpoint
        self.corrector = self._corrector(checkpoint)
        self.setWindowTitle(f"{Path(video).name} - DRR Studio")
        self._editing: dict[tuple[int, int], tuple[np.ndarray, dict[int, np.ndarray]]] = {}
        self.retrack = RETRACK_DEFAULT  # track the frames after a correction again from it
        # on disk within AUTOSAVE_MS of a change (not restarted by later ones, so tracking that
        # delivers frames all the time cannot postpone a correction's save)
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self._autosave.timeout.connect(self._save_changes)
        self._writer = self._new_writer()
        self.save_failed.connect(self._save_failed)  # from the writer thread: queued to this one
        self._build()
        self.show_frame(0)
        if problems:
            self.statusBar().showMessage("; ".join(problems), 15000)
        self.tracker: ClipTracker | None = None
        self.tracking_ended = self.doc.tracked >= self.doc.frame_count
        if not self.tracking_ended:
            self._start_tracker().done.connect(self._tracking_done)

    def _start_tracker(self) -> ClipTracker:
        """The background thread: tracks what is not tracked yet, then serves re-tracking."""
        if self.tracker is None:
            start = self.doc.tracked
            resume = self.doc.tracker_faces(start - 1) if start > 0 else {}  # deleted faces too: kept hidden
            self.tracker = ClipTracker(self.doc.video, self.checkpoint, start, resume, self.doc.next_track())
            self.tracker.tracked.connect(self._tracked)
            self.tracker.retracked.connect(self._retracked)
            self.tracker.failed.connect(lambda msg: self.statusBar().showMessage(msg))
            self.tracker.start()
        return self.tracker

    @staticmethod
    def _corrector(checkpoint: Path | None) -> CorrectionModel | None:
        stats, _ = for_checkpoint(checkpoint or DEFAULT_CHECKPOINT, 68)
        return stats if stats.active else None

    def _build(self) -> None:
        self.view = PointView(self)
        self.graphics = pg.GraphicsView()
        self.graphics.setCentralItem(self.view)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.scatter = pg.ScatterPlotItem(size=7, pen=pg.mkPen(20, 20, 20))
        self.view.addItem(self.scatter)
        self.timeline = Timeline(self.doc.frame_count, self.doc.fps)
        self.timeline.frameChanged.connect(self.show_frame)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.timeline)
        self.setCentralWidget(central)
        menu = self.menuBar().addMenu("&File")
        for text, slot, key in (("Save", self.save, "Ctrl+S"), ("Undo the last correction or deletion", self.undo,
                                 "Ctrl+Z"), ("Delete the face under the cursor from this frame on",
                                             self.delete_face_under_cursor, "Delete"),
                                ("Approve the face under the cursor on this frame (again: take it back)",
                                 self.approve_face_under_cursor, "A"), ("Close", self.close, "Ctrl+W")):
            act = QAction(text, self)
            act.setShortcut(QKeySequence(key))
            act.triggered.connect(slot)
            menu.addAction(act)
        again = QAction("Re-track after a correction", self, checkable=True, checked=self.retrack)
        again.toggled.connect(lambda on: setattr(self, "retrack", on))
        menu.insertAction(menu.actions()[-1], again)
        self.statusBar().showMessage("Drag a point to correct it; A approves the face under the cursor, Delete removes "
                                     "it from this frame on; ,/. or arrows step, [ ] keyframes, Space plays")
        self.resize(960, 720)
        self._update_marks()

    # --- showing ------------------------------------------------------------------------------
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
        self._draw_points()

    def _draw_points(self, moving: dict[int, np.ndarray] | None = None) -> None:
        spots = []
        for track, pts in {**self.doc.faces_at(self.frame), **(moving or {})}.items():
            dragged = bool(moving and track in moving)
            colour = (APPROVED_COLOUR if self.doc.is_approved(track, self.frame) and not dragged
                      else POINT_COLOURS[self.doc.is_key(track, self.frame) or dragged])
            spots += [{"pos": (float(x), float(y)), "brush": pg.mkBrush(*colour), "data": (track, k)}
                      for k, (x, y) in enumerate(pts)]
        self.scatter.setData(spots)

    def _update_marks(self) -> None:
        self.timeline.set_marks(self.doc.keyframes(), sorted(self.doc.cuts), self.doc.tracked)

    # --- tracking -----------------------------------------------------------------------------
    def _changed(self) -> None:
        if not self._autosave.isActive():
            self._autosave.start()

    def _save_changes(self) -> None:
        """The frames that changed, written in the writer thread (a correction in a long shot
        moves every frame after it: 900 frames took 0.8 s to write, too long to hold the event
        loop). One thread, so the writes land in the order they were taken."""
        frames, write = self.doc.take_changes()
        folder = self.doc.folder

        def run() -> None:
            try:
                write()
            except OSError as exc:  # a full or read-only disk: said, written again at the next change
                self.save_failed.emit(frames, f"{folder}: not saved ({exc.strerror or exc})")

        self._writer.submit(run)

    def _await_autosave(self) -> None:
        self._writer.shutdown(wait=True)
        self._writer = self._new_writer()

    @staticmethod
    def _new_writer() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-autosave")

    def _save_failed(self, frames: list, message: str) -> None:
        self.doc.unsaved(frames)
        self.statusBar().showMessage(message)

    def _tracked(self, frame: int, faces: dict, cut: bool) -> None:
        self.doc.set_model(frame, faces, cut)
        self._changed()
        if frame == self.frame:
            self._draw_points()
        if frame % 10 == 0 or frame == self.doc.frame_count - 1:
            self._update_marks()

    def _retracked(self, job: RetrackJob, base: np.ndarray, faces: dict) -> None:
        taken = self.doc.set_retracked(job.track, job.frame, job.key, base, faces)
        self._changed()
        if self.frame in taken:
            self._draw_points()

    def _tracking_done(self) -> None:
        self.tracking_ended = True
        self._update_marks()
        if self.doc.tracked == self.doc.frame_count:
            self.save()

    # --- correcting ---------------------------------------------------------------------------
    def point_near(self, pos) -> tuple[int, int] | None:
        """(track, point) of the point nearest to a view position, within GRAB_PX on screen."""
        best, best_d = None, float("inf")
        scale = self.view.viewPixelSize()[0] or 1.0
        for track, pts in self.doc.faces_at(self.frame).items():
            d = np.hypot(pts[:, 0] - pos.x(), pts[:, 1] - pos.y())
            k = int(np.argmin(d))
            if d[k] < best_d:
                best, best_d = (track, k), float(d[k])
        return best if best is not None and best_d / scale <= GRAB_PX else None

    def move_point(self, track: int, point: int, xy: np.ndarray, finished: bool) -> None:
        """A point dragged; when the drag ends, the face's other points follow (assisted
        correction from the points the frame had before its first edit) and the frame becomes
        a keyframe whose correction the frames around it follow."""
        key = (track, self.frame)
        start, placed = self._editing.setdefault(key, (self.doc.faces_at(self.frame)[track].copy(), {}))
        placed[point] = np.asarray(xy, dtype=np.float64)
        pts = start.copy() if self.corrector is None else self.corrector.update(start, placed)
        for k, p in placed.items():
            pts[k] = p
        if not finished:  # drawn only: the clip changes when the drag ends
            self._draw_points({track: pts})
            return
        self.doc.correct(track, self.frame, pts)
        self._changed()
        if self.retrack:
            span = self.doc.retrack_span(track, self.frame)
            if len(span):
                self._start_tracker().request(RetrackJob(track, self.frame, self.doc.keys[track][self.frame], span))
        self._draw_points()
        self._update_marks()

    def face_at(self, pos) -> int | None:
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

    def face_under_cursor(self, key: str, what: str) -> int | None:
        """The face under the mouse cursor, or None after saying how to pick one."""
        pos = self.view.mapSceneToView(self.graphics.mapToScene(self.graphics.mapFromGlobal(QCursor.pos())))
        track = self.face_at(pos)
        if track is None:
            self.statusBar().showMessage(f"Point at a face, then press {key}: {what}", 5000)
        return track

    def delete_face_under_cursor(self) -> None:
        track = self.face_under_cursor("Delete", "it goes from this frame on")
        if track is not None:
            self.delete_face(track)

    def approve_face_under_cursor(self) -> None:
        track = self.face_under_cursor("A", "it is approved on this frame")
        if track is not None:
            self.approve_face(track)

    def approve_face(self, track: int) -> None:
        """The face checked on this frame: approved, a keyframe that the frames around it follow."""
        on = self.doc.approve(track, self.frame)
        self._edited()
        self.statusBar().showMessage(f"Face {track} approved on frame {self.frame + 1}" if on else
                                     f"Face {track}'s approval on frame {self.frame + 1} taken back", 5000)

    def delete_face(self, track: int) -> None:
        """The face is not one (or no longer the one) from this frame on: hidden to the end of the
        clip, the tracker still following it so that it does not come back as a new face."""
        self.doc.delete(track, self.frame)
        self._edited()
        self.statusBar().showMessage(f"Face {track} deleted from frame {self.frame + 1} on (Ctrl+Z brings it back)",
                                     5000)

    def undo(self) -> None:
        if self.doc.undo() is None:
            self.statusBar().showMessage("nothing to undo", 3000)
            return
        self._edited()

    def _edited(self) -> None:
        """After an approval, a deletion or an undo: the next drag starts from the points as they
        are now; saved, drawn and marked on the timeline."""
        self._editing.clear()
        self._changed()
        self._draw_points()
        self._update_marks()

    # --- files --------------------------------------------------------------------------------
    def save(self) -> bool:
        self._await_autosave()  # an autosave under way lands first, not after this
        try:
            self.doc.save()
        except OSError as exc:
            QMessageBox.warning(self, "Not saved", f"{self.doc.folder}: cannot save ({exc.strerror or exc})")
            return False
        self.statusBar().showMessage(f"saved to {self.doc.folder}", 5000)
        return True

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        shift = bool(event.modifiers() & pg.QtCore.Qt.KeyboardModifier.ShiftModifier)
        if not self.timeline.handle_key(event.key(), shift):
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.tracker is not None:
            self.tracker.stop()
        self._autosave.stop()
        if self.doc.dirty and self.doc.points:
            self.save()
        self._writer.shutdown(wait=True)
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
