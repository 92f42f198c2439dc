"""Undo commands. Every user edit of a picture's face is a before/after `FaceState` snapshot, so one
command class covers moves, approval, reset, occlusion and the assisted correction's followers; a
whole drag merges into one step. The commands change the document only through the session's
edit methods (Session.set_face_state, insert_face, remove_face), which announce the change: the
views follow that event, nothing here refreshes them. A clip's face is the same (ClipFaceEdit,
through ClipDocument.set_face_state)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from ..clip_document import ClipDocument, ClipFaceState
from ..document import Face, FaceState, ImageEntry
from ..session import Session

MERGE_DRAG = 4711


class FaceEdit(QUndoCommand):
    """Change one face from `before` to `after`. With `drag_id`, consecutive commands of the
    same drag merge, so that undo takes back the whole drag."""

    def __init__(self, session: Session, entry: ImageEntry, face: Face, before: FaceState, after: FaceState,
                 text: str, drag_id: int | None = None,
                 repredict: Callable[[ImageEntry, Face], None] | None = None) -> None:
        super().__init__(text)
        self.session, self.entry, self.face = session, entry, face
        self.before, self.after = before, after
        self.drag_id = drag_id
        self.repredict = repredict  # runs the model again when a step changes the face box

    def id(self) -> int:  # noqa: A003 - Qt's name
        return MERGE_DRAG if self.drag_id is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, FaceEdit) or other.drag_id != self.drag_id or other.face is not self.face:
            return False
        self.after = other.after
        return True

    def _apply(self, state: FaceState) -> None:
        if self.session.set_face_state(self.entry, self.face, state) and self.repredict is not None:
            self.repredict(self.entry, self.face)  # the trace belonged to the other box (Document.unpredict)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class FaceListEdit(QUndoCommand):
    """Add or remove a face (a drawn box, a deleted false detection, a copied face)."""

    def __init__(self, session: Session, entry: ImageEntry, face: Face, add: bool) -> None:
        super().__init__("add face" if add else "delete face")
        self.session, self.entry, self.face, self.add = session, entry, face, add
        self.index = len(entry.faces) if add else entry.faces.index(face)

    def redo(self) -> None:
        if self.add:
            self.session.insert_face(self.entry, self.face, self.index)
        else:
            self.session.remove_face(self.entry, self.face)

    def undo(self) -> None:
        if self.add:
            self.session.remove_face(self.entry, self.face, remember=False)
        else:
            self.session.insert_face(self.entry, self.face, self.index)


class ClipFaceEdit(QUndoCommand):
    """One change of a clip's face on a frame (a drag, an approval, a deletion), already made
    when pushed: undo puts `before` back and redo the face as undo found it
    (ClipDocument.set_face_state); `restored(frame, text, undone)` runs after either (the window
    shows that frame and says what was undone or redone)."""

    def __init__(self, doc: ClipDocument, track: int, frame: int, before: ClipFaceState, after: ClipFaceState,
                 text: str, restored: Callable[[int, str, bool], None] | None = None) -> None:
        super().__init__(text)
        self.doc, self.track, self.frame, self.before, self.after = doc, track, frame, before, after
        self.restored = restored
        self._made = True  # QUndoStack.push calls redo(): the change is already there

    def _apply(self, state: ClipFaceState, undone: bool) -> None:
        self.doc.set_face_state(self.track, state)
        if self.restored is not None:
            self.restored(self.frame, self.text(), undone)

    def redo(self) -> None:
        if self._made:
            self._made = False
            return
        self._apply(self.after, False)

    def undo(self) -> None:
        # what redo puts back: the face as it is now, frames re-tracked after the change included
        self.after = self.doc.face_state(self.track)
        self._apply(self.before, True)
