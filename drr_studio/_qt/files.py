"""File handling of the main window: open, recent folders, save (atomic, automatic), output
folder, export of a training folder, batch prediction, checkpoints, window layout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QProgressDialog
from superqt.utils import GeneratorWorker, create_worker

from model import annotation_files as files
from model.images import IMAGE_SUFFIXES, is_image_file

from ..document import Document, SaveError
from ..exports import write_export, write_training
from . import dialogs
from .clip_window import open_video_dialog
from .window_part import WindowPart, WindowServices
from .workers import BATCH, describe_error

if TYPE_CHECKING:
    from ..assist import Assistant
    from ..session import Session
    from .panels import MessageBar
    from .prelabeller import PreLabeller

MAX_RECENT = 8
MAX_LISTED = 20  # pictures an import report names


class FileActions(WindowPart):
    """What the File menu and the model's batch work do: open, save (and learn from what is
    saved), export (a snapshot, in a worker), import, predict all, load a checkpoint.

    Given the model objects it works on (the session and its document, the assistant, the
    pre-labeller, the settings, the message bar). The window, held weakly, lends only its
    services: dialogs' parent, its status bar and problem line, its action factory, taking a new
    document, closing, and the output folder new documents get."""

    def __init__(self, window: WindowServices, session: Session, assistant: Assistant, labeller: PreLabeller,
                 settings: QSettings, message_bar: MessageBar) -> None:
        super().__init__(window)
        self.session, self.assistant, self.labeller = session, assistant, labeller
        self.settings, self.message_bar = settings, message_bar
        self.recent_menu: QMenu | None = None  # File -> Recent folders (build_file_menu)
        self.batch: dict | None = None  # the running Predict all: its dialog and the pictures left
        self.export_worker: GeneratorWorker | None = None  # the export running now, if any
        self._unlearned: set = set()  # pictures the autosave wrote whose faces have not taught yet
        labeller.jobDone.connect(self._batch_progress)

    # --- the window's services ------------------------------------------------------------------
    @property
    def output_dir(self) -> Path | None:
        return self.w.output_dir

    @output_dir.setter
    def output_dir(self, folder: Path | None) -> None:
        self.w.output_dir = folder

    def say(self, text: str, ms: int = 3000) -> None:
        self.w.statusBar().showMessage(text, ms)

    def show_problem(self, text: str, picture: Path | None = None) -> None:
        self.w.show_problem(text, picture)

    def make_action(self, *args, **kwargs) -> QAction:
        return self.w.action(*args, **kwargs)

    def open_document(self, document: Document) -> None:
        self.w.set_document(document)

    def close_window(self) -> None:
        self.w.close()

    def build_file_menu(self, menu: QMenu) -> None:
        self.make_action(menu, "Open images…", self.choose_images, "Ctrl+O")
        self.make_action(menu, "Open folder…", self.choose_folder, "Ctrl+Shift+O")
        self.make_action(menu, "Open video…", lambda: open_video_dialog(self.parent),
                      tip="Track a clip's faces and correct them through time, in a clip window (issue 36)")
        self.recent_menu = menu.addMenu("Recent folders")
        self._fill_recent()
        menu.addSeparator()
        self.make_action(menu, "Save", self.save_current, "Ctrl+S",
                    tip="Write the corrected faces as .pts (also automatic when changing image)")
        self.make_action(menu, "Set output folder…", self.choose_output,
                    tip="Write .pts files into another folder instead of beside the images")
        self.make_action(menu, "Export training folder…", self.export_training,
                    tip="Corrected/approved faces as image + .pts pairs that drr-train reads")
        self.make_action(menu, "Export as…", self.export_as,
                    tip="Corrected/approved faces as an iBUG folder, COCO keypoints, labelme or CVAT 1.1")
        self.make_action(menu, "Import annotations…", self.import_annotations,
                    tip="Faces from a COCO .json, a CVAT .xml, labelme .json or .pts, matched by picture name")
        self.make_action(menu, "Import annotations from a folder…", self.import_folder,
                    tip="A folder of labelme .json files (one per picture) or of iBUG .pts, matched by picture name")
        menu.addSeparator()
        self.make_action(menu, "Quit", self.close_window, "Ctrl+Q")

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
        self.open_document(doc)

    def choose_images(self) -> None:
        pattern = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
        files = dialogs.open_files(self.parent, self.settings, "images", "Open images", self._last_dir(), pattern)
        if files:
            self.open_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = dialogs.existing_dir(self.parent, self.settings, "folder", "Open folder", self._last_dir())
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
    def save_entry(self, entry, learn: bool = True) -> bool:
        """Save one image's corrections; on failure tell the user and keep them in memory.
        learn: its faces are finished (the person leaves the picture, saves by hand, closes) and
        teach the assisted correction; the autosave after each edit does not learn, or a face
        half corrected would teach its own followers."""
        if self.session.document.changed_on_disk(entry) and entry.dirty and self._take_theirs(entry):
            return True
        try:
            written = self.session.document.save(entry)
        except SaveError as exc:
            self.show_problem(f"{exc}. Your edits are kept in memory: File → Set output folder… "
                              "to save them somewhere writable.")
            return False
        if written and not learn:
            self._unlearned.add(entry)  # saved, not yet taught: it teaches when the person leaves it
        if learn and (written or entry in self._unlearned):
            self._unlearned.discard(entry)
            self.learn_from(entry)
        if written:
            made = self.session.document.backups
            kept = [p for p in made if not p.name.endswith(files.ORIGINAL_SUFFIX)]
            originals = [p for p in made if p.name.endswith(files.ORIGINAL_SUFFIX)]
            note = f"; the malformed file was kept as {', '.join(p.name for p in kept)}" if kept else ""
            if originals:
                note += f"; the annotation it had is kept as {', '.join(p.name for p in originals)}"
            theirs = self.session.document.outside_edits
            if theirs:
                self.show_problem(f"Another program changed {entry.path.stem}'s annotations while they were open "
                                    f"here: your edits are saved, theirs kept as {', '.join(p.name for p in theirs)}",
                                    entry.path)
            # an autosave does not hide what the person's last action just said (e.g. Delete's hint)
            if learn or made or not self.w.statusBar().currentMessage():
                self.say(f"Saved {', '.join(p.name for p in written)}{note}", 8000 if made else 3000)
            if kept and not entry.unreadable and self.message_bar.owner == entry.path:
                self.message_bar.clear()  # the malformed annotation is replaced by the saved one
        return True

    def _take_theirs(self, entry) -> bool:
        """Another program changed the files of a picture edited here: ask which version wins;
        the other is kept beside it either way. True when theirs was taken (nothing left to save)."""
        answer = QMessageBox.question(
            self.parent, "Changed by another program",
            f"{entry.path.name}'s annotations were changed by another program while you edited them here.\n\n"
            "Yes: keep your version (theirs is kept as NAME.pts.theirs).\n"
            "No: use theirs (yours is kept as NAME.pts.mine).")
        if answer == QMessageBox.StandardButton.Yes:
            return False
        try:
            mine = self.session.document.take_theirs(entry, self.labeller.num_points())
        except (SaveError, OSError) as exc:
            self.show_problem(f"{exc}. Your edits are kept in memory.")
            return True
        self.say(f"Using the other program's {entry.path.stem} annotations; yours kept as "
                 f"{', '.join(p.name for p in mine) or 'nothing (no file of yours differed)'}", 8000)
        return True

    def reload_if_changed(self, entry) -> None:
        """Showing a picture: files another program changed are read again when nothing was edited
        here (edited ones ask at their next save)."""
        doc = self.session.document
        if doc.changed_on_disk(entry) and not entry.dirty:
            problems = doc.reload(entry, self.labeller.num_points())
            self.say(f"{entry.path.name}: read again, another program changed its annotations"
                     + (f" ({'; '.join(problems)})" if problems else ""), 6000)

    def learn_from(self, entry) -> None:
        """Saved faces a person finished teach the assisted correction (one lesson per face);
        faces of the picture no longer finished (Ctrl+R, deleted) forget theirs."""
        doc = self.session.document
        human = [(doc.face_key(entry, f), f) for f in entry.faces if f.human]
        taught = {k for k, _ in human}
        rel = doc.picture_key(entry)
        names = [files.face_name(rel, k) for k in range(len(entry.faces) + len(entry.deleted))]
        self.assistant.forget([k for k in names if k not in taught])
        self.assistant.learn_faces(human)
        if self.assistant.folder_problem:
            self.show_problem(self.assistant.folder_problem)

    def autosave_current(self) -> bool:
        """Leaving the picture: save what is not on disk yet, and learn from its finished faces."""
        e = self.session.entry
        return self.save_entry(e) if e is not None else True

    def save_current(self) -> None:
        e = self.session.entry
        if e is None:
            return
        persons = any(f.human for f in e.faces) or bool(e.deleted)
        if not (persons or e.dirty or any(f.source == "person" for f in e.faces)):
            # Document.save writes only what a person did: say so rather than nothing
            self.say(f"Nothing to save on {e.path.name}: the model's points are written once you move, approve, "
                     "draw or delete a face", 5000)
            return
        if persons:
            self.session.document.mark_dirty(e)
        self.save_entry(e)

    def save_all(self, learn: bool = True) -> list[str]:
        failed = []
        for e in self.session.document.dirty_entries():
            if not self.save_entry(e, learn):
                failed.append(e.path.name)
        return failed

    def choose_output(self) -> None:
        folder = dialogs.existing_dir(self.parent, self.settings, "output", "Output folder for .pts files",
                                      self._last_dir())
        if not folder:
            return
        self.output_dir = Path(folder)
        self.session.document.set_output_dir(Path(folder))  # the corrections belong in the new folder too
        self.assistant.move_folder(self.session.document.annotation_folder())
        self.save_all()
        self.say(f"Saving into {folder}", 5000)

    def confirm_discard(self) -> bool:
        """Before the folder goes (closing, another folder): everything saved, and every picture
        the autosave wrote teaches now, as leaving it would have (the last picture, too)."""
        failed = self.save_all()
        for entry in list(self._unlearned):
            if not entry.dirty:  # saved as it is: its faces teach (one that failed to save does not)
                self._unlearned.discard(entry)
                self.learn_from(entry)
        if not failed:
            return True
        answer = QMessageBox.question(
            self.parent, "Unsaved corrections",
            f"Could not save {len(failed)} image(s) ({', '.join(failed[:5])}). Discard those corrections?")
        return answer == QMessageBox.StandardButton.Yes

    def confirm_close(self) -> bool:
        return self.confirm_discard()

    # --- export and batch work ----------------------------------------------------------------
    def export_training(self) -> None:
        self.save_all()
        folder = dialogs.existing_dir(self.parent, self.settings, "export", "Export training folder (image + .pts)",
                                      self._last_dir())
        if not folder:
            return
        answer = QMessageBox.question(
            self.parent, "Export", "Export approved faces only?\n(No = corrected and approved faces)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Cancel:
            return
        self.run_export(Path(folder), answer == QMessageBox.StandardButton.Yes)

    EXPORT_FORMATS = {"iBUG .pts folder": "pts", "COCO keypoints (.json)": "coco",
                      "labelme (a .json per picture)": "labelme", "CVAT for images 1.1 (.xml)": "cvat"}

    def export_as(self) -> None:
        label, ok = QInputDialog.getItem(self.parent, "Export as", "Format:", list(self.EXPORT_FORMATS), 1, False)
        if not ok:
            return
        fmt = self.EXPORT_FORMATS[label]
        if fmt in ("coco", "cvat"):
            suffix = ".json" if fmt == "coco" else ".xml"
            target = dialogs.save_file(self.parent, self.settings, "export", "Export as", self._last_dir(),
                                       f"annotations{suffix}", f"*{suffix}")
        else:
            target = dialogs.existing_dir(self.parent, self.settings, "export", "Export into folder", self._last_dir())
        if target:
            self.run_export(Path(target), fmt=fmt)

    def import_annotations(self) -> None:
        path = dialogs.open_file(self.parent, self.settings, "import", "Import annotations", self._last_dir(),
                                 "Annotations (*.json *.xml);;All files (*)")
        if path:
            self.import_from(Path(path))

    def import_folder(self) -> None:
        folder = dialogs.existing_dir(self.parent, self.settings, "import", "Import annotations from a folder",
                                      self._last_dir())
        if folder:
            self.import_from(Path(folder))

    def import_from(self, path: Path) -> int:
        from model.formats import FormatError, read_annotations

        try:
            images = read_annotations(path, self.session.document.root)
        except FormatError as exc:
            self.show_problem(f"Import failed: {exc}")
            return 0
        count, skipped = self.session.document.import_annotations(images)
        summary = f"Imported {count} face(s) from {path.name}"
        if skipped:  # the whole list, wrapped above the picture: the status bar would cut it off
            shown = ", ".join(skipped[:MAX_LISTED]) + (f" and {len(skipped) - MAX_LISTED} more"
                                                       if len(skipped) > MAX_LISTED else "")
            self.message_bar.show_message(f"{summary}; {len(skipped)} picture(s) left alone: {shown}", info=True)
            summary += f"; {len(skipped)} left alone (listed above the picture)"
        self.say(summary, 10000)
        return count

    def run_export(self, folder: Path, approved_only: bool = False, fmt: str | None = None) -> GeneratorWorker:
        """Export in a superqt thread worker; the progress dialog's Cancel stops it between two
        pictures (Document.export_* are generators yielding (done, total, name))."""
        dialog = QProgressDialog("Exporting…", "Cancel", 0, 0, self.parent)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        # the faces are copied here, on the GUI thread; the worker writes only the copy
        snapshot = self.session.document.export_snapshot(approved_only)
        worker = (create_worker(write_training, snapshot, self.session.document.root, folder, _start_thread=False)
                  if fmt is None else create_worker(write_export, snapshot, fmt, folder, _start_thread=False))

        def progress(v: tuple[int, int, str]) -> None:
            dialog.setMaximum(v[1])
            dialog.setValue(v[0])
            dialog.setLabelText(f"Exporting {v[2]}")

        def returned(n: int) -> None:
            dialog.reset()
            self.say(f"Exported {n} face(s) to {folder}", 8000)

        def aborted() -> None:
            dialog.reset()
            self.say("Export cancelled", 5000)

        def errored(exc: Exception) -> None:
            dialog.reset()
            self.show_problem(f"Export failed: {describe_error(exc)}")

        worker.yielded.connect(progress)
        worker.returned.connect(returned)
        worker.aborted.connect(aborted)
        worker.errored.connect(errored)
        dialog.canceled.connect(worker.quit)

        def finished() -> None:  # the reference kept the worker alive; None once it is done
            if self.export_worker is worker:
                self.export_worker = None

        worker.finished.connect(finished)
        self.export_worker = worker
        worker.start()
        return worker

    def predict_all(self) -> None:
        if self.labeller.predictor is None:
            self.show_problem("No model loaded: " + (self.labeller.model_error or "still loading"))
            return
        queued = [i for i in range(len(self.session.document)) if self.labeller.request(i, BATCH)]
        if not queued:
            self.say("Every image is already predicted", 4000)
            return
        dialog = QProgressDialog("Predicting…", "Cancel", 0, len(queued), self.parent)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        self.batch = {"dialog": dialog, "todo": {self.session.document.entries[i].path for i in queued}, "total": len(queued)}
        dialog.canceled.connect(self._cancel_batch)

    def _batch_progress(self, path: Path) -> None:
        """A picture's job ended (the pre-labeller's jobDone): Predict all's dialog follows."""
        b = self.batch
        if b is None:
            return
        b["todo"].discard(path)
        done = b["total"] - len(b["todo"])
        b["dialog"].setValue(done)
        if not b["todo"]:
            b["dialog"].reset()
            self.batch = None
            self.say(f"Predicted {done} image(s)", 5000)

    def _cancel_batch(self) -> None:
        self.labeller.cancel(lambda j: j.priority == BATCH)
        self.batch = None
        self.say("Batch prediction cancelled", 4000)

    def choose_checkpoint(self) -> None:
        # never the picture folder: where the last checkpoint came from, else ./checkpoints, else home
        here = Path.cwd() / "checkpoints"
        path = dialogs.open_file(self.parent, self.settings, "checkpoint", "Load checkpoint",
                                 str(here if here.is_dir() else Path.home()), "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.load_checkpoint(Path(path))

    def load_checkpoint(self, path: Path | None) -> None:
        """Switch models in the background; the old one keeps working until the new one is in."""
        self.labeller.load_model(path)
