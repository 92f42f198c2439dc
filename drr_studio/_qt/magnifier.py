"""The magnifier: while a point is dragged, the picture around it, several times larger than it
is drawn, with a cross at the point, in a corner of the view away from what is being aligned
(the view does not move): never over the cursor, the dragged point or the face's other points
when a corner is free of them."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

ZOOM = 4  # times the picture as drawn
SIDE_PX = 160  # on screen
MARGIN_PX = 8  # from the view's edge


def corner_for(view: tuple[int, int], cursor: tuple[float, float], avoid: np.ndarray | None,
               current: tuple[int, int] | None = None, side: int = SIDE_PX + 2) -> tuple[int, int]:
    """Top-left of the magnifier: the view corner (view = width, height) whose square covers
    the fewest points to avoid (screen positions) and not the cursor, the one farthest from the
    cursor among equals; the corner it is in already while that one still covers nothing."""
    w, h = view
    xs = (MARGIN_PX, max(MARGIN_PX, w - side - MARGIN_PX))
    ys = (MARGIN_PX, max(MARGIN_PX, h - side - MARGIN_PX))
    pts = np.zeros((0, 2)) if avoid is None else np.asarray(avoid, float).reshape(-1, 2)
    pts = np.concatenate([pts, [cursor]])

    def covered(corner: tuple[int, int]) -> int:
        x, y = corner
        pad = 12  # a point just outside the square is still hidden by the eye's focus on it
        inside = (pts[:, 0] > x - pad) & (pts[:, 0] < x + side + pad) & (pts[:, 1] > y - pad) & (pts[:, 1] < y + side + pad)
        return int(inside.sum()) + 1000 * int(inside[-1])  # the cursor counts most

    if current is not None and current in [(x, y) for x in xs for y in ys] and covered(current) == 0:
        return current
    corners = [(x, y) for y in ys for x in xs]
    return min(corners, key=lambda c: (covered(c), -np.hypot(c[0] + side / 2 - cursor[0], c[1] + side / 2 - cursor[1])))


class Magnifier(QLabel):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setStyleSheet("border: 1px solid #ddd; background: #111;")
        self.hide()

    def show_at(self, image: np.ndarray, scale: float, view_px: float, pos: QPointF, at: QPoint,
                avoid: np.ndarray | None = None) -> None:
        """image: the picture as shown (array pixels; `scale` picture pixels each); view_px:
        picture pixels per screen pixel; pos: the point (picture pixels); at: the cursor on the
        parent widget; avoid: the face's points on the parent widget, which it must not cover."""
        self.setPixmap(QPixmap.fromImage(self._patch(image, scale, view_px, pos)))
        self.resize(SIDE_PX + 2, SIDE_PX + 2)
        parent = self.parentWidget()
        current = (self.x(), self.y()) if self.isVisible() else None
        x, y = corner_for((parent.width(), parent.height()), (at.x(), at.y()), avoid, current)
        self.move(int(x), int(y))
        self.show()
        self.raise_()

    @staticmethod
    def _patch(image: np.ndarray, scale: float, view_px: float, pos: QPointF) -> QImage:
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
        return QImage(big.data, SIDE_PX, SIDE_PX, 3 * SIDE_PX, QImage.Format.Format_RGB888).copy()
