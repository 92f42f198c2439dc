"""The editing session: which picture is shown, which face is active, which of its points are
selected and which refinement step the panels show, over one `Document`.

Plain Python, no Qt (like napari's viewer model): every change is announced with a psygnal
event, and the views (image list, canvas, panels, review) subscribe to what they draw, so
that nothing has to remember to refresh them. Pictures change only through the document's
methods (Document.entry_changed announces each); the session relays them as
`entry_changed(index)`, with whether the folder has unsaved changes (`dirty_changed`). The undo
commands call the session's edit methods (set_face_state, insert_face, remove_face), which go
to the document.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
from psygnal import Signal

from model.options import MIRROR_AVERAGE

from .document import Document, Face, FaceState, ImageEntry


@dataclass(frozen=True)
class ImageAdjust:
    """How the picture is shown (never how it is saved or what the model sees): brightness
    added (-1..1 of the full range), contrast around mid-grey, then gamma (> 1 lightens the
    shadows, where a dark eye corner hides)."""

    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0

    @property
    def identity(self) -> bool:
        return self == ImageAdjust()

    def lut(self) -> np.ndarray:
        """(256,) uint8 lookup table of the adjustment."""
        x = np.arange(256, dtype=np.float64) / 255.0
        x = (x - 0.5) * self.contrast + 0.5 + self.brightness
        x = np.clip(x, 0.0, 1.0) ** (1.0 / max(self.gamma, 1e-3))
        return np.round(x * 255.0).astype(np.uint8)


class Session:
    document_changed = Signal()  # another document (a folder opened): views rebuild
    entry_changed = Signal(int)  # picture i's faces, points, status or error changed
    current_changed = Signal(int)  # the picture shown (-1: none)
    face_changed = Signal(int)  # the active face of the current picture (-1: none)
    selection_changed = Signal()  # the selected points of the active face
    step_changed = Signal(int)  # the refinement step the panels show
    display_changed = Signal(object)  # the ImageAdjust the picture is shown with
    dirty_changed = Signal(bool)  # the folder has (True) or no longer has edits not yet saved
    box_mode_changed = Signal(bool)  # a drag draws a face box (B) instead of panning or selecting
    landmark_changed = Signal(object)  # the landmark whose heatmap is shown (None: all of them)
    mirror_changed = Signal(bool)  # the effective mirror averaging: asked for and possible with the model

    def __init__(self, document: Document | None = None) -> None:
        self.document = document or Document([])
        self.current = -1
        self.active = -1
        self.selection: frozenset[int] = frozenset()
        self.step = 0
        self.display = ImageAdjust()
        self._dirty = False
        # the pictures seen with unsaved edits, from the document's events: the dirty check costs
        # O(such pictures), not O(pictures) on every change (10,000 pictures opened in 10^8 reads)
        self._dirty_entries: dict[int, ImageEntry] = {}
        self.box_mode = False
        self.landmark: int | None = None
        self.mirror_wanted = MIRROR_AVERAGE  # what the person chose (kept when a model cannot mirror)
        self.mirror_possible = True  # the model in use has a left/right order of points
        self.document.entry_changed.connect(self._relay)

    def _relay(self, entry: ImageEntry) -> None:
        self._note_dirty(entry)
        i = self.document.index_of(entry)
        if i >= 0:
            self.entry_changed.emit(i)
        self._check_dirty()

    @property
    def entry(self) -> ImageEntry | None:
        return self.document.entries[self.current] if 0 <= self.current < len(self.document) else None

    def set_document(self, document: Document) -> None:
        self.document.entry_changed.disconnect(self._relay)
        self.document = document
        document.entry_changed.connect(self._relay)
        self.current, self.active, self.selection = -1, -1, frozenset()
        self._rescan_dirty()
        self.document_changed.emit()
        self._check_dirty()

    def set_current(self, index: int) -> None:
        """Show picture index; its face and point selection start empty."""
        if index == self.current:
            return
        self.current = index
        self.active, self.selection = -1, frozenset()
        self.current_changed.emit(index)

    def set_active(self, face: int, selection: set[int] | frozenset[int] = frozenset()) -> None:
        changed_face = face != self.active
        changed_sel = frozenset(selection) != self.selection
        self.active, self.selection = face, frozenset(selection)
        if changed_face:
            self.face_changed.emit(face)
        if changed_sel or changed_face:
            self.selection_changed.emit()

    def set_selection(self, selection: set[int] | frozenset[int]) -> None:
        if frozenset(selection) != self.selection:
            self.selection = frozenset(selection)
            self.selection_changed.emit()

    def set_step(self, step: int) -> None:
        if step != self.step:
            self.step = step
            self.step_changed.emit(step)

    def set_box_mode(self, on: bool) -> None:
        if bool(on) != self.box_mode:
            self.box_mode = bool(on)
            self.box_mode_changed.emit(self.box_mode)

    def set_landmark(self, index: int | None) -> None:
        """The landmark whose conv8 map the Heatmaps panel shows (0-based; None: the maximum
        over all of them)."""
        if index != self.landmark:
            self.landmark = index
            self.landmark_changed.emit(index)

    @property
    def mirror_average(self) -> bool:
        """Mirror averaging as the model runs: asked for, and possible with this model."""
        return self.mirror_wanted and self.mirror_possible

    def set_mirror_average(self, wanted: bool) -> None:
        before = self.mirror_average
        self.mirror_wanted = bool(wanted)
        if self.mirror_average != before:
            self.mirror_changed.emit(self.mirror_average)

    def set_mirror_possible(self, possible: bool) -> None:
        """The model in use can (not) mirror: the effective value follows, the choice is kept."""
        before = self.mirror_average
        self.mirror_possible = bool(possible)
        if self.mirror_average != before:
            self.mirror_changed.emit(self.mirror_average)

    def set_display(self, **changes: float) -> None:
        """Change how the picture is shown (ImageAdjust's fields); for the view only."""
        new = replace(self.display, **changes)
        if new != self.display:
            self.display = new
            self.display_changed.emit(new)

    def reset_display(self) -> None:
        if not self.display.identity:
            self.display = ImageAdjust()
            self.display_changed.emit(self.display)

    # --- edits: the undo commands and the pre-labeller change pictures through these ---------
    def set_face_state(self, entry: ImageEntry, face: Face, state: FaceState) -> bool:
        """A face to a FaceState (points, status, occluded, box, placed, source): an edit, so
        the picture has unsaved changes. Returns whether the box changed (the model must run
        again on it)."""
        return self.document.set_face_state(entry, face, state)

    def insert_face(self, entry: ImageEntry, face: Face, index: int | None = None) -> None:
        self.document.insert_face(entry, face, index)

    def remove_face(self, entry: ImageEntry, face: Face, remember: bool = True) -> None:
        """Delete a face; the deletion is saved, so no prediction brings it back (remember False:
        an addition undone, see Document.delete_face)."""
        self.document.delete_face(entry, face, remember)

    def set_picture_size(self, entry: ImageEntry, size: tuple[int, int]) -> None:
        self.document.set_size(entry, size)

    def touch(self, entry: ImageEntry | int) -> None:
        """Announce that this picture's faces, points, status or error changed."""
        i = entry if isinstance(entry, int) else self.index_of(entry)
        if 0 <= i < len(self.document):
            self._note_dirty(self.document.entries[i])
            self.entry_changed.emit(i)
        self._check_dirty()

    def touch_all(self) -> None:
        self._rescan_dirty()
        for i in range(len(self.document)):
            self.entry_changed.emit(i)
        self._check_dirty()

    @property
    def dirty(self) -> bool:
        """Some picture has edits not yet saved (as announced: a change is announced with
        touch() or by the document's events)."""
        for key in [k for k, e in self._dirty_entries.items() if not e.dirty]:
            del self._dirty_entries[key]
        return bool(self._dirty_entries)

    def _note_dirty(self, entry: ImageEntry) -> None:
        if entry.dirty:
            self._dirty_entries[id(entry)] = entry
        else:
            self._dirty_entries.pop(id(entry), None)

    def _rescan_dirty(self) -> None:
        self._dirty_entries = {id(e): e for e in self.document.entries if e.dirty}

    def _check_dirty(self) -> None:
        now = self.dirty
        if now != self._dirty:
            self._dirty = now
            self.dirty_changed.emit(now)

    def index_of(self, entry: ImageEntry) -> int:
        return self.document.index_of(entry)

    def status_counts(self) -> Counter[str]:
        """How many pictures have each status (approved, corrected, predicted, ...)."""
        return Counter(e.status for e in self.document.entries)

