"""The clip window's views of its document (drr_studio.clip_document): the faces' points on the
frame shown, and the autosave. Each is given the document and the timeline it follows and
subscribes itself (the document's `frames_changed`, the timeline's `frameChanged`); nothing here
changes the document."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from model.layout import layout_for
from model.predict import FaceResult

from ..clip_document import ClipDocument
from ..document import AUTOSAVE_MS
from .overlays import ARROW_COLOR, S0_COLOR, SHAT_COLOR
from .research_layer import ResearchLayer
from .timeline import Timeline

POINT_COLOURS = {True: (40, 200, 90), False: (255, 170, 40)}  # keyframe, model's points
APPROVED_COLOUR = (70, 150, 255)  # a face a person approved on this frame


class ClipPoints(pg.ScatterPlotItem):
    """Every face's points on the frame the timeline shows: orange the tracker's, green a
    keyframe's, blue an approved face's, each face's number above it (the number messages and
    the files use); a face being dragged is drawn as `preview` says."""

    def __init__(self, doc: ClipDocument, timeline: Timeline) -> None:
        super().__init__(size=7, pen=pg.mkPen(20, 20, 20))
        self.setZValue(20)  # over the model's trace (research_layer: heatmap 5, overlays 11-16)
        self.doc, self.timeline = doc, timeline
        self._moving: dict[int, np.ndarray] = {}
        self.labels: dict[int, pg.TextItem] = {}  # track -> its number, drawn above its face
        doc.frames_changed.connect(self._frames_changed)
        timeline.frameChanged.connect(self._frame_shown)

    def preview(self, moving: dict[int, np.ndarray]) -> None:
        """Faces drawn where a drag under way has them (track -> points); {} ends it."""
        self._moving = moving
        self.redraw()

    def redraw(self) -> None:
        frame = self.timeline.frame
        spots = []
        faces = {**self.doc.faces_at(frame), **self._moving}
        for track, pts in faces.items():
            dragged = track in self._moving
            colour = (APPROVED_COLOUR if self.doc.is_approved(track, frame) and not dragged
                      else POINT_COLOURS[self.doc.is_key(track, frame) or dragged])
            brush = pg.mkBrush(*colour)  # one per face: a drag redraws on every mouse move
            spots += [{"pos": (float(x), float(y)), "brush": brush, "data": (track, k)}
                      for k, (x, y) in enumerate(pts)]
            self._label(track, pts, colour)
        for track in set(self.labels) - set(faces):
            gone = self.labels.pop(track)
            if gone.scene() is not None:
                gone.scene().removeItem(gone)
        self.setData(spots)

    def _label(self, track: int, pts: np.ndarray, colour: tuple[int, int, int]) -> None:
        label = self.labels.get(track)
        if label is None:
            label = self.labels[track] = pg.TextItem(str(track), anchor=(0, 1), fill=pg.mkBrush(20, 20, 20, 170))
            label.setParentItem(self)
        label.setColor(colour)
        label.setPos(float(pts[:, 0].min()), float(pts[:, 1].min()))

    def _frames_changed(self, frames: frozenset) -> None:
        if self.timeline.frame in frames:
            self.redraw()

    def _frame_shown(self, frame: int) -> None:
        self._moving = {}
        self.redraw()


class ClipTrace:
    """What the network did for one face on the frame shown (View -> The model's trace, T):
    conv8's heatmaps (their maximum), their arg-max shape Ŝ, the candidate chosen as S0 and the
    way from S0 to the final points; gone when the frame changes."""

    def __init__(self, view: pg.ViewBox, timeline: Timeline) -> None:
        self.layer = ResearchLayer(view, lambda: self._layout)
        self._layout = None
        self.shown: tuple[int, int] | None = None  # (track, frame) whose trace is drawn
        timeline.frameChanged.connect(lambda _: self.clear())

    def show(self, track: int, frame: int, result: FaceResult, input_size: int) -> str:
        """Draw it (input_size: the network's crop side); the sentence that says what is drawn."""
        self.clear()
        self._layout = layout_for(len(result.points))
        maps = np.asarray(result.heatmaps)
        self.layer.set_heatmap(maps.max(0), result.crop_to_image, input_size / maps.shape[-1])
        self.layer.add_shape(result.s0, S0_COLOR, size=4, style=Qt.PenStyle.DashLine)
        self.layer.add_shape(result.s_hat, SHAT_COLOR, symbol="x", size=9, lines=False)
        self.layer.add_arrows(result.s0, result.points, ARROW_COLOR)
        self.shown = (track, frame)
        gap = "" if result.uncertainty is None else f", mirror passes {result.uncertainty:.1f}% apart"
        return (f"Face {track}, frame {frame + 1}: S0 = candidate {result.candidate_index + 1} of "
                f"{len(result.candidates)} (green), nearest conv8's arg-max (red x); arrows S0 -> "
                f"S{len(result.steps) - 1}{gap}")

    def clear(self) -> None:
        self.layer.clear()
        self.layer.set_heatmap(None)
        self.shown = None


class ClipAutosave(QObject):
    """Writes what changed within AUTOSAVE_MS of a change (not restarted by later ones, so that
    tracking, which changes frames all the time, cannot postpone a correction's save), in a
    writer thread: a correction in a long shot moves every frame after it, and 900 frames took
    0.8 s to write, too long to hold the event loop. One thread, so writes land in order."""

    failed = Signal(str)  # what went wrong, naming the folder (in the window's thread)
    _write_failed = Signal(object, str)  # from the writer thread: queued to the window's

    def __init__(self, doc: ClipDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.timer = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self.timer.timeout.connect(self.write_changes)
        self._writer = self._new_writer()
        self._write_failed.connect(self._give_back)
        doc.frames_changed.connect(self._frames_changed)

    def _frames_changed(self, _frames: frozenset) -> None:
        if not self.timer.isActive():
            self.timer.start()

    def write_changes(self) -> None:
        """The frames changed since the last save, taken now and written in the writer thread."""
        frames, write = self.doc.take_changes()
        folder = self.doc.folder
        report: Callable[[list, str], None] = self._write_failed.emit

        def run() -> None:
            try:
                write()
            except OSError as exc:  # a full or read-only disk: said, written again at the next change
                report(frames, f"{folder}: not saved ({exc.strerror or exc})")

        self._writer.submit(run)

    def flush(self) -> None:
        """Wait for the writes under way (before a full save, so that none lands after it)."""
        self._writer.shutdown(wait=True)
        self._writer = self._new_writer()

    def stop(self) -> None:
        self.timer.stop()
        self._writer.shutdown(wait=True)

    @staticmethod
    def _new_writer() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-autosave")

    def _give_back(self, frames: list, message: str) -> None:
        self.doc.unsaved(frames)
        self.failed.emit(message)
