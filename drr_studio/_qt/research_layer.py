"""What the DRR panels draw over the picture: the conv8 probability map of one landmark (or
their maximum), and shapes, arrows and SIP boxes of the initialisation and the refinement steps.
Kept apart from the canvas, which edits faces; the research view (overlays.py) drives it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTransform

from model.layout import Layout

from .face_items import PassiveScatter, pair_lines

HEAT_OPACITY = 0.85  # the heatmap's default opacity (Heatmaps panel): clearly visible on any picture


def crop_transform(crop_to_image: np.ndarray, scale: float) -> QTransform:
    """QTransform for an ImageItem of a heatmap whose pixel u covers crop coordinates
    [u*scale - 0.5, (u+1)*scale - 0.5] (pixel-centre convention) mapped by the 2x3 affine."""
    a = np.asarray(crop_to_image, dtype=np.float64)
    lin = a[:, :2] * scale
    off = a[:, 2] - 0.5 * a[:, :2].sum(1)
    return QTransform(lin[0, 0], lin[1, 0], lin[0, 1], lin[1, 1], off[0], off[1])


class ResearchLayer:
    """The heatmap image and the overlay items, all in the picture's coordinates; overlays sit
    under the editable points (z 20) so that those stay visible on top."""

    def __init__(self, view: pg.ViewBox, layout: Callable[[], Layout | None]) -> None:
        self.vb = view
        self.layout = layout  # the canvas's current point layout (lines between the points)
        self.heat_item = pg.ImageItem()
        self.heat_item.setZValue(5)
        lut = pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True)
        lut[:, 3] = np.clip(np.linspace(0, 4.0, 256), 0, 1) * 255  # below a quarter of the peak: see-through
        self.heat_item.setLookupTable(lut)
        self.heat_item.setOpacity(HEAT_OPACITY)
        view.addItem(self.heat_item)
        self.heat_item.hide()
        self._items: list[pg.GraphicsObject] = []

    @property
    def items(self) -> list[pg.GraphicsObject]:
        """The overlay items drawn now (shapes, arrows, boxes; not the heatmap)."""
        return list(self._items)

    def set_heatmap(self, heat: np.ndarray | None, crop_to_image: np.ndarray | None = None,
                    scale: float = 1.0) -> None:
        if heat is None:
            self.heat_item.hide()
            return
        h = np.asarray(heat, dtype=np.float32)
        h = h / max(float(h.max()), 1e-12)  # each map to full range: the shape matters, not the peak
        self.heat_item.setImage(h, levels=(0.0, 1.0))
        self.heat_item.setTransform(crop_transform(crop_to_image, scale))
        self.heat_item.show()

    def set_heat_opacity(self, value: float) -> None:
        self.heat_item.setOpacity(value)

    def clear(self) -> None:
        for item in self._items:
            self.vb.removeItem(item)
        self._items = []

    def add_shape(self, pts: np.ndarray, color: tuple, symbol: str = "o", size: float = 5,
                  lines: bool = True, style=Qt.PenStyle.SolidLine) -> None:
        pts = np.asarray(pts, dtype=np.float64)
        layout = self.layout()
        if lines and layout is not None and layout.num_points == len(pts):
            pairs = np.asarray(layout.lines(), dtype=int).reshape(-1, 2)
            xs, ys = pair_lines(pts[pairs[:, 0]], pts[pairs[:, 1]])
            item = pg.PlotDataItem(xs, ys, connect="pairs", pen=pg.mkPen(color, width=1.5, style=style))
            self._add_overlay(item, 12)
        pen = pg.mkPen(color, width=1.5)
        scatter = PassiveScatter(pos=pts, pxMode=True, size=size, symbol=symbol, pen=pen,
                                     brush=pg.mkBrush(QColor(*color)) if symbol == "o" else None)
        self._add_overlay(scatter, 13)

    def add_arrows(self, a: np.ndarray, b: np.ndarray, color: tuple) -> None:
        """Displacement arrows a[i] -> b[i] with a small head, as one line item."""
        a, b = np.asarray(a, float), np.asarray(b, float)
        d = b - a
        n = np.linalg.norm(d, axis=1, keepdims=True)
        u = d / np.maximum(n, 1e-9)
        head = np.minimum(n * 0.35, 3.0 + 0.1 * n)
        perp = np.stack([-u[:, 1], u[:, 0]], 1)
        left, right = b - u * head + perp * head * 0.5, b - u * head - perp * head * 0.5
        segs_a = np.concatenate([a, b, b])
        segs_b = np.concatenate([b, left, right])
        xs, ys = pair_lines(segs_a, segs_b)
        self._add_overlay(pg.PlotDataItem(xs, ys, connect="pairs", pen=pg.mkPen(color, width=1.3)), 16)

    def add_boxes(self, centres: np.ndarray, side: float, color: tuple) -> None:
        c = np.asarray(centres, float)
        h = side / 2.0
        corners = [c + [-h, -h], c + [h, -h], c + [h, h], c + [-h, h]]
        a = np.concatenate(corners)
        b = np.concatenate(corners[1:] + corners[:1])
        xs, ys = pair_lines(a, b)
        pen = pg.mkPen(color, width=1, style=Qt.PenStyle.DotLine)
        self._add_overlay(pg.PlotDataItem(xs, ys, connect="pairs", pen=pen), 11)

    def _add_overlay(self, item: pg.GraphicsObject, z: float) -> None:
        """Overlays sit under the editable points (z 20) so that those stay visible on top."""
        item.setZValue(z)
        self.vb.addItem(item)
        self._items.append(item)
