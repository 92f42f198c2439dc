"""Editing actions of the main window: every change goes through an undo command."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QUndoGroup, QUndoStack
from PySide6.QtWidgets import QMenu, QMessageBox

from model.detect import drawn_box_to_landmark_box

from ..document import Face, FaceState, ImageEntry, Status, carry_faces
from .commands import FaceEdit, FaceListEdit
from .window_part import WindowPart, WindowServices

if TYPE_CHECKING:
    from model.layout import Layout

    from ..assist import Assistant
    from ..session import Session
    from .overlays import ResearchView
    from .prelabeller import PreLabeller

NUDGE_PX = 1.0
# keys 1-5 select a part group of the 68-point layout (model/layout.py's part names)
PART_KEYS = {"jaw": ("jaw",), "brows": ("right brow", "left brow"), "nose": ("nose bridge", "nostrils"),
             "eyes": ("right eye", "left eye"), "mouth": ("outer lips", "inner lips")}


class Editor(WindowPart):
    """What the user's edits do: point moves with the assisted correction's followers, approval,
    occlusion, reset, selection by point and part, face boxes, copy-previous, delete. Every
    change is an undo command that changes the document through the session.

    Given the model objects it works on (the session: picture, active face, selection; the
    assistant; the pre-labeller that runs the model on drawn and moved boxes; the research view;
    the settings and the undo group). The window, held weakly, lends only its services: its
    status bar, its action factory, the per-picture undo stacks, navigation and learning on save."""

    # its actions (made by build_edit_menu): the window and the views read their state from here
    undo_action: QAction
    redo_action: QAction
    assist_action: QAction
    box_action: QAction

    def __init__(self, window: WindowServices, session: Session, assistant: Assistant, labeller: PreLabeller,
                 research: ResearchView, settings: QSettings, undo_group: QUndoGroup) -> None:
        super().__init__(window)
        self.session, self.assistant, self.labeller, self.research = session, assistant, labeller, research
        self.settings, self.undo_group = settings, undo_group

    # --- the window's services ------------------------------------------------------------------
    def say(self, text: str, ms: int = 3000) -> None:
        self.w.statusBar().showMessage(text, ms)

    def make_action(self, *args, **kwargs) -> QAction:
        return self.w.action(*args, **kwargs)

    def stack_for(self, index: int) -> QUndoStack:
        return self.w.stack_for(index)

    def step_image(self, delta: int) -> None:
        self.w.step_image(delta)

    def learn_from(self, entry: ImageEntry) -> None:
        self.w.files.learn_from(entry)

    def layout(self) -> Layout | None:
        return self.w.layout

    def build_edit_menu(self, menu: QMenu) -> None:
        self.undo_action = self.undo_group.createUndoAction(self.parent, "Undo")
        self.undo_action.setShortcuts(["Ctrl+Z"])
        self.redo_action = self.undo_group.createRedoAction(self.parent, "Redo")
        self.redo_action.setShortcuts(["Ctrl+Shift+Z", "Ctrl+Y"])
        for act in (self.undo_action, self.redo_action):
            menu.addAction(act)
            self.parent.addAction(act)
        menu.addSeparator()
        self.make_action(menu, "Approve face", self.approve, "A",
                    tip="Mark the selected face (or every face of the image) as reviewed; again to undo approval")
        self.make_action(menu, "Approve and next image", self.approve_and_next, "Shift+A")
        self.make_action(menu, "Toggle occluded", self.toggle_occluded, "O",
                    tip="Mark the selected points as occluded (kept in the side file, not the .pts)")
        self.make_action(menu, "Reset face to prediction", self.reset_face, "Ctrl+R")
        menu.addSeparator()
        self.assist_action = self.make_action(
            menu, "Assisted correction: points follow a fix", self.toggle_assist, checkable=True,
            tip="After a drag, the face's points you have not placed move to where the model's typical errors "
                "say they probably are; the points you placed (diamonds) never move")
        self.assist_action.setChecked(self.settings.value("edit/assist", True, type=bool))
        self.make_action(menu, "Lock selected points", self.lock_selection, "L",
                      tip="The selected points are right as they are: they count as placed, so no follower moves "
                          "them (select a part with 1-5, then L)")
        self.make_action(menu, "Re-fit unplaced points", self.refit_face, "R",
                    tip="Move the points you have not placed to follow the ones you placed, now")
        menu.addSeparator()
        self.make_action(menu, "Select all points of the face", self.select_all, "Ctrl+A")
        self.make_action(menu, "Add mirrored points to selection", self.mirror_selection, "M",
                    tip="Also select the left/right counterparts of the selected points")
        part_menu = menu.addMenu("Select part")
        for key, (label, parts) in enumerate(PART_KEYS.items(), start=1):
            self.make_action(part_menu, f"Select {label}", lambda _=False, p=parts, n=label: self.select_part(p, n), str(key),
                        tip=f"Select the {label} of the face (or click on a part's line); Ctrl adds to the selection")
        self.make_action(menu, "Next face", self.next_face, "Tab")
        self.box_action = self.make_action(menu, "Draw face box", self.toggle_box_mode, "B", checkable=True,
                                      tip="Drag a rectangle around a face the detector missed")
        self.make_action(menu, "Delete face", self.delete_face, ["Delete", "Backspace"])
        self.make_action(menu, "Copy faces from the previous image", self.copy_previous_faces, "Ctrl+Shift+V",
                    tip="Place the previous image's points here (video frames, bursts): then correct them")
        self.make_action(menu, "Clear selection", self.clear_selection, "Esc")
        menu.addSeparator()
        for key, d in (("Alt+Left", (-1, 0)), ("Alt+Right", (1, 0)), ("Alt+Up", (0, -1)), ("Alt+Down", (0, 1))):
            self.make_action(menu, f"Nudge selection {key.split('+')[1].lower()}",
                        lambda _=False, d=d: self.nudge(*d), key)

    # --- helpers ----------------------------------------------------------------------------
    def active_face(self) -> Face | None:
        e = self.session.entry
        if e is None or not (0 <= self.session.active < len(e.faces)):
            return None
        return e.faces[self.session.active]

    def target_faces(self) -> list[Face]:
        """The active face, or every face of the image when none is selected."""
        face = self.active_face()
        if face is not None:
            return [face]
        return [f for f in self.session.entry.faces if f.points is not None] if self.session.entry else []

    def edit_face(self, face: Face, after: FaceState, text: str, drag_id: int | None = None) -> None:
        self.stack_for(self.session.current).push(FaceEdit(self.session, self.session.entry, face, face.state(), after, text,
                                                   drag_id, self.predict_face))

    # --- point edits --------------------------------------------------------------------------
    def on_points_dragged(self, index: int, new: np.ndarray, drag_id: int) -> None:
        e = self.session.entry
        if e is None or not (0 <= index < len(e.faces)):
            return
        face = e.faces[index]
        st = face.state()
        placed = st.placed | frozenset(self.session.selection)
        self.edit_face(face, replace(st, points=new.copy(), status=Status.CORRECTED, placed=placed),
                       "move points", drag_id)

    def on_drag_finished(self, index: int, moved: set[int], drag_id: int) -> None:
        """The drag ended: the face's unplaced points follow, in the same undo step."""
        e = self.session.entry
        if e is None or not (0 <= index < len(e.faces)):
            return
        face = e.faces[index]
        before = None if face.points is None else face.points.copy()
        if self.follow(face, drag_id):
            n = int((np.abs(face.points - before).max(1) > 0.5).sum())
            self.say(f"{n} point(s) you have not placed followed (Ctrl+Z takes back the drag "
                                         "and them; Edit -> Assisted correction turns this off)", 5000)

    def follow(self, face: Face, drag_id: int | None = None, text: str = "points follow") -> bool:
        """Move the face's unplaced points by the assisted-correction update (one undo step, merged
        into the drag's when drag_id is given). False when nothing moved."""
        if face.points is None or not face.placed:
            return False
        new = self.assistant.follow(face, face.points, set(face.placed))
        if np.array_equal(new, face.points):
            return False
        self.edit_face(face, replace(face.state(), points=new), text, drag_id)
        return True

    def nudge(self, dx: float, dy: float) -> None:
        face = self.active_face()
        if face is None or face.points is None or not self.session.selection:
            return
        new = face.points.copy()
        new[sorted(self.session.selection)] += (dx * NUDGE_PX, dy * NUDGE_PX)
        st = face.state()
        stack = self.stack_for(self.session.current)
        stack.beginMacro("nudge points")
        self.edit_face(face, replace(st, points=new, status=Status.CORRECTED,
                                     placed=st.placed | frozenset(self.session.selection)), "nudge points")
        self.follow(face)
        stack.endMacro()

    def refit_face(self) -> None:
        face = self.active_face()
        if face is None or not face.placed:
            self.say("Drag a point of a face first: R moves its other points to follow it", 3000)
            return
        if not self.assistant.enabled or not self.assistant.model.active:
            self.say(self.assistant.describe(), 4000)
            return
        moved = self.follow(face, text="re-fit unplaced points")
        self.say("Unplaced points re-fitted" if moved else
                                     "The points you have not placed already follow the ones you placed", 3000)

    def lock_selection(self) -> None:
        """A person checked these points: they count as placed (assisted correction never moves
        them), without moving them; L again on locked points unlocks those the model put there."""
        face = self.active_face()
        sel = frozenset(self.session.selection)
        if face is None or face.points is None or not sel:
            self.say("Select points first (a part with 1-5, or click / Shift+drag): L locks them",
                                           4000)
            return
        st = face.state()
        unlock = sel <= st.placed
        placed = st.placed - sel if unlock else st.placed | sel
        status = st.status if st.status != Status.PREDICTED or unlock else Status.CORRECTED
        self.edit_face(face, replace(st, placed=placed, status=status), "unlock points" if unlock else "lock points")
        self.say(
            f"{len(sel)} point(s) {'unlocked: followers may move them again' if unlock else 'locked: no follower moves them'}"
            " (Ctrl+Z takes it back)", 4000)

    def toggle_assist(self) -> None:
        on = self.assist_action.isChecked()
        self.settings.setValue("edit/assist", on)
        self.assistant.set_enabled(on)

    def reset_learned(self, confirm: bool = True) -> None:
        n = self.assistant.model.learned_count
        if confirm and n and QMessageBox.question(
                self.parent, "Reset learned corrections",
                f"Forget what the {n} finished face(s) of this folder taught the assisted correction? "
                "The lessons file is deleted; your annotations stay.") != QMessageBox.StandardButton.Yes:
            return
        self.assistant.reset_learned()
        self.say("Learned corrections reset: " + self.assistant.describe(), 5000)

    def approve(self) -> list[Face]:
        """Approve the selected face, or every face of the picture except those that need a
        deliberate look (ImageEntry.needs_a_look: the model doubts them, or the picture's edge
        cuts them): those are approved only when selected. Pressing it again on approved faces
        takes the approval back. Returns the faces left to look at."""
        faces = self.target_faces()
        if faces and all(f.status == Status.APPROVED for f in faces):
            self._set_approval(faces, approve=False)
            self.say(f"Approval taken back from {len(faces)} face(s)", 3000)
            return []
        return self._approve_sure([f for f in faces if f.status != Status.APPROVED], self.active_face() is not None)

    def _approve_sure(self, faces: list[Face], deliberate: bool) -> list[Face]:
        """Approve these faces but, unless deliberate (the face was selected), those that need a
        look; returns those."""
        left = [] if deliberate or self.session.entry is None else [f for f in faces if self.session.entry.needs_a_look(f)]
        faces = [f for f in faces if f not in left]
        if faces:
            self._set_approval(faces, approve=True)
        if left:
            self._say_left(left, len(faces))
        elif faces:
            self.say(f"{len(faces)} face(s) approved", 3000)
        return left

    def _set_approval(self, faces: list[Face], approve: bool) -> None:
        """One undo step. Taking an approval back restores what the face was: corrected when a
        person placed points on it (or it came from a file), else the model's prediction, so an
        approval never turns a face nobody edited into a corrected one."""
        stack = self.stack_for(self.session.current)
        stack.beginMacro("approve" if approve else "unapprove")
        for f in faces:
            edited = bool(f.placed) or f.annotation is not None or f.result is None
            status = Status.APPROVED if approve else (Status.CORRECTED if edited else Status.PREDICTED)
            self.edit_face(f, replace(f.state(), status=status), "approve" if approve else "unapprove")
        stack.endMacro()

    def _say_left(self, left: list[Face], approved: int) -> None:
        if left:
            self.say(
                f"{approved} face(s) approved; {len(left)} left for you to check (pink box or cut by the edge): "
                "look at it, then A approves the selected face", 8000)

    def approve_and_next(self) -> None:
        """Approve the picture's faces and go on; a face that needs a deliberate look stops it
        there, selected; pressed again, that face (looked at) is approved too. Never takes an
        approval back."""
        e, active = self.session.entry, self.active_face()
        self.session.set_active(-1)
        left: list[Face] = []
        if e is not None:
            if active is not None and active.status != Status.APPROVED and active.points is not None:
                self._approve_sure([active], deliberate=True)
            todo = [f for f in e.faces if f.status != Status.APPROVED and f.points is not None]
            left = self._approve_sure(todo, deliberate=False) if todo else []
        if left:
            self.session.set_active(self.session.entry.faces.index(left[0]))
            return
        here = self.session.current
        self.step_image(1)
        if self.session.current == here:  # the last picture of the list: say what is left
            counts = self.session.document.counts()
            open_ = sum(n for status, n in counts.items() if status != Status.APPROVED.value)
            self.say("Last picture of the list" + (
                f": {open_} picture(s) not approved yet (the list's filter finds them)" if open_ else
                ": every picture is approved"), 8000)

    def toggle_occluded(self) -> None:
        face = self.active_face()
        if face is None or not self.session.selection:
            self.say("Select points first (click, Ctrl+click or Shift+drag)", 3000)
            return
        sel = set(self.session.selection)
        occl = set(face.occluded)
        occl = occl - sel if sel <= occl else occl | sel
        st = face.state()
        status = st.status if st.status in (Status.CORRECTED, Status.APPROVED) else Status.CORRECTED
        self.edit_face(face, replace(st, status=status, occluded=frozenset(occl)), "toggle occluded")
        state = "occluded" if sel <= occl else "visible"
        self.say(f"{len(sel)} point(s) marked {state} (O again to undo that, Ctrl+Z)", 4000)

    def reset_face(self) -> None:
        faces = [f for f in self.target_faces() if f.result is not None]
        if not faces:
            self.say("No model prediction to reset to", 3000)
            return
        self.stack_for(self.session.current).beginMacro("reset to prediction")
        for f in faces:
            st = f.state()
            self.edit_face(f, replace(st, points=np.asarray(f.result.points, float).copy(), status=Status.PREDICTED,
                                      occluded=frozenset(), placed=frozenset()), "reset")
        self.stack_for(self.session.current).endMacro()
        # a face back to the model's points teaches nothing any more (the next save forgets its lesson)
        self.learn_from(self.session.entry)

    # --- selection ----------------------------------------------------------------------------
    def on_selection_changed(self) -> None:
        sel = self.session.selection
        part = next((p for p in (self.layout().parts if self.layout() else ()) if set(p.indices) == sel), None)
        if part is not None and len(sel) > 1:
            self.say(f"Selected the {part.name}: {len(sel)} points (drag one to move them all)",
                                         3000)
        if len(sel) == 1 and self.research.panel_shown("Heatmaps"):
            self.session.set_landmark(next(iter(sel)))

    def select_all(self) -> None:
        e = self.session.entry
        if not e or not e.faces:
            return
        if self.session.active < 0:
            self.session.set_active(0)
        face = self.active_face()
        if face is not None and face.points is not None:
            self.session.set_selection(set(range(len(face.points))))

    def select_part(self, parts: tuple[str, ...], label: str) -> None:
        """Select the points of these parts of the active face (the first face when none is)."""
        e, layout = self.session.entry, self.layout()
        if not e or not e.faces or layout is None:
            return
        if self.session.active < 0:
            self.session.set_active(0)
        face = self.active_face()
        if face is None or face.points is None or len(face.points) != layout.num_points:
            return
        indices = {i for p in layout.parts if p.name in parts for i in p.indices}
        if not indices:
            self.say(f"This face's layout has no {label}", 3000)
            return
        self.session.set_selection(indices)
        self.say(f"Selected the {label}: {len(indices)} points (drag one to move them all)", 3000)

    def mirror_selection(self) -> None:
        face = self.active_face()
        layout = self.layout()
        if face is None or layout is None or face.points is None or len(face.points) != layout.num_points:
            self.say("Select points of a face first: M adds their left/right counterparts", 3000)
            return
        before = len(self.session.selection)
        self.session.set_selection(self.session.selection | {layout.mirror[i] for i in self.session.selection})
        self.say(f"Selection: {before} -> {len(self.session.selection)} points "
                                     "(their mirrored counterparts added)", 3000)

    def clear_selection(self) -> None:
        self.session.set_box_mode(False)
        self.session.set_active(-1)

    def next_face(self) -> None:
        e = self.session.entry
        if e and e.faces:
            self.session.set_active((self.session.active + 1) % len(e.faces))

    # --- faces --------------------------------------------------------------------------------
    def toggle_box_mode(self) -> None:
        self.session.set_box_mode(self.box_action.isChecked())
        if self.session.box_mode:
            self.say("Drag a rectangle around the face (B again to stop)", 5000)

    def on_box_drawn(self, box: np.ndarray) -> None:
        e = self.session.entry
        if e is None:
            return
        # a drawn box frames the face as a detector's does: convert it to the network's convention
        face = Face(box=drawn_box_to_landmark_box(np.asarray(box, float)), source="person")
        self.stack_for(self.session.current).push(FaceListEdit(self.session, e, face, True))
        self.session.set_box_mode(False)
        self.session.set_active(e.faces.index(face))
        self.predict_face(e, face)

    def on_box_edited(self, index: int, box: np.ndarray) -> None:
        e = self.session.entry
        if e is None or not (0 <= index < len(e.faces)):
            return
        face = e.faces[index]
        st = face.state()
        self.edit_face(face, replace(st, box=np.asarray(box, float), source="person"), "move face box")
        if face.human:
            self.say("Box changed: the model runs again; your points stay "
                                         "(Ctrl+R takes the new prediction)", 6000)

    def predict_face(self, entry: ImageEntry | None, face: Face) -> None:
        """Run the model on one face box (drawn, moved, or moved back by undo)."""
        e = entry or self.session.entry
        if e is not None:
            self.labeller.predict_faces(e, [face])

    def copy_previous_faces(self) -> None:
        """The faces of the previous image in the list, copied here as corrected faces (a
        person chose to place them), as one undo step."""
        e, i = self.session.entry, self.session.current
        if e is None or i <= 0:
            self.say("No previous image to copy from", 3000)
            return
        prev = self.session.document.entries[i - 1]
        self.session.document.load_annotations(prev, self.labeller.num_points())
        faces = [f for f in prev.faces if f.points is not None]
        if not faces:
            self.say(f"{prev.path.name} has no faces to copy", 3000)
            return
        # each copy is fitted to the model's face of the same person here, which it replaces; a
        # picture of another size without such a face gets nothing (carry_faces)
        copies, skipped, covered = carry_faces(faces, prev.size, e.faces, e.size)
        if not copies and covered:
            self.say(f"Nothing copied: {'the face' if covered == 1 else f'{covered} faces'} of {prev.path.name} "
                     "would cover a face a person already corrected or approved here (delete that face first to "
                     "copy over it)", 8000)
            return
        if not copies:
            self.say(
                f"Nothing copied: {prev.path.name} is {self._size(prev)} and this picture {self._size(e)}, and no "
                "face found here matches its faces; wait for the model's faces here, or draw a box (B)", 8000)
            return
        stack = self.stack_for(i)
        stack.beginMacro(f"copy {len(copies)} face(s) from {prev.path.name}")
        for copy, replaced in copies:
            if replaced is not None:
                stack.push(FaceListEdit(self.session, e, replaced, False))
            stack.push(FaceListEdit(self.session, e, copy, True))
            self.predict_face(e, copy)  # the trace for the panels; a person's points stay as they are
        stack.endMacro()
        fitted = sum(r is not None for _, r in copies)
        note = f", {fitted} fitted to the model's face box here" if fitted else ", at the same place"
        note += f"; {skipped} skipped (no matching face here)" if skipped else ""
        note += f"; {covered} left out (a person's face is there)" if covered else ""
        self.say(f"Copied {len(copies)} face(s) from {prev.path.name}{note}: correct them, "
                                       "Ctrl+Z takes them back", 8000)

    @staticmethod
    def _size(entry: ImageEntry) -> str:
        return f"{entry.size[0]}x{entry.size[1]}" if entry.size else "of unknown size"

    def delete_face(self) -> None:
        face = self.active_face()
        if face is None:
            self.say("Click inside a face box first", 3000)
            return
        self.session.set_active(-1)
        self.stack_for(self.session.current).push(FaceListEdit(self.session, self.session.entry, face, False))
        self.say("Face deleted (Ctrl+Z brings it back)", 4000)

    def rerun_current(self) -> None:
        """Run the model again on the current image (e.g. after changing boxes)."""
        if self.session.entry is not None:
            self.labeller.rerun(self.session.current)
