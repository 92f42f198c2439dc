"""Help → Keyboard shortcuts (a table made from the window's own actions, so it cannot go out
of date) and Help → About (model, detector, licences)."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

# gestures that are not menu actions (canvas.py)
MOUSE = [
    ("Move a point, or the selected points", "drag it (a magnifier shows the picture around it); with "
     "assisted correction on, the face's points you have not placed follow (diamonds: placed by you)"),
    ("Select points", "click; Ctrl+click adds; Shift+drag a rectangle, inside a face box too"),
    ("Select a part (jaw, brow, eye, nose, lips)", "click on its line; Ctrl+click adds it"),
    ("Zoom / pan", "mouse wheel / drag the background"),
    ("Change a face box", "drag its corner handle (the model runs again)"),
    ("Name of a point", "hover over it (status bar)"),
]


def shortcut_rows(window: Any) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action of the window that has a shortcut."""
    rows = []
    for menu in window.menuBar().findChildren(type(window.file_menu)):
        for act in menu.actions():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts())
            if keys and act.text():
                rows.append((menu.title().replace("&", ""), _generic(act.text().replace("&", "")), keys))
    return rows


def _generic(text: str) -> str:
    """An undo stack's actions are named after the step they would take ("Undo move face box"):
    the table lists what the key does, whatever the last step was."""
    for word in ("Undo", "Redo"):
        if text.startswith(word + " ") or text == word:
            return word
    return text


class ShortcutsDialog(QDialog):
    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(window) + [("Mouse", a, k) for a, k in MOUSE]
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # long texts wrap, no side scrolling
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.resizeRowsToContents()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.resize(620, 640)


def about_text(window: Any) -> str:
    p = window.predictor
    model = f"{p.name} ({p.path})" if p is not None and p.path else "none loaded"
    return (
        "<h3>DRR Studio</h3>"
        "<p>Facial landmark annotation with Deep Recurrent Regression (H. Lai et al., arXiv 1510.09083).</p>"
        f"<p><b>Model:</b> {model}</p>"
        "<p><b>Licences.</b> The code is MIT. The shipped weights were trained on the 300-W training "
        "images (LFPW, HELEN, AFW) and inherit their <b>non-commercial, research-use-only</b> condition. "
        "The face detector is OpenCV's YuNet (MIT, Copyright (c) 2020 Shiqi Yu; "
        "resources/LICENSE-yunet.txt). The sample picture is a public-domain NASA portrait.</p>")


def show_about(window: Any) -> None:
    QMessageBox.about(window, "About DRR Studio", about_text(window))
