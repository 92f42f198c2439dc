"""Model -> Fine-tune on corrected data: the dialog, a background run with progress, loss plot
and Cancel, and the old-vs-new comparison that lets the user switch models.

The training itself is `model.finetune.fine_tune`, the same code path as
`drr-train --init CHECKPOINT --data FOLDER`. This module only gathers the faces, shows progress
and hands the new checkpoint to the window's ordinary "load checkpoint" path.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from model.annotation_files import face_name
from model.data import Sample
from model.finetune import (
    FineTuneOptions,
    FineTuneResult,
    fine_tune_in_process,
    split_held_out,
    suggested_schedule,
)
from model.predict import DEFAULT_CHECKPOINT

from ..document import Document, Status

MODELS_DIR = "drr_models"
PATIENCE = 15  # epochs without a lower held-out error before the dialog's run stops early


def corrected_faces(document: Document, statuses: set[Status], num_points: int | None = None) -> list[Sample]:
    """The faces a human corrected or approved, as training samples (picture + points).
    Images not visited yet have their annotation files read first. Face names are the
    pictures' paths within the folder (model.annotation_files' names): the held-out split,
    a hash of the names, stays the same wherever the folder is moved."""
    out = []
    for entry in document.entries:
        document.load_annotations(entry, num_points)  # no-op for entries already loaded
        for k, face in enumerate(entry.faces):
            ok = face.points is not None and np.isfinite(face.points).all()
            if face.status in statuses and ok and (num_points is None or len(face.points) == num_points):
                name = face_name(Path(document.picture_key(entry)).with_suffix("").as_posix(), k)
                out.append(Sample(entry.path, np.asarray(face.points, dtype=np.float64).copy(), name))
    return out


def models_dir(window: Any) -> Path:
    """The project's folder for fine-tuned checkpoints (never the shipped resources/)."""
    doc = window.document
    base = window.output_dir or doc.root or (doc.entries[0].path.parent if doc.entries else Path.cwd())
    return Path(base) / MODELS_DIR


# bench/finetune.py: 20 training faces and 8 held out converge in 40 epochs; fewer held-out
# faces make the before/after comparison a matter of luck
FEW_TRAIN_FACES, FEW_HELD_OUT = 20, 5


def few_faces_warning(train: int, held: int) -> str:
    """A caution for the dialog when the faces are too few to learn from or to judge by."""
    parts = []
    if 0 < train < FEW_TRAIN_FACES:
        parts.append(f"only {train} faces to train on: the model may learn these faces rather than improve "
                     "(prefer 'Refiner + heatmap head only')")
    if train and held < FEW_HELD_OUT:
        parts.append(f"{held} held out: the before/after error on so few faces says little"
                     if held else "none held out: there will be no before/after comparison")
    return ("Caution: " + "; ".join(parts) + ".") if parts else ""


class FineTuneDialog(QDialog):
    def __init__(self, document: Document, num_points: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on corrected data")
        self.document = document
        self.num_points = num_points
        n_corr = len(corrected_faces(document, {Status.CORRECTED}, num_points))
        n_appr = len(corrected_faces(document, {Status.APPROVED}, num_points))
        self.use_corrected = QCheckBox(f"Corrected faces ({n_corr})")
        self.use_approved = QCheckBox(f"Approved faces ({n_appr})")
        self.use_corrected.setChecked(True)
        self.use_approved.setChecked(True)
        self.held_out = QSpinBox(suffix=" %", minimum=0, maximum=50, value=10)
        self.epochs = QSpinBox(minimum=1, maximum=500, value=FineTuneOptions.epochs)
        self.epochs.setToolTip("Suggested for the number of faces: about the same number of training steps "
                               "for a small folder as for a large one")
        self.early = QCheckBox(f"Stop when the held-out error has not improved for {PATIENCE} epochs, "
                               "and keep the best epoch")
        self.early.setChecked(True)
        self.minutes = QDoubleSpinBox(minimum=0.0, maximum=600.0, value=0.0, decimals=1, suffix=" min")
        self.minutes.setSpecialValueText("no limit")
        self.lr = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=1e-2, singleStep=1e-4, value=FineTuneOptions.lr)
        self.layers = QComboBox()
        self.layers.addItem("All layers", "all")
        self.layers.addItem("Refiner + heatmap head only (faster, safer with few faces)", "refiner")
        self.count = QLabel()
        self.warning = QLabel()  # few faces: say what a fine-tune on them can and cannot show
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #d08000")
        form = QFormLayout()
        form.addRow("Train on", self.use_corrected)
        form.addRow("", self.use_approved)
        form.addRow("", self.count)
        form.addRow("Held out for checking", self.held_out)
        form.addRow("Epochs", self.epochs)
        form.addRow("", self.early)
        form.addRow("Time budget", self.minutes)
        form.addRow("Learning rate", self.lr)
        form.addRow("Layers", self.layers)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.warning)
        lay.addWidget(self.buttons)
        for box in (self.use_corrected, self.use_approved):
            box.toggled.connect(self._update_count)
        self.held_out.valueChanged.connect(self._update_count)
        self._suggested: tuple[int, float] | None = None
        self._update_count()

    def statuses(self) -> set[Status]:
        s = set()
        if self.use_corrected.isChecked():
            s.add(Status.CORRECTED)
        if self.use_approved.isChecked():
            s.add(Status.APPROVED)
        return s

    def samples(self) -> list[Sample]:
        return corrected_faces(self.document, self.statuses(), self.num_points)

    def _update_count(self) -> None:
        samples = self.samples()
        n = len(samples)
        held = len(split_held_out(samples, self.held_out.value() / 100)[1])
        self.count.setText(f"{n} faces: {n - held} to train on, {held} held out")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(n > 0)
        self.warning.setText(few_faces_warning(n - held, held))
        self.warning.setVisible(bool(self.warning.text()))
        self._suggest(n - held)

    def _suggest(self, train_faces: int) -> None:
        """Epochs and learning rate for this many faces, unless the user changed them."""
        epochs, lr = suggested_schedule(train_faces, FineTuneOptions.batch_size)
        untouched = self._suggested is None or (self.epochs.value(), self.lr.value()) == self._suggested
        if untouched:
            self.epochs.setValue(epochs)
            self.lr.setValue(lr)
            self._suggested = (self.epochs.value(), self.lr.value())

    def options(self, checkpoint: Path, models: Path) -> FineTuneOptions:
        return FineTuneOptions(checkpoint=str(checkpoint), models_dir=str(models),
                               held_out_fraction=self.held_out.value() / 100, epochs=self.epochs.value(),
                               max_minutes=self.minutes.value(), lr=self.lr.value(),
                               train_layers=self.layers.currentData(),
                               patience=PATIENCE if self.early.isChecked() else 0)


class FineTuneWorker(QObject):
    """Runs fine_tune in a separate process (multiprocessing, spawn), so that training's seeds,
    thread counts and backend flags never touch the app's process and its prediction worker.
    Progress events come back over a queue, read by a small thread that re-emits them as Qt
    signals (queued to the GUI thread); Cancel sets an event the training loop polls after each
    batch. isRunning / isFinished / wait answer without the event loop."""

    progress = Signal(dict)
    finished_ok = Signal(object)  # FineTuneResult
    failed = Signal(str)

    def __init__(self, opts: FineTuneOptions, samples: list[Sample]) -> None:
        super().__init__()
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no Qt, no app threads
        self._messages = ctx.Queue()
        self._stop = ctx.Event()
        self._process = ctx.Process(target=fine_tune_in_process, args=(opts, samples, self._messages, self._stop),
                                    daemon=True, name="drr-fine-tune")
        self._started = False
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True, name="drr-fine-tune-messages")

    def start(self) -> None:
        self._started = True
        self._process.start()
        self._reader.start()

    def _read(self) -> None:
        """Re-emit the child's messages until its result, its failure, or its death."""
        try:
            while True:
                try:
                    msg = self._messages.get(timeout=0.5)
                except queue.Empty:
                    if not self._process.is_alive():
                        self.failed.emit(f"the fine-tuning process ended unexpectedly (exit code {self._process.exitcode})")
                        return
                    continue
                if msg.get("event") == "done":
                    self.finished_ok.emit(msg["result"])
                    return
                if msg.get("event") == "failed":
                    self.failed.emit(msg["message"])
                    return
                self.progress.emit(msg)
        finally:
            self._process.join(timeout=30)
            self._done.set()

    def cancel(self) -> None:
        self._stop.set()

    def isRunning(self) -> bool:  # noqa: N802 - QThread's name
        return self._started and not self._done.is_set()

    def isFinished(self) -> bool:  # noqa: N802 - QThread's name
        return self._done.is_set()

    def wait(self, msecs: int | None = None) -> bool:
        return self._done.wait(None if msecs is None else msecs / 1000) if self._started else True

    def kill(self) -> None:
        """Stop at once (the app is closing and the run would not stop in time)."""
        if self._process.is_alive():
            self._process.terminate()


def minutes_left(first: tuple[float, int] | None, now: float, done: int, total: int) -> float | None:
    """Minutes to the last step at the pace since the first step (the process's start and the
    model's loading excluded: counted in, they made an early estimate ten times too long);
    None until a step after the first is in."""
    if first is None or done <= first[1]:
        return None
    return (now - first[0]) / (done - first[1]) * max(total - done, 0) / 60


class FineTuneProgress(QDialog):
    """Non-modal: the annotator keeps working while the model trains. The plot: the training
    loss by step, and the held-out error by epoch, which early stopping watches."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tuning")
        self.setModal(False)
        self.label = QLabel("Preparing…")
        self.bar = QProgressBar()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.setMinimumHeight(160)
        self.curve = self.plot.plot(pen=pg.mkPen("#1f77b4", width=2))
        self.held_plot = pg.PlotWidget(background="w")
        self.held_plot.setLabel("bottom", "epoch")
        self.held_plot.setLabel("left", "held-out error (%)")
        self.held_plot.setMinimumHeight(120)
        self.held_curve = self.held_plot.plot(pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=5)
        self.held: list[tuple[int, float]] = []
        self.first: tuple[float, int] | None = None  # (time, steps done) at the first step
        self.early_note = ""
        self.cancel_button = QPushButton("Cancel")
        lay = QVBoxLayout(self)
        for w in (self.label, self.bar, self.plot, self.held_plot, self.cancel_button):
            lay.addWidget(w)
        self.losses: list[float] = []

    def update_progress(self, ev: dict) -> None:
        if ev.get("event") == "step":
            self._step(ev)
        elif ev.get("event") == "epoch" and ev.get("val_nme") is not None:
            self.held.append((int(ev["epoch"]), float(ev["val_nme"])))
            self.held_curve.setData(*np.asarray(self.held, float).T)
            self.setToolTip(f"epoch {ev['epoch']}: held-out inter-pupil NME {ev['val_nme']:.2f}%")
        elif ev.get("event") == "early_stop":
            self.early_note = (f"No better on the held-out faces since epoch {ev['best_epoch']}: "
                               "stopping, keeping that epoch")
            self.label.setText(self.early_note)
        elif ev.get("event") == "evaluating":
            self.label.setText("Measuring the old and the new model on the held-out faces…")
            self.bar.setValue(100)

    def _step(self, ev: dict) -> None:
        self.losses.append(float(ev["loss"]))
        self.curve.setData(np.arange(len(self.losses)), np.asarray(self.losses))
        done, total = (ev["epoch"] - 1) * ev["batches"] + ev["batch"], ev["epochs"] * ev["batches"]
        now = time.monotonic()
        if self.first is None:
            self.first = (now, done)
        self.bar.setValue(int(100 * done / max(total, 1)))
        left = minutes_left(self.first, now, done, total)
        when = "estimating the time left" if left is None else (
            f"at most {left:.1f} min left" if left >= 1 else f"at most {left * 60:.0f} s left")
        if not self.early_note:
            self.label.setText(f"Epoch {ev['epoch']}/{ev['epochs']} · loss {ev['loss']:.3f} · {when}")


def per_face_lines(result: FineTuneResult, limit: int = 12) -> str:
    """Each held-out face, before -> after (the ones that changed most first)."""
    rows = sorted(zip(result.face_names, result.old_face_errors, result.new_face_errors),
                  key=lambda r: -abs(r[2] - r[1]))
    lines = [f"  {name}: {old:.2f}% -> {new:.2f}%" for name, old, new in rows[:limit]]
    more = f"\n  … and {len(rows) - limit} more" if len(rows) > limit else ""
    return ("Per face:\n" + "\n".join(lines) + more + "\n") if lines else ""


def ask_switch(parent: QWidget, result: FineTuneResult) -> bool:
    """Old vs new on the held-out faces, side by side; True = switch to the new model."""
    if result.old_error is not None:
        kept = (f" Kept epoch {result.best_epoch}, the best on these faces (so they flatter it a little)."
                if result.best_epoch else "")
        text = (f"Held-out faces ({result.held_out_faces}), inter-pupil NME (mean point error in % of "
                f"the distance between the eye centres, as in the Review dock):\n"
                f"  current model: {result.old_error_pupil:.2f}%\n  new model:     {result.new_error_pupil:.2f}%\n\n"
                + per_face_lines(result) +
                f"\nTrained on {result.train_faces} faces.{kept} Switch to the new model?")
    else:
        text = (f"Trained on {result.train_faces} faces; none were held out, so there is no "
                "before/after comparison. Switch to the new model?")
    box = QMessageBox(QMessageBox.Icon.Question, "Fine-tuning finished", text, parent=parent)
    switch = box.addButton("Switch to new model", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Keep current model", QMessageBox.ButtonRole.RejectRole)
    box.setInformativeText(f"New checkpoint: {result.checkpoint}")
    box.exec()
    return box.clickedButton() is switch


class FineTuner:
    """Owns one fine-tuning run for a window."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.worker: FineTuneWorker | None = None
        self.progress: FineTuneProgress | None = None
        self.last_result: FineTuneResult | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def open_dialog(self) -> None:
        w = self.window
        if self.running:
            self.progress.show()
            self.progress.raise_()
            return
        cfg = getattr(w.predictor, "config", None)
        dialog = FineTuneDialog(w.document, getattr(cfg, "num_points", None), w)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.start(dialog.options(self.current_checkpoint(), models_dir(w)), dialog.samples())

    def current_checkpoint(self) -> Path:
        return Path(getattr(self.window.predictor, "path", None) or DEFAULT_CHECKPOINT)

    def start(self, opts: FineTuneOptions, samples: list[Sample]) -> FineTuneWorker | None:
        w = self.window
        if w.files.autosave_current() is False:
            w.show_problem("Fine-tuning not started: the current image could not be saved.")
            return None
        self.progress = FineTuneProgress(w)
        self.worker = FineTuneWorker(opts, samples)
        self.worker.progress.connect(self.progress.update_progress)
        self.worker.finished_ok.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.progress.cancel_button.clicked.connect(self.cancel)
        self.progress.show()
        w.statusBar().showMessage(f"Fine-tuning on {len(samples)} faces in the background…", 5000)
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            if self.progress is not None:
                self.progress.label.setText("Cancelling after this batch…")
                self.progress.cancel_button.setEnabled(False)

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None

    def _finished(self, result: FineTuneResult) -> None:
        self.last_result = result
        self._close_progress()
        if self.worker is not None:
            self.worker.wait()
        self.worker = None
        if result.cancelled or result.checkpoint is None:
            self.window.statusBar().showMessage("Fine-tuning cancelled; the model is unchanged.", 8000)
            return
        if ask_switch(self.window, result):
            self.window.files.load_checkpoint(result.checkpoint)

    def _failed(self, message: str) -> None:
        self._close_progress()
        if self.worker is not None:
            self.worker.wait()
        self.worker = None
        self.window.show_problem(f"Fine-tuning failed, the model is unchanged: {message}")

    def shutdown(self) -> None:
        """On exit: stop the run; its half-trained weights are thrown away."""
        if self.worker is not None:
            self.worker.cancel()
            if not self.worker.wait(30000):
                self.worker.kill()


def install(window: Any) -> None:
    tuner = FineTuner(window)
    window.fine_tuner = tuner
    window.fine_tune_action = window.action(
        window.model_menu, "Fine-tune on corrected data…", tuner.open_dialog,
        tip="Train the current model further on the faces you corrected or approved")
    # stop the run when the app quits: half-trained weights are thrown away, nothing else changes
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(tuner.shutdown)
