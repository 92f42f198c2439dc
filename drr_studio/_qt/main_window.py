"""The main window: canvas in the middle, docks around it, menus and status bar, wired to the
session (what is shown) and the pre-labeller (the model's side, `prelabeller.py`).

The window builds widgets and wires them to the Qt-free model (drr_studio.session, .document,
.assist) and to three objects that carry out what the user asks: `Editor` (editing.py),
`FileActions` (files.py) and `ResearchView` (overlays.py, what the DRR panels draw). Further
features, such as fine-tuning, add their actions to `self.model_menu` from a separate module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoGroup, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from model.annotation_files import lock_folder, unlock_folder
from model.layout import Layout, can_mirror, layout_for
from model.options import MIRROR_AVERAGE
from model.resources import SAMPLE, resource

from ..assist import Assistant
from ..document import AUTOSAVE_MS, Document, ImageEntry
from ..session import Session
from .canvas import Canvas
from .editing import Editor
from .files import FileActions
from .help import ShortcutsDialog, show_about
from .image_list import ImageListPanel
from .overlays import ResearchView
from .panels import (
    HeatmapPanel,
    ImageAdjustPanel,
    InitPanel,
    MessageBar,
    RefinePanel,
    StatusLabel,
)
from .prelabeller import PreLabeller
from .review_panel import ReviewPanel, ReviewView
from .workers import Picture, default_factory

_GARBAGE_COLLECTOR = None  # one per process, see collect_garbage_on_the_gui_thread


def collect_garbage_on_the_gui_thread() -> None:
    """Python's cyclic collector runs in whatever thread happens to allocate, here often the
    prediction thread; when it frees a Qt object left in a reference cycle there, the process
    crashes (it did in the test suite). pyqtgraph's GarbageCollector turns automatic collection
    off and collects on a GUI-thread timer instead, once a second."""
    global _GARBAGE_COLLECTOR
    if _GARBAGE_COLLECTOR is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _GARBAGE_COLLECTOR = GarbageCollector(interval=1.0)


EXTENSIONS = ("drr_studio._qt.finetune",)  # installed when present, see _install_extensions
RESEARCH_DOCKS = ("Heatmaps", "Initialisation", "Refinement")  # closed at launch, whatever the saved layout


class MainWindow(QMainWindow):
    def __init__(self, paths: list[Path] | None = None, settings: QSettings | None = None,
                 factory: Callable[[Path | None], Any] = default_factory,
                 checkpoint: Path | None = None) -> None:
        super().__init__()
        collect_garbage_on_the_gui_thread()
        self.setWindowTitle("DRR Studio")
        self.settings = settings or QSettings("drr-studio", "DRR Studio")
        # the document, the picture shown, the active face and the selection, with the change
        # events the views subscribe to (see _subscribe)
        self.session = Session()
        self.output_dir: Path | None = None  # where .pts go; None = beside each image
        self.undo_group = QUndoGroup(self)
        self.stacks: dict[int, QUndoStack] = {}
        self.assistant = Assistant()  # assisted correction: after a drag the other points follow

        self.canvas = Canvas(self.session)
        self.canvas.point_px = self.settings.value("view/point_px", self.canvas.point_px, type=float)
        self.message_bar = MessageBar()
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.message_bar)
        lay.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self._build_panels()
        self._build_status_bar()
        # the setting lives in the session (the effective value); the menu and the model follow it
        self.session.set_mirror_average(self.settings.value("model/mirror_average", MIRROR_AVERAGE, type=bool))
        # the model's side: pictures, predictions and the model itself come from here
        self.labeller = PreLabeller(self.session, factory, mirror_average=self.session.mirror_average)
        # what the DRR panels draw on the canvas (overlays.py): given what it shows, it follows them itself
        self.research = ResearchView(self.session, self.canvas, self.docks, self.heat_panel, self.init_panel,
                                     self.refine_panel, lambda: self.labeller.predictor, self.labeller.refresh_trace)
        # what the user's actions do: edits (editing.py), files and batch work (files.py)
        self.editor = Editor(self, self.session, self.assistant, self.labeller, self.research, self.settings,
                             self.undo_group)
        self.files = FileActions(self, self.session, self.assistant, self.labeller, self.settings, self.message_bar)
        self._build_menus()
        self.assistant.enabled = self.editor.assist_action.isChecked()
        self._connect()
        self._subscribe()

        self._connect_labeller()
        self.research.subscribe()  # after _subscribe: the canvas has its faces before the overlays are drawn
        self.labeller.pictureChanged.connect(lambda _: self.research.update_overlays())
        self.labeller.load_model(checkpoint)

        self._install_extensions()
        self._restore_layout()
        for name in RESEARCH_DOCKS:  # research overlays start off on each launch (annotation first)
            self.docks[name].hide()
        if paths:
            self.files.open_paths(paths)

    # --- construction -------------------------------------------------------------------------
    def _build_panels(self) -> None:
        """The image list, the research panels, the review and the image adjustments, as docks."""
        self.image_panel = ImageListPanel()
        self.heat_panel = HeatmapPanel()
        self.init_panel = InitPanel()
        self.refine_panel = RefinePanel()
        self.review_panel = ReviewPanel()
        self.adjust_panel = ImageAdjustPanel()
        # every edit reaches disk shortly after it (debounced: a drag is one save, not hundreds)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(lambda: self.files.save_all(learn=False))
        self._locked: Path | None = None  # the annotation folder this app claimed (model.annotation_files.lock_folder)
        self.docks: dict[str, QDockWidget] = {}
        self._add_dock("Images", self.image_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Heatmaps", self.heat_panel, Qt.DockWidgetArea.RightDockWidgetArea, visible=False)
        self._add_dock("Initialisation", self.init_panel, Qt.DockWidgetArea.RightDockWidgetArea, visible=False)
        self._add_dock("Refinement", self.refine_panel, Qt.DockWidgetArea.RightDockWidgetArea, visible=False)
        self._add_dock("Review", self.review_panel, Qt.DockWidgetArea.RightDockWidgetArea, visible=False)
        self._add_dock("Image adjustments", self.adjust_panel, Qt.DockWidgetArea.LeftDockWidgetArea, visible=False)
        # the research panels share one column; the canvas keeps most of the width
        self.tabifyDockWidget(self.docks["Heatmaps"], self.docks["Initialisation"])
        # wide enough for "name.jpg*   [bad annotation file]"; a saved layout may change it
        self.resizeDocks([self.docks["Images"], self.docks["Refinement"]], [320, 330], Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        # permanent fields of a bounded width: the status bar's messages keep the rest
        self.status_model = StatusLabel("Model: loading…", 300)
        self.status_busy = QLabel()
        self.status_pos = StatusLabel("", 300)
        self.status_assist = StatusLabel("", 280)  # "assisted correction: learned from N faces", always in view
        self.status_assist.setToolTip("Edit -> Assisted correction; Model -> Reset learned corrections")
        for w in (self.status_busy, self.status_pos, self.status_assist, self.status_model):
            self.statusBar().addPermanentWidget(w)

    def _add_dock(self, title: str, widget: QWidget, area, visible: bool = True) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        dock.setVisible(visible)
        self.docks[title] = dock

    def action(self, menu: QMenu, text: str, slot: Callable, shortcut: str | QKeySequence | list | None = None,
               tip: str = "", checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(k) for k in keys])
        act.setStatusTip(tip)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)  # shortcuts work whatever has the focus
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.edit_menu = bar.addMenu("&Edit")
        self.view_menu = bar.addMenu("&View")
        self.go_menu = bar.addMenu("&Go")
        self.model_menu = bar.addMenu("&Model")
        self.help_menu = bar.addMenu("&Help")
        self.files.build_file_menu(self.file_menu)
        self.editor.build_edit_menu(self.edit_menu)
        for dock in self.docks.values():
            self.view_menu.addAction(dock.toggleViewAction())
        self.view_menu.addSeparator()
        self.ghost_action = self.action(self.view_menu, "Model prediction beside annotations", self._toggle_ghost,
                                        checkable=True,
                                        tip="Draw the model's points (red x) on faces a human annotated")
        self.ghost_action.setChecked(True)
        self.action(self.view_menu, "Fit picture", self.fit_picture, "F")
        self.action(self.view_menu, "Zoom to face", self.zoom_to_face, "Z",
                    tip="The selected face (or the first) fills the view")
        self.action(self.view_menu, "Reset image adjustments", self.session.reset_display, "Ctrl+0",
                    tip="Brightness, contrast and gamma back to the picture as it is (View -> Image adjustments)")
        self.action(self.view_menu, "Larger points", lambda: self.change_point_size(2), "Ctrl+=")
        self.action(self.view_menu, "Smaller points", lambda: self.change_point_size(-2), "Ctrl+-")
        self.action(self.go_menu, "Next image", lambda: self.step_image(1), ["PgDown", "Ctrl+Right"])
        self.action(self.go_menu, "Previous image", lambda: self.step_image(-1), ["PgUp", "Ctrl+Left"])
        self.action(self.go_menu, "Next refinement step", lambda: self.step_refinement(1), "]")
        self.action(self.go_menu, "Previous refinement step", lambda: self.step_refinement(-1), "[")
        self.action(self.model_menu, "Load checkpoint…", self.files.choose_checkpoint,
                    tip="Switch to another trained model; untouched faces are predicted again")
        self.action(self.model_menu, "Default model", lambda: self.files.load_checkpoint(None),
                    tip="Back to the model shipped with DRR Studio; untouched faces are predicted again")
        self.action(self.model_menu, "Predict all images…", self.files.predict_all, "Ctrl+P")
        self.action(self.model_menu, "Re-run on this image", self.editor.rerun_current, "Ctrl+Shift+R")
        self.action(self.model_menu, "Reset learned corrections", self.editor.reset_learned,
                    tip="Forget what the faces finished in this folder taught the assisted correction")
        self.model_menu.addSeparator()
        self.mirror_action = self.action(
            self.model_menu, "Average with the mirrored face", self._toggle_mirror, checkable=True,
            tip="Also run each face mirrored and average the two shapes at every step: more accurate "
                "points for about twice the model's time per face (unavailable for a model whose points "
                "have no left/right order)")
        self.mirror_action.setChecked(self.session.mirror_average)
        self.action(self.help_menu, "Keyboard shortcuts", lambda: ShortcutsDialog(self).exec(), "F1")
        self.action(self.help_menu, "About DRR Studio", lambda: show_about(self))

    def _install_extensions(self) -> None:
        """Optional feature modules (e.g. `drr_studio._qt.finetune`) add their actions here: each
        defines `install(window)`. A broken extension is reported, never fatal."""
        for name in EXTENSIONS:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    self.show_problem(f"Extension {name} not loaded: {exc}")
                continue
            try:
                module.install(self)
            except Exception as exc:  # noqa: BLE001 - the main window must still open
                self.show_problem(f"Extension {name} failed: {exc.__class__.__name__}: {exc}")

    def _connect(self) -> None:
        self.image_panel.imageChosen.connect(self.go_to)
        self.canvas.pointsDragged.connect(self.editor.on_points_dragged)
        self.canvas.dragFinished.connect(self.editor.on_drag_finished)
        self.assistant.changed.connect(lambda text: self.status_assist.setText(text.capitalize()))
        self.canvas.boxDrawn.connect(self.editor.on_box_drawn)
        self.canvas.boxEdited.connect(self.editor.on_box_edited)
        self.canvas.selectionChanged.connect(self.editor.on_selection_changed)
        self.canvas.hoverText.connect(self.status_pos.setText)
        # the landmark shown is the session's: the panel edits it, and follows it (a point clicked)
        self.heat_panel.changed.connect(lambda: self.session.set_landmark(self.heat_panel.landmark_index()))
        self.adjust_panel.changed.connect(lambda changes: self.session.set_display(**changes))
        self.adjust_panel.reset.connect(self.session.reset_display)
        self.heat_panel.opacity.valueChanged.connect(lambda v: self.canvas.research.set_heat_opacity(v / 100))
        self.refine_panel.stepChanged.connect(self.session.set_step)  # the step shown is the session's

    def _connect_labeller(self) -> None:
        """The model's side reports through a few Qt signals; it follows the mirror setting."""
        self.labeller.pictureChanged.connect(self._picture_changed)
        self.labeller.problem.connect(self.show_problem)
        self.labeller.message.connect(self.statusBar().showMessage)
        self.labeller.modelStatus.connect(self._model_status)
        self.labeller.modelReady.connect(self._model_ready)
        self.labeller.busyChanged.connect(self.status_busy.setText)
        self.session.mirror_changed.connect(self.labeller.set_mirror_average)

    def _subscribe(self) -> None:
        """The views follow the session's events (the document announces every change of a
        picture through it): its row, the canvas and the review follow."""
        self.session.entry_changed.connect(self._entry_changed)
        self.image_panel.show_session(self.session)  # the list follows the session itself
        self.session.mirror_changed.connect(lambda on: self.mirror_action.setChecked(on))
        self.session.display_changed.connect(self.adjust_panel.show_adjust)  # the canvas follows it too
        self.session.landmark_changed.connect(lambda k: self.heat_panel.choose_landmark(k))
        self.session.box_mode_changed.connect(lambda on: self.editor.box_action.setChecked(on))
        self.session.dirty_changed.connect(lambda dirty: self.setWindowModified(dirty))  # "*" in the title: unsaved edits
        self.session.dirty_changed.connect(lambda dirty: dirty and self._autosave_timer.start())
        self.session.entry_changed.connect(lambda _: self.session.dirty and self._autosave_timer.start())
        # the review follows the session itself: the list's order, the Review dock, the canvas's rings
        self.reviewer = ReviewView(self.session, self.image_panel, self.review_panel, self.docks["Review"],
                                   self.canvas, lambda: self.layout, self)

    def _entry_changed(self, index: int) -> None:
        entry = self.document.entries[index]
        if index == self.current:
            self.canvas.set_faces(entry.faces, self.layout)  # then the research view (subscribed after)

    # --- state helpers ------------------------------------------------------------------------
    @property
    def document(self) -> Document:
        return self.session.document

    @property
    def current(self) -> int:
        """Index of the picture shown (-1: none), Session.current."""
        return self.session.current

    @property
    def entry(self) -> ImageEntry | None:
        return self.session.entry

    @property
    def predictor(self) -> Any:
        """The model in use (None while the first one loads), PreLabeller.predictor."""
        return self.labeller.predictor

    @property
    def layout(self) -> Layout | None:
        if self.predictor is not None:
            return self.predictor.layout
        e = self.entry
        if e and e.faces and e.faces[0].points is not None:
            return layout_for(len(e.faces[0].points))
        return layout_for(68)

    def num_points(self) -> int | None:
        return self.labeller.num_points()

    def current_image(self) -> Picture | None:
        return self.labeller.picture(self.entry)

    def show_picture(self, picture: Picture | None, reset_view: bool = True) -> None:
        if picture is None:
            self.canvas.set_image(None)
        else:
            self.canvas.set_image(picture.display, picture.scale, reset_view)

    def fit_picture(self) -> None:
        self.show_picture(self.current_image())

    def zoom_to_face(self) -> None:
        e = self.entry
        if e is None or not e.faces:
            self.statusBar().showMessage("No face on this picture to zoom to", 3000)
            return
        face = e.faces[self.canvas.active] if 0 <= self.canvas.active < len(e.faces) else e.faces[0]
        self.canvas.zoom_to(face.box)

    def change_point_size(self, delta: float) -> None:
        self.canvas.set_point_size(self.canvas.point_px + delta)
        self.settings.setValue("view/point_px", self.canvas.point_px)
        self.statusBar().showMessage(f"Points drawn {self.canvas.point_px:.0f} px wide", 2000)

    def stack_for(self, index: int) -> QUndoStack:
        if index not in self.stacks:
            stack = QUndoStack(self.undo_group)
            stack.setUndoLimit(500)
            self.stacks[index] = stack
        return self.stacks[index]

    def show_problem(self, text: str, picture: Path | None = None) -> None:
        """A problem the user must see; with picture, a problem of that picture only."""
        self.message_bar.show_message(text, picture)
        self.statusBar().showMessage(text, 8000)

    # --- navigation ---------------------------------------------------------------------------
    def set_document(self, document: Document) -> None:
        self.labeller.cancel()
        self.message_bar.clear()  # the old folder's problems are not the new one's
        document.peek_statuses()  # reopened folders show their approved and corrected pictures at once
        self.session.set_document(document)  # the image list and the canvas follow
        self.stacks.clear()
        for stack in self.undo_group.stacks():
            self.undo_group.removeStack(stack)
        self._claim_folder(document.annotation_folder())
        self.assistant.open_folder(document.annotation_folder())
        if self.assistant.folder_problem:
            self.show_problem(self.assistant.folder_problem)
        self.canvas.set_faces([], None)
        self.canvas.set_image(None)
        if len(document):
            self.go_to(0)
        else:
            self.show_problem("No images to show: open a folder or image files (File menu).")

    def _claim_folder(self, folder: Path | None) -> None:
        """Tell the user when another running app edits the same folder (both would save it)."""
        if self._locked is not None:
            unlock_folder(self._locked)
        # the shipped sample's folder is the package's own (nobody annotates it for real): no lock there
        shipped = folder is not None and folder.resolve() == resource(SAMPLE).parent.resolve()
        self._locked = None if shipped else folder
        warning = lock_folder(folder) if self._locked is not None else None
        if warning:
            self.show_problem(warning)

    def step_image(self, delta: int) -> None:
        rows = self.image_panel.visible_rows() or list(range(len(self.document)))
        if not rows:
            return
        if self.current in rows:
            k = rows.index(self.current) + delta
        else:
            k = next((i for i, r in enumerate(rows) if r > self.current), len(rows)) - (delta < 0)
        self.go_to(rows[max(0, min(len(rows) - 1, k))])

    def go_to(self, index: int) -> None:
        if not (0 <= index < len(self.document)) or index == self.current:
            return
        self.files.autosave_current()
        self.session.set_current(index)  # no face active, nothing selected
        entry = self.entry
        if self.message_bar.owner is not None and self.message_bar.owner != entry.path:
            self.message_bar.clear()  # that problem belongs to the picture left behind
        problems = self.document.load_annotations(entry, self.num_points())
        self.files.reload_if_changed(entry)  # another program changed its files since: read them again
        if problems:
            self.show_problem("Annotation problem: " + "; ".join(problems), entry.path)
        elif entry.error:  # back on a picture with a known problem: say it again
            self.show_problem(entry.error, entry.path)
        self.undo_group.setActiveStack(self.stack_for(index))
        place = self.image_panel.place_of(index)  # where it is in the list as shown (its order, its filter)
        where = f"{place[0]}/{place[1]}" if place else f"{index + 1}/{len(self.document)}"
        self.setWindowTitle(f"DRR Studio — {entry.path.name} ({where})[*]")
        self.show_picture(self.labeller.picture(entry))
        self.refresh(entry)
        self.labeller.shown(index)

    # --- what the pre-labeller reports ------------------------------------------------------
    def _picture_changed(self, index: int) -> None:
        self.show_picture(self.labeller.picture(self.document.entries[index]))

    def _model_status(self, text: str, tip: str) -> None:
        self.status_model.setText(text)
        self.status_model.setToolTip(tip)

    def _model_ready(self, predictor: Any) -> None:
        self.refine_panel.set_steps(int(predictor.config.steps))
        self.assistant.set_checkpoint(getattr(predictor, "path", None), int(predictor.config.num_points))
        if self.assistant.prior_problem and getattr(predictor, "path", None) is not None:
            self.statusBar().showMessage(self.assistant.prior_problem + ": only the dragged points move", 8000)
        self.heat_panel.landmark.setRange(1, int(predictor.config.num_points))
        # a model that cannot mirror: the menu says so (unticked, disabled); the person's choice stays
        self.mirror_action.setEnabled(can_mirror(predictor.layout))
        self.session.set_mirror_possible(can_mirror(predictor.layout))

    def refresh(self, entry: ImageEntry) -> None:
        """After any change to an entry (edits, undo): announce it, the views follow."""
        self.session.touch(entry)

    def _toggle_mirror(self) -> None:
        """The person's choice, kept in the settings; the session holds the effective value, and
        the model follows its event like a model switch (untouched faces predicted again)."""
        on = self.mirror_action.isChecked()
        self.settings.setValue("model/mirror_average", on)
        self.session.set_mirror_average(on)

    def _toggle_ghost(self) -> None:
        self.canvas.show_ghost = self.ghost_action.isChecked()
        if self.entry:
            self.refresh(self.entry)

    def step_refinement(self, delta: int) -> None:
        """[ and ]: show the Refinement panel and its step view, and step."""
        if not self.docks["Refinement"].isVisible():
            self.docks["Refinement"].show()
        self.refine_panel.enabled.setChecked(True)
        s = self.refine_panel.slider
        s.setValue(max(s.minimum(), min(s.maximum(), s.value() + delta)))

    # --- the window's own layout ----------------------------------------------------------------
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

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self.files.confirm_close():
            event.ignore()
            return
        self._save_layout()
        self.labeller.stop()
        if self._locked is not None:
            unlock_folder(self._locked)
        event.accept()

