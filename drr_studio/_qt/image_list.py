"""The image list: every picture with its status, as a model/view list (only the rows on
screen are drawn), filtered by status and ordered by folder or by the review. It follows the
session itself (ImageListPanel.show_session)."""

from __future__ import annotations

import bisect
from collections import Counter

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QListView, QVBoxLayout, QWidget

from ..document import BAD_FILE_STATUS, ERROR_STATUS, NO_FACE_STATUS, ImageEntry, Status
from ..session import Session

STATUS_COLOR = {Status.PENDING.value: "#9a9a9a", Status.PREDICTED.value: "#5aaaff",
                Status.CORRECTED.value: "#ffbe3c", Status.APPROVED.value: "#3ce65a", ERROR_STATUS: "#ff5050",
                NO_FACE_STATUS: "#d070ff", BAD_FILE_STATUS: "#ff8c50"}
TO_CHECK = "to check"  # images with a face the model doubts
FILTERS = ["all", TO_CHECK, Status.PENDING.value, Status.PREDICTED.value, NO_FACE_STATUS, Status.CORRECTED.value,
           Status.APPROVED.value, BAD_FILE_STATUS, ERROR_STATUS]
INDEX_ROLE = Qt.ItemDataRole.UserRole + 2  # the picture's index in the document
FOLDER_ORDER, SUSPICIOUS_FIRST = "folder order", "suspicious first"
ORDERS = [FOLDER_ORDER, SUSPICIOUS_FIRST]


class ImageListModel(QAbstractListModel):
    """The rows of the image list, drawn on demand (Qt asks only for the rows on screen): a
    folder of 100,000 pictures costs a list of indices, not 100,000 widgets. `rows` holds the
    picture indices shown, in order (the folder's or the review's), after the filter."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[ImageEntry] = []
        self.rows: list[int] = []
        self.order: list[int] = []
        self.rank: list[int] = []  # picture index -> its place in `order` (rows are sorted by it)
        self.scores: dict[int, float] = {}
        self.statuses: list[str] = []  # per picture, for the running counts
        self.counts: Counter[str] = Counter()
        self.checks: list[bool] = []  # per picture: a face the model doubts
        self.filter = "all"

    def reset(self, entries: list[ImageEntry]) -> None:
        self.beginResetModel()
        self.entries = entries
        self.order = list(range(len(entries)))
        self.statuses = [e.status for e in entries]
        self.checks = [bool(e.to_check) for e in entries]
        self.counts = Counter(self.statuses)
        self.scores = {}
        self._filter_rows()
        self.endResetModel()

    def passes(self, i: int) -> bool:
        if self.filter == TO_CHECK:
            return self.checks[i]
        return self.filter == "all" or self.filter == self.statuses[i]

    def _filter_rows(self) -> None:
        self.rank = [0] * len(self.entries)
        for k, i in enumerate(self.order):
            self.rank[i] = k
        self.rows = [i for i in self.order if self.passes(i)]

    def row(self, i: int) -> int | None:
        """The row showing picture i (None: filtered out), by bisection: O(log n)."""
        r = bisect.bisect_left(self.rows, self.rank[i], key=self.rank.__getitem__)
        return r if r < len(self.rows) and self.rows[r] == i else None

    def refilter(self, filter_text: str | None = None, order: list[int] | None = None) -> None:
        self.beginResetModel()
        if filter_text is not None:
            self.filter = filter_text
        if order is not None:
            self.order = list(order)
        self._filter_rows()
        self.endResetModel()

    def update(self, i: int) -> int | None:
        """Picture i changed: it appears or goes when the filter's verdict on it changed.
        Returns its row when it stays shown: the view repaints that row (a dataChanged signal
        makes QListView walk every row: 180 ms a change at 65,000 pictures)."""
        e = self.entries[i]
        old, new = self.statuses[i], e.status
        if old != new:
            self.counts[old] -= 1
            self.counts[new] += 1
            self.statuses[i] = new
        self.checks[i] = bool(e.to_check)
        r = self.row(i)
        if self.passes(i) and r is None:  # it now shows: inserted at its place in the order
            r = bisect.bisect_left(self.rows, self.rank[i], key=self.rank.__getitem__)
            self.beginInsertRows(QModelIndex(), r, r)
            self.rows.insert(r, i)
            self.endInsertRows()
        elif not self.passes(i) and r is not None:  # it no longer shows
            self.beginRemoveRows(QModelIndex(), r, r)
            del self.rows[r]
            self.endRemoveRows()
        else:
            return r
        return None

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt's name
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        i = self.rows[index.row()]
        e = self.entries[i]
        if role == Qt.ItemDataRole.DisplayRole:
            return row_text(e)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor(STATUS_COLOR.get(self.statuses[i], "#ffffff")))
        if role == Qt.ItemDataRole.ToolTipRole:
            return row_tip(e, self.scores.get(i))
        if role == INDEX_ROLE:
            return i
        return None


def row_text(e: ImageEntry) -> str:
    """A picture's row: a mark when the model doubts a face, the name, * for unsaved edits, the
    number of faces once known, and how far it is (document.status_text)."""
    n = len(e.faces)
    faces = f"{n} face{'s' if n > 1 else ''}   " if n else ""
    return f"{'⚠ ' if e.to_check else ''}{e.path.name}{'*' if e.dirty else ''}   {faces}[{e.status_text}]"


def row_tip(e: ImageEntry, score: float | None) -> str:
    tip = f"{e.path}\n{e.error}" if e.error else str(e.path)
    if e.to_check:
        tip += f"\n{e.to_check} face(s) the model is unsure of: its mirror-image pass disagrees"
    if score is not None:
        tip += (f"\nreview score {score:.1f}: its worst human point lies that far from the model's "
                "(% of the eye distance, discounted by the model's doubt)")
    return tip


class ImageListPanel(QWidget):
    """Every image with its status. The filter hides rows; the order is the folder's or the
    review's (most suspicious annotations first). A model/view list (ImageListModel): only the
    rows on screen are drawn, and a picture's change redraws its row alone."""

    imageChosen = Signal(int)
    orderChanged = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.filter.setToolTip("Show only images with this status; 'to check': images with a face "
                               "the model is unsure of")
        self.order = QComboBox()
        self.order.addItems(ORDERS)
        self.order.setToolTip("suspicious first: pictures whose human points the model disagrees with "
                              "most come first (annotation review; run Model → Predict all first)")
        self.model = ImageListModel()
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setUniformItemSizes(True)  # rows of one height: no measuring of 100,000 rows
        self.list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.count = QLabel()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        for label, box in (("Show:", self.filter), ("Order:", self.order)):
            row = QHBoxLayout()
            row.addWidget(QLabel(label))
            row.addWidget(box, 1)
            lay.addLayout(row)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.count)
        self.filter.currentTextChanged.connect(lambda _: self.apply_filter())
        self.order.currentTextChanged.connect(self.orderChanged.emit)
        self.list.selectionModel().currentRowChanged.connect(lambda cur, _: self._chosen(cur.row()))
        self._updating = False

    def show_session(self, session: Session) -> None:
        """Follow this session: its document's pictures, each picture's changes, the picture
        shown. The list subscribes itself; nobody pushes rows into it."""
        session.document_changed.connect(lambda: self.set_entries(session.document.entries))
        session.entry_changed.connect(lambda i: self.update_entry(i, session.document.entries[i]))
        session.current_changed.connect(self.set_current)
        self.set_entries(session.document.entries)

    def set_entries(self, entries: list[ImageEntry]) -> None:
        self._updating = True
        self.model.filter = self.filter.currentText()
        self.model.reset(entries)
        self._updating = False
        self._show_count()

    def update_entry(self, index: int, entry: ImageEntry) -> None:
        if 0 <= index < len(self.model.entries):
            current = self.current_index()
            self._updating = True
            row = self.model.update(index)
            if row is not None:
                self.list.viewport().update(self.list.visualRect(self.model.index(row)))
            if current is not None and self.model.row(current) is not None:
                self.list.setCurrentIndex(self.model.index(self.model.row(current)))
            self._updating = False
        self._show_count()

    def place_of(self, index: int) -> tuple[int, int] | None:
        """(1-based place, rows shown) of picture `index` in the list as shown; None when hidden."""
        row = self.model.row(index)
        return None if row is None else (row + 1, len(self.model.rows))

    def shown_order(self) -> list[int]:
        """The pictures' indices in the order the list shows them."""
        return list(self.model.order)

    def set_order(self, order: list[int], scores: dict[int, float] | None = None) -> None:
        """Show the pictures in this order (a permutation of their indices); scores: each
        picture's review score, shown in its tooltip."""
        self.model.scores = dict(scores or {})
        if list(order) == self.model.order:  # same order (the usual case while predicting): tooltips only
            return
        current = self.current_index()
        self._updating = True
        self.model.refilter(order=order)
        if current is not None:
            self.set_current(current)
        self._updating = False

    def row_text(self, row: int) -> str:
        """The text of the row-th row shown (for tests and the review)."""
        return self.model.data(self.model.index(row))

    def row_tooltip(self, row: int) -> str:
        return self.model.data(self.model.index(row), Qt.ItemDataRole.ToolTipRole)

    def apply_filter(self) -> None:
        current = self.current_index()
        self._updating = True
        self.model.refilter(filter_text=self.filter.currentText())
        if current is not None and self.model.row(current) is not None:
            self.list.setCurrentIndex(self.model.index(self.model.row(current)))
        self._updating = False
        self._show_count()

    def _show_count(self) -> None:
        """The line under the list, from the running counts (O(1) per row update)."""
        counts = self.model.counts
        done = [f"{counts[st]} {st}" for st in (Status.APPROVED.value, Status.CORRECTED.value) if counts[st]]
        self.count.setText(f"{len(self.model.rows)} of {len(self.model.entries)} images"
                           + (" · " + ", ".join(done) if done else ""))

    def visible_rows(self) -> list[int]:
        """Picture indices of the shown rows, top to bottom."""
        return list(self.model.rows)

    def current_index(self) -> int | None:
        row = self.list.currentIndex().row()
        return self.model.rows[row] if 0 <= row < len(self.model.rows) else None

    def set_current(self, index: int) -> None:
        self._updating = True
        if 0 <= index < len(self.model.entries) and self.model.row(index) is not None:
            self.list.setCurrentIndex(self.model.index(self.model.row(index)))
        self._updating = False

    def _chosen(self, row: int) -> None:
        if not self._updating and 0 <= row < len(self.model.rows):
            self.imageChosen.emit(self.model.rows[row])
