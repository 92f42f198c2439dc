"""The graphics items of one face on the canvas: its connecting lines, points, the model's
points beside a person's (ghost), review rings and box, and the box handle (BoxROI) that alone
changes a box."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsRectItem

from .qt_compat import pin_singletons

pin_singletons()  # before any pyqtgraph item exists: see qt_compat
SUSPICIOUS_COLOR = (255, 60, 60)  # human points far from the model's (Face.suspicious)


def pair_lines(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y arrays for segments a[i] -> b[i], drawn with connect='pairs'."""
    seg = np.stack([a, b], 1).reshape(-1, 2)
    return seg[:, 0], seg[:, 1]


class PassiveScatter(pg.ScatterPlotItem):
    """Points that leave clicks to the view box, which does all hit testing (so that clicks
    select, Ctrl+click toggles and near misses still work the same everywhere)."""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        ev.ignore()


class FaceItems:
    """The graphics of one face: connecting lines, points and box."""

    def __init__(self, vb: pg.ViewBox) -> None:
        self.lines = pg.PlotDataItem(connect="pairs", pen=pg.mkPen((255, 255, 255, 150), width=1.2))
        self.ghost = PassiveScatter(pxMode=True, size=4, symbol="x", pen=pg.mkPen((255, 80, 80, 200)),
                                        brush=None)
        self.points = PassiveScatter(pxMode=True)
        # rings around human points the model disagrees with most (review.Review)
        self.flags = PassiveScatter(pxMode=True, symbol="o", pen=pg.mkPen(SUSPICIOUS_COLOR, width=2), brush=None)
        self.box = QGraphicsRectItem()
        for item in (self.box, self.lines, self.ghost, self.flags, self.points):
            vb.addItem(item)
        self.points.setZValue(20)
        self.flags.setZValue(19)
        self.lines.setZValue(15)
        self.ghost.setZValue(14)

    def remove(self, vb: pg.ViewBox) -> None:
        for item in (self.box, self.lines, self.ghost, self.flags, self.points):
            vb.removeItem(item)


class BoxROI(pg.RectROI):
    """A face box whose only handle changes it: drags and clicks on its body go to the view
    box (pyqtgraph's ROI would scale itself on Shift+drag, which is the selection gesture)."""

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        ev.ignore()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        ev.ignore()

    def hoverEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        pass  # no highlight, and no claim on drags that start on the body
