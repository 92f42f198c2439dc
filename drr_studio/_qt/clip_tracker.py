"""The clip window's background thread: tracks the clip's frames in order (model.tracking), then
stays to track a face again after a correction (model.tracking.Retrack). Its own VideoReader: a
capture is not thread-safe. Results go to the window's thread as Qt signals."""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QThread, Signal

from model.video import VideoError, VideoReader

if TYPE_CHECKING:
    from model.predict import Predictor
    from model.tracking import Tracker

RETRACK_CHUNK = 8  # re-tracked frames handed over at a time
SAME_FACE_IOU = 0.5  # a face found in a person's box overlapping a face shown this much is that face


@dataclass
class RetrackJob:
    """Track a face again after a correction: from its keyframe's points over `span`."""

    track: int
    frame: int
    key: np.ndarray  # the keyframe's points as the document holds them (identity is checked)
    span: range


@dataclass
class AddFaceJob:
    """A face the tracker missed: a person's box around it on a frame already tracked, and the
    boxes of the faces shown there (a face found on one of them is not added twice)."""

    frame: int
    box: np.ndarray  # [x0, y0, x1, y1], picture pixels
    shown: dict[int, np.ndarray] = field(default_factory=dict)  # track -> its box on that frame


@dataclass
class TraceJob:
    """The network's whole trace for a face on a frame (the research view): run on the tight
    box of its points there."""

    frame: int
    track: int
    points: np.ndarray


class ClipTracker(QThread):
    """Tracks the clip's frames in order, from `start`, and hands each frame's faces over; then
    stays to re-track after corrections and to add the faces a person points out (`request`),
    which go before the next frame."""

    tracked = Signal(int, object, bool)  # frame, {track: points}, cut
    retracked = Signal(object, object, object)  # RetrackJob, base, {frame: points} (a chunk)
    added = Signal(object, int, object, bool)  # AddFaceJob, the new face's identity, its points, the model unsure
    refused = Signal(object, str)  # AddFaceJob, why no face was added
    traced = Signal(object, object, int)  # TraceJob, its FaceResult (heatmaps, S0, every step), the crop side
    done = Signal()  # every frame from `start` tracked
    failed = Signal(str)

    def __init__(self, video: Path, checkpoint: Path | None, start: int = 0,
                 resume: dict[int, np.ndarray] | None = None, next_track: int = 1) -> None:
        super().__init__()
        self.video, self.checkpoint, self.start_frame = video, checkpoint, start
        # a clip reopened before its tracking ended: frame start - 1's faces, whose identities go on
        self.resume, self.next_track = resume or {}, next_track
        self._stop = False
        self._jobs: queue.Queue[RetrackJob | AddFaceJob | TraceJob] = queue.Queue()

    def request(self, job: RetrackJob | AddFaceJob | TraceJob) -> None:
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
                    self._serve(predictor, reader, tracker, block=False)
                    if self._stop:
                        return
                    frame = tracker.step(reader.frame(i))
                    self.tracked.emit(i, {f.track: f.points for f in frame.faces}, frame.cut)
                self.done.emit()
                while not self._stop:
                    self._serve(predictor, reader, tracker, block=True)
        except (VideoError, CheckpointError, OSError) as exc:
            self.failed.emit(str(exc))

    def _serve(self, predictor: Predictor, reader: VideoReader, tracker: Tracker, block: bool) -> None:
        """The jobs waiting (with block, waits a moment for one)."""
        while not self._stop:
            try:
                job = self._jobs.get(timeout=0.05) if block else self._jobs.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, AddFaceJob):
                self._add(predictor, reader, tracker, job)
            elif isinstance(job, TraceJob):
                self._trace(predictor, reader, job)
            else:
                self._retrack(predictor, reader, job)

    def _add(self, predictor: Predictor, reader: VideoReader, tracker: Tracker, job: AddFaceJob) -> None:
        """The face in the person's box (two passes, as for a box drawn on a picture), a new
        identity, and the face tracked over the frames already tracked after it (handed over as
        tracked frames); if it lasts to the tracker's frame, the tracker goes on with it."""
        from model.geometry import box_iou, box_of_points
        from model.predict import BoxSource
        from model.tracking import Retrack

        found = predictor.inference(reader.frame(job.frame), [job.box], BoxSource.PERSON)[0]
        points = found.points
        same = [t for t, box in job.shown.items() if box_iou(box_of_points(points), box) >= SAME_FACE_IOU]
        if same:
            self.refused.emit(job, f"The face in that box is face {same[0]}: drag its points to correct it")
            return
        track = tracker.new_identity()
        self.added.emit(job, track, points, found.needs_review)
        retrack = Retrack(predictor, reader.frame(job.frame), points, fps=reader.fps)
        last = points
        for f in range(job.frame + 1, tracker.index):
            found = None if self._stop else retrack.step(reader.frame(f))
            if found is None:
                return
            self.tracked.emit(f, {track: found}, False)
            last = found
        tracker.add_face(last, track)

    def _trace(self, predictor: Predictor, reader: VideoReader, job: TraceJob) -> None:
        """The whole trace of the face, on the tight box of its points (the tracker's framing)."""
        from model.geometry import box_of_points

        found = predictor.inference(reader.frame(job.frame), [box_of_points(job.points)])[0]
        self.traced.emit(job, found, predictor.config.input_size)

    def _retrack(self, predictor: Predictor, reader: VideoReader, job: RetrackJob) -> None:
        from model.tracking import Retrack

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
