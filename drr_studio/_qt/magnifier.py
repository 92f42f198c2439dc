"""The magnifier: while a point is dragged, the picture around it, several times larger than it
is drawn, with a cross at the point, beside the cursor (the view does not move)."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

ZOOM = 4  # times the picture as drawn
SIDE_PX = 160  # on screen


class Magnifier(QLabel):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setStyleSheet("border: 1px solid #ddd; background: #111;")
        self.hide()

    def show_at(self, image: np.ndarray, scale: float, view_px: float, pos: QPointF, at: QPoint) -> None:
        """image: the picture as shown (array pixels; `scale` picture pixels each); view_px:
        picture pixels per screen pixel; pos: the point (picture pixels); at: the cursor on the
        parent widget."""
        half = SIDE_PX * view_px / ZOOM / 2 / scale  # in array pixels
        cx, cy = pos.x() / scale, pos.y() / scale
        x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
        side = max(int(np.ceil(2 * half)), 2)
        patch = np.zeros((side, side, 3), np.uint8)
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + side, image.shape[1]), min(y0 + side, image.shape[0])
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1, :3]
        big = np.ascontiguousarray(cv2.resize(patch, (SIDE_PX, SIDE_PX), interpolation=cv2.INTER_NEAREST))
        c = SIDE_PX // 2
        cv2.line(big, (c - 12, c), (c + 12, c), (255, 255, 255), 1)
        cv2.line(big, (c, c - 12), (c, c + 12), (255, 255, 255), 1)
        qimg = QImage(big.data, SIDE_PX, SIDE_PX, 3 * SIDE_PX, QImage.Format.Format_RGB888).copy()
        self.setPixmap(QPixmap.fromImage(qimg))
        self.resize(SIDE_PX + 2, SIDE_PX + 2)
        parent = self.parentWidget()
        right = at.x() + 30 + SIDE_PX < parent.width()
        x = at.x() + 30 if right else at.x() - 30 - SIDE_PX
        y = max(0, min(at.y() - c, parent.height() - SIDE_PX))
        self.move(int(x), int(y))
        self.show()
        self.raise_()
