"""File handling of the main window: open, recent folders, save (atomic, automatic), output
folder, export of a training folder, batch prediction, checkpoints, window layout."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox, QProgressDialog
from superqt.utils import GeneratorWorker, create_worker

from model.images import IMAGE_SUFFIXES, is_image_file

from ..document import Document, SaveError, write_export, write_training
from .workers import BATCH, describe_error

MAX_RECENT = 8


class FilesMixin:
    """A part of MainWindow. Needs from it: settings, session (document, entry),
    set_document(), message_bar, show_problem(), action(), the status bar and the window's
    geometry; the pre-labeller (self.labeller, predictor) for batch prediction and
    checkpoints."""

    def build_file_menu(self, menu: QMenu) -> None:
        self.action(menu, "Open images…", self.choose_images, "Ctrl+O")
        self.action(menu, "Open folder…", self.choose_folder, "Ctrl+Shift+O")
        self.recent_menu = menu.addMenu("Recent folders")
        self._fill_recent()
        menu.addSeparator()
        self.action(menu, "Save", self.save_current, "Ctrl+S",
                    tip="Write the corrected faces as .pts (also automatic when changing image)")
        self.action(menu, "Set output folder…", self.choose_output,
                    tip="Write .pts files into another folder instead of beside the images")
        self.action(menu, "Export training folder…", self.export_training,
                    tip="Corrected/approved faces as image + .pts pairs that drr-train reads")
        self.action(menu, "Export as…", self.export_as,
                    tip="Corrected/approved faces as an iBUG folder, COCO keypoints, labelme or CVAT 1.1")
        self.action(menu, "Import annotations…", self.import_annotations,
                    tip="Faces from a COCO .json, a CVAT .xml, labelme .json or .pts, matched by picture name")
        self.action(menu, "Import annotations from a folder…", self.import_folder,
                    tip="A folder of labelme .json files (one per picture) or of iBUG .pts, matched by picture name")
        menu.addSeparator()
        self.action(menu, "Quit", self.close, "Ctrl+Q")

    # --- opening ------------------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> None:
        paths = [Path(p) for p in paths]
        missing = [p for p in paths if not p.exists()]
        if missing:
            self.show_problem("Not found: " + ", ".join(str(p) for p in missing))
        paths = [p for p in paths if p.exists()]
        if not paths:
            return
        if len(paths) == 1 and paths[0].is_dir():
            try:
                doc = Document.from_paths(paths)
            except OSError as exc:
                self.show_problem(f"Cannot list {paths[0]}: {exc.strerror or exc}")
                return
            self._remember_folder(paths[0])
        else:
            files = [p for p in paths if p.is_file()]
            odd = [p.name for p in files if not is_image_file(p)]
            if odd:
                self.show_problem("Not an image file type: " + ", ".join(odd))
            doc = Document([p for p in files if is_image_file(p)])
        if not self.confirm_discard():
            return
        doc.output_dir = self.output_dir
        self.set_document(doc)

    def choose_images(self) -> None:
        pattern = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self._last_dir(), pattern)
        if files:
            self.open_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self._last_dir())
        if folder:
            self.open_paths([Path(folder)])

    def _last_dir(self) -> str:
        recent = self.recent_folders()
        return recent[0] if recent else str(Path.home())

    def recent_folders(self) -> list[str]:
        value = self.settings.value("recent_folders", [])
        if isinstance(value, str):
            value = [value]
        return [v for v in (value or []) if isinstance(v, str)]

    def _remember_folder(self, folder: Path) -> None:
        path = str(folder.resolve())
        recent = [path] + [r for r in self.recent_folders() if r != path]
        self.settings.setValue("recent_folders", recent[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.recent_folders():
            act = self.recent_menu.addAction(folder)
            act.triggered.connect(lambda _=False, f=folder: self.open_paths([Path(f)]))
        self.recent_menu.setEnabled(bool(self.recent_folders()))

    # --- saving -------------------------------------------------------------------------------
    def save_entry(self, entry) -> bool:
        """Save one image's corrections; on failure tell the user and keep them in memory."""
        try:
            written = self.document.save(entry)
        except SaveError as exc:
            self.show_problem(f"{exc}. Your edits are kept in memory: File → Set output folder… "
                              "to save them somewhere writable.")
            return False
        if written:
            self.learn_from(entry)
            kept = self.document.backups
            note = f"; the malformed file was kept as {', '.join(p.name for p in kept)}" if kept else ""
            self.statusBar().showMessage(f"Saved {', '.join(p.name for p in written)}{note}", 8000 if kept else 3000)
            if kept and not entry.unreadable:
                entry.error = None  # the malformed annotation is replaced by the saved one
                if self.message_bar.owner == entry.path:
                    self.message_bar.clear()
        self.session.touch(entry)
        return True

    def learn_from(self, entry) -> None:
        """Saved faces a person finished teach the assisted correction (one lesson per face)."""
        taught = [self.assistant.learn(self.document.face_key(entry, f), f) for f in entry.faces if f.human]
        if any(taught):
            self.assistant.save()
            self.assistant.changed.emit(self.assistant.describe())
        if self.assistant.folder_problem:
            self.show_problem(self.assistant.folder_problem)

    def autosave_current(self) -> bool:
        e = self.entry
        return self.save_entry(e) if e is not None and e.dirty else True

    def save_current(self) -> None:
        e = self.entry
        if e is not None:
            e.dirty = e.dirty or any(f.human for f in e.faces)
            self.save_entry(e)

    def save_all(self) -> list[str]:
        failed = []
        for e in self.document.dirty_entries():
            if not self.save_entry(e):
                failed.append(e.path.name)
        return failed

    def choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder for .pts files", self._last_dir())
        if not folder:
            return
        self.output_dir = self.document.output_dir = Path(folder)
        self.assistant.move_folder(self.document.annotation_folder())
        for e in self.document.entries:
            if any(f.human for f in e.faces):
                e.dirty = True  # the corrections belong in the new folder too
        self.save_all()
        self.statusBar().showMessage(f"Saving into {folder}", 5000)

    def confirm_discard(self) -> bool:
        failed = self.save_all()
        if not failed:
            return True
        answer = QMessageBox.question(
            self, "Unsaved corrections",
            f"Could not save {len(failed)} image(s) ({', '.join(failed[:5])}). Discard those corrections?")
        return answer == QMessageBox.StandardButton.Yes

    def confirm_close(self) -> bool:
        return self.confirm_discard()

    # --- export and batch work ----------------------------------------------------------------
    def export_training(self) -> None:
        self.save_all()
        folder = QFileDialog.getExistingDirectory(self, "Export training folder (image + .pts)", self._last_dir())
        if not folder:
            return
        answer = QMessageBox.question(
            self, "Export", "Export approved faces only?\n(No = corrected and approved faces)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Cancel:
            return
        self.run_export(Path(folder), answer == QMessageBox.StandardButton.Yes)

    EXPORT_FORMATS = {"iBUG .pts folder": "pts", "COCO keypoints (.json)": "coco",
                      "labelme (a .json per picture)": "labelme", "CVAT for images 1.1 (.xml)": "cvat"}

    def export_as(self) -> None:
        label, ok = QInputDialog.getItem(self, "Export as", "Format:", list(self.EXPORT_FORMATS), 1, False)
        if not ok:
            return
        fmt = self.EXPORT_FORMATS[label]
        if fmt in ("coco", "cvat"):
            suffix = ".json" if fmt == "coco" else ".xml"
            target, _ = QFileDialog.getSaveFileName(self, "Export as", str(Path(self._last_dir()) / f"annotations{suffix}"),
                                                    f"*{suffix}")
        else:
            target = QFileDialog.getExistingDirectory(self, "Export into folder", self._last_dir())
        if target:
            self.run_export(Path(target), fmt=fmt)

    def import_annotations(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import annotations", self._last_dir(),
                                              "Annotations (*.json *.xml);;All files (*)")
        if path:
            self.import_from(Path(path))

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import annotations from a folder", self._last_dir())
        if folder:
            self.import_from(Path(folder))

    def import_from(self, path: Path) -> int:
        from model.formats import FormatError, read_annotations

        try:
            images = read_annotations(path, self.document.root)
        except FormatError as exc:
            self.show_problem(f"Import failed: {exc}")
            return 0
        count, skipped = self.document.import_annotations(images)
        self.session.touch_all()
        note = f"; left alone: {', '.join(skipped[:5])}{' …' if len(skipped) > 5 else ''}" if skipped else ""
        self.statusBar().showMessage(f"Imported {count} face(s) from {path.name}{note}", 10000)
        return count

    def run_export(self, folder: Path, approved_only: bool = False, fmt: str | None = None) -> GeneratorWorker:
        """Export in a superqt thread worker; the progress dialog's Cancel stops it between two
        pictures (Document.export_* are generators yielding (done, total, name))."""
        dialog = QProgressDialog("Exporting…", "Cancel", 0, 0, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        # the faces are copied here, on the GUI thread; the worker writes only the copy
        snapshot = self.document.export_snapshot(approved_only)
        worker = (create_worker(write_training, snapshot, self.document.root, folder, _start_thread=False)
                  if fmt is None else create_worker(write_export, snapshot, fmt, folder, _start_thread=False))

        def progress(v: tuple[int, int, str]) -> None:
            dialog.setMaximum(v[1])
            dialog.setValue(v[0])
            dialog.setLabelText(f"Exporting {v[2]}")

        def returned(n: int) -> None:
            dialog.reset()
            self.statusBar().showMessage(f"Exported {n} face(s) to {folder}", 8000)

        def aborted() -> None:
            dialog.reset()
            self.statusBar().showMessage("Export cancelled", 5000)

        def errored(exc: Exception) -> None:
            dialog.reset()
            self.show_problem(f"Export failed: {describe_error(exc)}")

        worker.yielded.connect(progress)
        worker.returned.connect(returned)
        worker.aborted.connect(aborted)
        worker.errored.connect(errored)
        dialog.canceled.connect(worker.quit)
        self.export_worker = worker
        worker.start()
        return worker

    def predict_all(self) -> None:
        if self.predictor is None:
            self.show_problem("No model loaded: " + (self.labeller.model_error or "still loading"))
            return
        queued = [i for i in range(len(self.document)) if self.labeller.request(i, BATCH)]
        if not queued:
            self.statusBar().showMessage("Every image is already predicted", 4000)
            return
        dialog = QProgressDialog("Predicting…", "Cancel", 0, len(queued), self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        self.batch = {"dialog": dialog, "todo": {self.document.entries[i].path for i in queued}, "total": len(queued)}
        dialog.canceled.connect(self._cancel_batch)

    def _batch_progress(self, path: Path) -> None:
        b = self.batch
        b["todo"].discard(path)
        done = b["total"] - len(b["todo"])
        b["dialog"].setValue(done)
        if not b["todo"]:
            b["dialog"].reset()
            self.batch = None
            self.statusBar().showMessage(f"Predicted {done} image(s)", 5000)

    def _cancel_batch(self) -> None:
        self.labeller.cancel(lambda j: j.priority == BATCH)
        self.batch = None
        self.statusBar().showMessage("Batch prediction cancelled", 4000)

    def choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", self._last_dir(),
                                              "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.load_checkpoint(Path(path))

    def load_checkpoint(self, path: Path | None) -> None:
        """Switch models in the background; the old one keeps working until the new one is in."""
        self.labeller.load_model(path)

    # --- window layout ------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry = self.settings.value("geometry")
        state = self.settings.value("window_state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        if state is not None:
            self.restoreState(state)

    def _save_layout(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.sync()
