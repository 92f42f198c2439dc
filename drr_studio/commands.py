"""Undo commands. Every user edit of a face is a before/after `FaceState` snapshot, so one
command class covers moves, approval, reset and occlusion; a whole drag merges into one step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtGui import QUndoCommand

from .document import Face, FaceState, ImageEntry

MERGE_DRAG = 4711


class FaceEdit(QUndoCommand):
    """Change one face from `before` to `after`. With `drag_id`, consecutive commands of the
    same drag merge, so that undo takes back the whole drag."""

    def __init__(self, entry: ImageEntry, face: Face, before: FaceState, after: FaceState, text: str,
                 refresh: Callable[[ImageEntry], None], drag_id: int | None = None,
                 repredict: Callable[[ImageEntry, Face], None] | None = None) -> None:
        super().__init__(text)
        self.entry, self.face = entry, face
        self.before, self.after = before, after
        self.refresh = refresh
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
        moved = not np.array_equal(self.face.box, state.box)
        self.face.restore(state)
        self.entry.dirty = True  # undoing back to what is on disk still re-saves: always correct
        if moved and self.repredict is not None:
            self.face.result = None  # the trace belonged to the other box
            self.repredict(self.entry, self.face)
        self.refresh(self.entry)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class FaceListEdit(QUndoCommand):
    """Add or remove a face (a drawn box, a deleted false detection)."""

    def __init__(self, entry: ImageEntry, face: Face, add: bool, refresh: Callable[[ImageEntry], None]) -> None:
        super().__init__("add face" if add else "delete face")
        self.entry, self.face, self.add = entry, face, add
        self.index = len(entry.faces) if add else entry.faces.index(face)
        self.refresh = refresh

    def _insert(self) -> None:
        self.entry.faces.insert(min(self.index, len(self.entry.faces)), self.face)

    def _remove(self) -> None:
        if self.face in self.entry.faces:
            self.entry.faces.remove(self.face)

    def redo(self) -> None:
        self._insert() if self.add else self._remove()
        self.entry.dirty = True
        self.refresh(self.entry)

    def undo(self) -> None:
        self._remove() if self.add else self._insert()
        self.entry.dirty = True
        self.refresh(self.entry)
