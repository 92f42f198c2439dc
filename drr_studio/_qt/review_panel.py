"""The Review dock: the model against the folder's human annotations, as a cumulative error
curve (CED, pyqtgraph) with its summary, for a reviewer looking for labelling mistakes. The
image list's "suspicious first" order and the red rings on the canvas come from the same
review (drr_studio.review)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..review import Review, ced

FAILURE = 8.0  # % inter-pupil, the failure threshold of the README's tables


class ReviewPanel(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.plot = pg.PlotWidget(background=(30, 30, 34))
        self.plot.setLabel("bottom", "model vs annotation, inter-pupil NME %")
        self.plot.setLabel("left", "share of faces")
        self.plot.setXRange(0, 10, padding=0)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.plot.addItem(pg.InfiniteLine(FAILURE, angle=90, pen=pg.mkPen((255, 120, 120, 120), width=1)))
        self.curve = self.plot.plot([], [], pen=pg.mkPen((90, 170, 255), width=2), stepMode=None)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.summary)
        self.set_review(Review())

    def set_review(self, review: Review) -> None:
        x, y = ced(review.errors)
        self.curve.setData(x, y)
        self.summary.setText(review.summary(FAILURE))
