"""The model's side of the app: keeps the document's pre-labels in step with the model.

`PreLabeller` owns the background `PredictionWorker` and the model it loaded. It asks for
pictures and predictions (the picture shown first, the next ones ahead, batch jobs last),
applies what comes back through the document's methods, which announce each change (the
views follow on their own), and keeps whole traces only for recent pictures. What the window shows beyond the views (a decoded picture, a problem line, a
status-bar message, the model's name) goes out as a signal; the window only connects them.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from model.options import MIRROR_AVERAGE

from ..document import Face, ImageEntry
from ..session import Session
from .workers import AHEAD, BATCH, NOW, Job, Picture, PredictionWorker, default_factory

PREDICT_AHEAD = 2  # pictures after the current one predicted in the background
GUI_CACHE = 6  # decoded pictures kept for instant switching
TRACE_KEEP = 4  # recently shown pictures whose faces keep their conv8 maps (Document.trim_traces)


def face_job(priority: int, entry: ImageEntry, faces: list[Face], want_image: bool = True) -> Job:
    """The worker's job for these faces of a picture: their boxes with where each came from
    (the policy's passes), the detector's eye line, and the versions that tell a stale answer."""
    return Job(priority, path=entry.path, boxes=[f.box.copy() for f in faces], uids=[f.uid for f in faces],
               sources=[f.source for f in faces], rolls=[f.roll for f in faces],
               versions=[f.box_version for f in faces], want_image=want_image)


class PreLabeller(QObject):
    pictureChanged = Signal(int)  # the decoded picture of entry i arrived, or failed (None)
    problem = Signal(str, object)  # text, the picture it belongs to (None: not one picture's)
    message = Signal(str, int)  # a status-bar line and how long it stays (ms)
    modelStatus = Signal(str, str)  # the model's line in the status bar, its tooltip
    modelReady = Signal(object)  # a newly loaded predictor, in use from now on
    busyChanged = Signal(str)  # "working… N queued" or ""
    jobDone = Signal(object)  # a picture's job ended (predicted or failed): batch progress

    def __init__(self, session: Session, factory: Callable[[Path | None], Any] = default_factory,
                 mirror_average: bool = MIRROR_AVERAGE) -> None:
        super().__init__()
        self.session = session
        self.predictor: Any = None
        self.model_error: str | None = None
        self.images: OrderedDict[Path, Picture] = OrderedDict()
        self.recent: deque[Path] = deque(maxlen=TRACE_KEEP)  # pictures shown last, newest at the right
        self._busy_timer = QTimer(self)  # one pending look at the worker's state (_update_busy)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(250)
        self._busy_timer.timeout.connect(self._update_busy)
        self.switch_time: float | None = None  # when the user asked for the current picture
        self.last_latency: float | None = None  # switch -> points on screen, seconds
        self.worker = PredictionWorker(factory)
        self.worker.mirror_average = mirror_average
        self.worker.imageLoaded.connect(self._image_loaded)
        self.worker.imageFailed.connect(self._image_failed)
        self.worker.predicted.connect(self._predicted)
        self.worker.predictFailed.connect(self._predict_failed)
        self.worker.modelLoaded.connect(self._model_loaded)
        self.worker.modelFailed.connect(self._model_failed)
        self.worker.start()

    # --- what the window asks for -------------------------------------------------------------
    @property
    def document(self):
        return self.session.document

    def num_points(self) -> int | None:
        return self.predictor.config.num_points if self.predictor is not None else None

    def picture(self, entry: ImageEntry | None) -> Picture | None:
        return self.images.get(entry.path) if entry else None

    def load_model(self, checkpoint: Path | None) -> None:
        """Switch models in the background; the old one keeps working until the new one is in."""
        self.modelStatus.emit(f"Model: loading {checkpoint.name if checkpoint else 'default'}…", "")
        self.worker.cancel(lambda j: j.predict)
        self.worker.load_model(checkpoint)

    def set_mirror_average(self, on: bool) -> None:
        """Like a model switch (same network, new setting): untouched faces are predicted again."""
        self.worker.cancel(lambda j: j.predict)
        self.worker.set_mirror_average(on)

    def shown(self, index: int) -> None:
        """The user switched to picture index: it first, then the next ones ahead. The time to
        points on screen is measured from this switch, and only when the points still have to
        come: a picture predicted ahead shows them at once (the window drew them already), and
        a later prediction of it must not be timed from this old switch."""
        entry = self.document.entries[index]
        self.switch_time = time.perf_counter()
        if entry.predicted and entry.path in self.images:
            self.last_latency, self.switch_time = 0.0, None
            self._say_ahead(entry)
        self.recent.append(entry.path)
        self._request_around(index)

    def _request_around(self, index: int) -> None:
        self.request(index, NOW)
        for k in range(1, PREDICT_AHEAD + 1):
            if index + k < len(self.document):
                self.request(index + k, AHEAD)

    def request(self, index: int, priority: int) -> bool:
        """Ask the worker for a picture and/or its prediction; False when nothing is needed."""
        entry = self.document.entries[index]
        if entry.error and entry.size is None and priority != NOW:
            return False
        if priority != NOW:
            self.document.load_annotations(entry, self.num_points())
        need_image = entry.path not in self.images and priority != BATCH
        need_predict = self.predictor is not None and not entry.predicted
        if not (need_image or need_predict):
            return False
        faces = entry.faces
        job = face_job(priority, entry, [f for f in faces if f.result is None] or faces) if faces \
            else Job(priority, path=entry.path)  # no faces yet: the worker detects them
        job.want_image, job.predict = need_image, need_predict
        self.worker.submit(job)
        self._update_busy()
        return True

    def rerun(self, index: int) -> None:
        """Predict every face of picture index again (e.g. after its boxes changed)."""
        entry = self.document.entries[index]
        self.document.unpredict(entry, entry.faces)
        self.switch_time = time.perf_counter()  # timed from what the user did
        self.request(index, NOW)

    def predict_faces(self, entry: ImageEntry, faces: list[Face]) -> None:
        """Run the model on these faces' boxes (drawn, moved, or moved back by undo)."""
        self.document.unpredict(entry, faces)
        if self.predictor is None or not faces:
            return
        self.worker.submit(face_job(NOW, entry, faces, want_image=False))

    def refresh_trace(self, entry: ImageEntry) -> None:
        """Run the model again on faces whose conv8 maps were trimmed (a panel wants them);
        human points stay as they are, the model's own points come back the same."""
        faces = [f for f in entry.faces if f.result is not None and getattr(f.result, "heatmaps", 0) is None]
        if faces and self.predictor is not None:
            self.worker.submit(face_job(NOW, entry, faces, want_image=False))

    def cancel(self, predicate: Callable[[Job], bool] = lambda j: True) -> None:
        self.worker.cancel(predicate)
        self._update_busy()

    def stop(self) -> None:
        self.worker.stop()

    # --- what the worker sends back -----------------------------------------------------------
    def _indices(self, path: Path) -> list[int]:
        return self.document.indices_of_path(path)

    def _image_loaded(self, path: Path, image: Picture) -> None:
        self.images[path] = image
        self.images.move_to_end(path)
        while len(self.images) > GUI_CACHE:
            self.images.popitem(last=False)
        for i in self._indices(path):
            self.session.set_picture_size(self.document.entries[i], (image.width, image.height))
            if i == self.session.current:
                self.pictureChanged.emit(i)
                if self.document.entries[i].predicted and self.switch_time is not None:
                    # the points were there already: on screen with the picture
                    self.last_latency, self.switch_time = time.perf_counter() - self.switch_time, None
        self._update_busy()

    def _image_failed(self, path: Path, message: str) -> None:
        self._failed(path, message)
        for i in self._indices(path):
            if i == self.session.current:
                self.pictureChanged.emit(i)

    def _predict_failed(self, job: Job, message: str) -> None:
        self._failed(job.path, message)

    def _failed(self, path: Path, message: str) -> None:
        for i in self._indices(path):
            self.document.set_error(self.document.entries[i], message)
            if i == self.session.current:
                self.problem.emit(message, path)
        self.jobDone.emit(path)
        self._update_busy()

    def _predicted(self, job: Job, results: list, seconds: float) -> None:
        if job.generation != self.worker.generation:
            return
        for i in self._indices(job.path):
            e = self.document.entries[i]
            self.document.apply_prediction(e, job.uids, job.versions, results)
            self._trim_traces()
            if i == self.session.current:
                self._say_predicted(e, seconds)
        self.jobDone.emit(job.path)
        self._update_busy()

    def _say_predicted(self, e: ImageEntry, seconds: float) -> None:
        if self.switch_time is not None:
            self.last_latency = time.perf_counter() - self.switch_time
            self.switch_time = None
        ms = f"{seconds * 1000:.0f} ms model" + (
            f", {self.last_latency * 1000:.0f} ms to screen" if self.last_latency else "")
        if not e.faces:
            self.message.emit(f"No face found in {e.path.name} ({ms}). Press B and drag a box around a face.", 10000)
            return
        doubt = f"; the model is unsure of {e.to_check} (pink box): check it first" if e.to_check else ""
        self.message.emit(f"{len(e.faces)} face(s) in {e.path.name} ({ms}){doubt}", 10000 if doubt else 5000)

    def _say_ahead(self, e: ImageEntry) -> None:
        """A picture predicted ahead is shown: what would have been said when its faces came, if
        it needs saying (no face found, or a face the model is unsure of)."""
        if not e.faces:
            self.message.emit(f"No face found in {e.path.name}. Press B and drag a box around a face.", 10000)
        elif e.to_check:
            self.message.emit(f"{len(e.faces)} face(s) in {e.path.name}; the model is unsure of {e.to_check} "
                              "(pink box): check it first", 10000)

    def _trim_traces(self) -> None:
        """Keep whole traces only for the pictures shown last and those predicted ahead: memory
        stays flat over a folder of thousands of pictures."""
        cur = self.session.current
        ahead = self.document.entries[cur:cur + PREDICT_AHEAD + 1] if cur >= 0 else []
        self.document.trim_traces(set(self.recent) | {e.path for e in ahead})

    def _model_loaded(self, predictor: Any, generation: int) -> None:
        if generation != self.worker.generation:
            return
        self.predictor, self.model_error = predictor, None
        dev = str(getattr(predictor, "device", "cpu"))
        where = "GPU" if dev.startswith("cuda") else "CPU"
        mirrored = ", mirror-averaged" if getattr(predictor, "mirror_average", False) else ""
        # bf16 on CPUs with native bf16 (model.inference.resolve_precision), said so it is no surprise
        bf16 = ", bf16" if getattr(predictor, "precision", "fp32") == "bf16" else ""
        self.modelStatus.emit(f"Model: {predictor.name} ({where}{bf16}{mirrored})", str(getattr(predictor, "path", "")))
        self.modelReady.emit(predictor)
        self.document.forget_predictions()
        if self.session.current >= 0:
            self.switch_time = time.perf_counter()
            self._request_around(self.session.current)

    def _model_failed(self, message: str, generation: int) -> None:
        if generation != self.worker.generation:
            return
        self.model_error = message
        if self.predictor is None:
            self.modelStatus.emit("Model: none", message)
            self.problem.emit(f"Model not loaded: {message}. You can still open, edit and save annotations; "
                              "Model → Load checkpoint… to try another file.", None)
            return
        self.modelStatus.emit(f"Model: {self.predictor.name} (kept)", message)
        self.problem.emit(f"Model not loaded: {message}. Still using {self.predictor.name}.", None)
        if self.session.current >= 0:
            self.request(self.session.current, NOW)

    def _update_busy(self) -> None:
        n = self.worker.pending()
        busy = self.worker.busy_path is not None or n
        self.busyChanged.emit(f"working… {n} queued" if busy else "")
        if busy and not n:
            # the worker clears busy_path just after its last result arrives here: look again
            self._busy_timer.start()
