"""Background work: decoding pictures, loading checkpoints and running the model.

The Qt event loop never waits on any of it. `PredictionWorker` is one long-lived thread with a
priority queue (the image on screen first, then predict-ahead, then batch jobs); its results come
back as queued signals. One-off jobs (export, fine-tune) use superqt's thread workers instead.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QThread, Signal

from model.images import ImageError, read_image
from model.options import MIRROR_AVERAGE

NOW, AHEAD, BATCH = 0, 1, 2  # job priorities
DISPLAY_MAX = 2048  # larger pictures are shown reduced: a 12 MP QImage takes ~100 ms to paint
_seq = itertools.count()


@dataclass(order=True)
class Job:
    priority: int
    seq: int = field(default_factory=lambda: next(_seq))
    path: Path = field(default=Path(), compare=False)
    boxes: list[np.ndarray] | None = field(default=None, compare=False)  # None = run the detector
    uids: list[int] | None = field(default=None, compare=False)  # faces the boxes belong to
    sources: list[str] | None = field(default=None, compare=False)  # each box's BoxSource (the policy)
    rolls: list[float] | None = field(default=None, compare=False)  # the detector's eye line per box
    versions: list[int] | None = field(default=None, compare=False)
    want_image: bool = field(default=True, compare=False)
    predict: bool = field(default=True, compare=False)
    generation: int = field(default=0, compare=False)  # which loaded model the job is for


@dataclass(eq=False)
class Picture:
    """What the canvas shows: the picture, reduced when large, and how to scale it back."""

    display: np.ndarray  # RGB uint8, read-only
    scale: float  # picture pixels per display pixel
    width: int
    height: int


def make_picture(image: np.ndarray) -> Picture:
    h, w = image.shape[:2]
    f = min(1.0, DISPLAY_MAX / max(h, w))
    if f < 1.0:
        display = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        display.setflags(write=False)
        return Picture(display, w / display.shape[1], w, h)
    return Picture(image, 1.0, w, h)


def default_factory(checkpoint: Path | None) -> Any:
    """Import lazily: torch takes seconds to import and must not delay the first window."""
    from model.predict import Predictor

    return Predictor.load(checkpoint=checkpoint)


def describe_error(exc: BaseException) -> str:
    """One line for the user; our own error types already carry the file name and reason."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ValueError) and text:
        return text
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


SAME_MODEL = object()  # a model request that keeps the loaded network (see set_mirror_average)


class PredictionWorker(QThread):
    imageLoaded = Signal(object, object)  # path, Picture
    imageFailed = Signal(object, str)  # path, message
    predicted = Signal(object, object, float)  # job, list of results, seconds
    predictFailed = Signal(object, str)  # job, message
    modelLoaded = Signal(object, int)  # predictor, generation
    modelFailed = Signal(str, int)  # message, generation

    def __init__(self, factory: Callable[[Path | None], Any] = default_factory, cache_size: int = 4) -> None:
        super().__init__()
        self._factory = factory
        self._cond = threading.Condition()
        self._jobs: list[Job] = []
        self._model_request: tuple[Path | None | object, int] | None = None
        self._stop = False
        self._predictor: Any = None
        # test-time mirror averaging (model.predict.Predictor.mirror_average), applied to each
        # model as it is loaded, before it predicts anything
        self.mirror_average = MIRROR_AVERAGE
        self.generation = 0
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.busy_path: Path | None = None

    # --- called from the GUI thread ---------------------------------------------------------
    def load_model(self, checkpoint: Path | None) -> int:
        with self._cond:
            self.generation += 1
            self._model_request = (checkpoint, self.generation)
            self._cond.notify()
            return self.generation

    def set_mirror_average(self, on: bool) -> None:
        """Change the setting; a loaded model comes back as a new predictor around the same
        network (nothing is read from disk again), as a model switch would."""
        with self._cond:
            self.mirror_average = on
            if self._predictor is not None:
                self.generation += 1
                self._model_request = (SAME_MODEL, self.generation)
                self._cond.notify()

    def submit(self, job: Job) -> None:
        with self._cond:
            # one pending job per picture and kind: a newer request replaces an older one
            self._jobs = [j for j in self._jobs if not (j.path == job.path and j.predict == job.predict
                                                         and j.uids == job.uids)]
            if job.generation == 0:
                job.generation = self.generation
            self._jobs.append(job)
            self._jobs.sort()
            self._cond.notify()

    def cancel(self, predicate: Callable[[Job], bool] = lambda j: True) -> int:
        with self._cond:
            before = len(self._jobs)
            self._jobs = [j for j in self._jobs if not predicate(j)]
            return before - len(self._jobs)

    def pending(self, predicate: Callable[[Job], bool] = lambda j: True) -> int:
        with self._cond:
            return sum(1 for j in self._jobs if predicate(j))

    def stop(self) -> None:
        """End the thread after its current job. It is waited for (up to a minute): a QThread
        destroyed while its thread still runs a prediction takes the process down, which a
        loaded machine made happen with the 5 s this waited before."""
        with self._cond:
            self._stop = True
            self._jobs.clear()
            self._cond.notify()
        self.wait(60000)

    # --- the thread -------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._jobs and self._model_request is None:
                    self._cond.wait()
                if self._stop:
                    return
                request, self._model_request = self._model_request, None
                job = self._jobs.pop(0) if request is None else None
                self.busy_path = job.path if job else None
            if request is not None:
                self._load(*request)
            elif job is not None:
                self._run_job(job)
            self.busy_path = None

    def _load(self, checkpoint: Path | None, generation: int) -> None:
        try:
            if checkpoint is SAME_MODEL:
                predictor = self._predictor.with_mirror_average(self.mirror_average)
            else:
                predictor = self._factory(checkpoint)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, the app goes on
            # the previous model (if any) stays in use: a bad file must not stop the work
            self.modelFailed.emit(describe_error(exc), generation)
            return
        if hasattr(predictor, "mirror_average"):
            predictor.mirror_average = self.mirror_average  # a newly read checkpoint
        self._predictor = predictor
        self.modelLoaded.emit(predictor, generation)

    def _image(self, path: Path) -> np.ndarray:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        image = read_image(path)
        image.setflags(write=False)  # shared with the GUI thread: nobody may change it
        self._cache[path] = image
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return image

    def _run_job(self, job: Job) -> None:
        try:
            image = self._image(job.path)
        except ImageError as exc:
            self.imageFailed.emit(job.path, str(exc))
            return
        except (OSError, MemoryError, ValueError) as exc:
            self.imageFailed.emit(job.path, f"{job.path}: {describe_error(exc)}")
            return
        if job.want_image:
            self.imageLoaded.emit(job.path, make_picture(image))
        predictor = self._predictor
        if not job.predict or predictor is None or job.generation != self.generation:
            return
        t0 = time.perf_counter()
        try:
            boxes = None if job.boxes is None else [np.asarray(b, dtype=np.float64) for b in job.boxes]
            # the passes follow where each box came from: model.predict's one policy
            results = predictor.inference(image, boxes, job.sources, job.rolls)
        except Exception as exc:  # noqa: BLE001 - a model failure on one picture is a message
            self.predictFailed.emit(job, f"{job.path.name}: prediction failed ({describe_error(exc)})")
            return
        self.predicted.emit(job, list(results), time.perf_counter() - t0)
