"""The Review dock: the model against the folder's human annotations, as a cumulative error
curve (CED, pyqtgraph) with its summary, for a reviewer looking for labelling mistakes. The
image list's "suspicious first" order and the red rings on the canvas come from the same
review (drr_studio.review), kept up to date by ReviewView."""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QVBoxLayout, QWidget

from model.layout import Layout

from ..review import Review, ced
from ..session import Session
from .canvas import Canvas
from .image_list import SUSPICIOUS_FIRST, ImageListPanel

FAILURE = 8.0  # % inter-pupil, the failure threshold of the README's tables
REVIEW_DELAY_MS = 250  # the review follows edits and predictions at most this often


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


class ReviewView(QObject):
    """Keeps the review up to date: after edits and predictions (at most every REVIEW_DELAY_MS),
    when the image list's order or the Review dock is shown. Given the session it follows, the
    views it feeds (the image list's order, the Review dock, the canvas's rings) and the layout
    of the model's points (None: no model yet)."""

    def __init__(self, session: Session, image_panel: ImageListPanel, panel: ReviewPanel, dock: QDockWidget,
                 canvas: Canvas, layout: Callable[[], Layout | None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.image_panel, self.panel, self.dock, self.canvas = session, image_panel, panel, dock, canvas
        self.layout = layout
        self.review = Review()
        self._ordered = False  # the list is in the review's order
        self._resort = True  # the next update may re-sort the list (not after an edit: see update)
        self.timer = QTimer(self, singleShot=True, interval=REVIEW_DELAY_MS)
        self.timer.timeout.connect(lambda: self.update(self._resort))
        session.entry_changed.connect(lambda _: self.schedule())
        session.document_changed.connect(lambda: self.schedule(resort=True))
        image_panel.orderChanged.connect(lambda _: self.update(resort=True))
        dock.visibilityChanged.connect(lambda on: on and self.update())

    def schedule(self, resort: bool = False) -> None:
        self._resort = self._resort or resort
        if not self.timer.isActive():
            self.timer.start()

    def update(self, resort: bool = False) -> None:
        """Model against human points over the folder: rings on suspicious points, the
        'suspicious first' order, the Review dock's curve. The list is re-sorted only with
        resort (the order just chosen, another folder): while a person works through it, an
        edit must not move pictures about under Next and Previous (the scores still update)."""
        self.timer.stop()
        self._resort = False
        layout = self.layout()
        if layout is None:
            return
        document = self.session.document
        self.review.update(document, layout)
        by_review = self.image_panel.order.currentText() == SUSPICIOUS_FIRST
        if by_review:
            order = self.review.order(len(document)) if resort or not self._ordered else self.image_panel.shown_order()
            self.image_panel.set_order(order, self.review.picture_scores)
        elif self._ordered:  # back to the folder's order, once
            self.image_panel.set_order(list(range(len(document))))
        self._ordered = by_review
        if self.dock.isVisible():
            self.panel.set_review(self.review)
        if self.session.entry is not None:
            self.canvas.set_faces(self.session.entry.faces, layout)  # the rings changed
