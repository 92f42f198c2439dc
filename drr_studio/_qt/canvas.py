"""The picture with its faces: zoom and pan, points that keep their on-screen size, drag-editing,
rubber-band selection, drawing face boxes; the DRR panels' overlays are its ResearchLayer.

The canvas owns no data: it draws what the main window hands it and what the session announces
(the active face, the selection, the image adjustments), and reports user gestures as signals;
the window turns them into undo commands, which change the document through the session.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QGraphicsRectItem, QToolTip

from model.layout import Layout

from ..document import Face, Status
from ..session import Session
from .face_items import BoxROI, FaceItems, pair_lines
from .magnifier import Magnifier
from .qt_compat import pin_singletons
from .research_layer import ResearchLayer

pin_singletons()  # before any pyqtgraph item exists: see qt_compat
pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

HIT_PX = 9.0  # how close (screen pixels) a click must be to grab a point
POINT_PX = 7.0
# a point a person placed is a diamond this much wider than the model's dots, with a thick
# opaque white edge: a person's points are the easiest to see (a diamond of the same width
# covers half the area of a dot)
PLACED_SCALE = 1.6
_drag_ids = itertools.count(1)
STATUS_PEN = {Status.PENDING: (200, 200, 200), Status.PREDICTED: (90, 170, 255),
              Status.CORRECTED: (255, 190, 60), Status.APPROVED: (60, 230, 90)}
UNCERTAIN_PEN = (255, 80, 200)  # model points the model doubts (Face.uncertain)


class EditViewBox(pg.ViewBox):
    def __init__(self, canvas: Canvas) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self.canvas = canvas

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        if ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseClickEvent(ev)
        ev.accept()
        self.canvas.click(self.mapSceneToView(ev.scenePos()), ev.modifiers())

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 - Qt's name
        if ev.button() != Qt.MouseButton.LeftButton or not self.canvas.drag(ev, self):
            super().mouseDragEvent(ev, axis)


class Canvas(pg.GraphicsView):
    pointsDragged = Signal(int, object, int)  # face index, new (p,2) points, drag id
    dragFinished = Signal(int, object, int)  # face index, the indices dragged, drag id
    selectionChanged = Signal()
    boxDrawn = Signal(object)  # [x0, y0, x1, y1]
    boxEdited = Signal(int, object)  # face index, new box
    hoverText = Signal(str)

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(parent, background=(30, 30, 34))
        # the active face and the selection are the session's (views other than this one read
        # them there); the canvas only draws them and turns clicks into changes of them
        self.session = session or Session()
        self.vb = EditViewBox(self)
        self.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(autoDownsample=False)
        self.image_item.setPos(-0.5, -0.5)  # pixel centres at integer coordinates, like the .pts
        self.vb.addItem(self.image_item)
        self._faces: list[Face] = []
        self._face_items: list[FaceItems] = []
        self.layout: Layout | None = None
        # what the DRR panels draw over the picture (conv8 map, S_hat, S0, steps, SIP boxes)
        self.research = ResearchLayer(self.vb, lambda: self.layout)
        self.show_ghost = True
        self._drag: dict | None = None
        self.hidden_face = -1  # a face drawn without its points (set_hidden_face)
        self._hover_at: QPointF | None = None  # where the mouse last was over the picture (scene)
        self._rubber = QGraphicsRectItem()
        self._rubber.setPen(pg.mkPen((255, 255, 255), style=Qt.PenStyle.DashLine, cosmetic=True))
        self._rubber.setZValue(50)
        self._rubber.hide()
        self.vb.addItem(self._rubber)
        self.roi: pg.RectROI | None = None
        self.scene().sigMouseMoved.connect(self._hover)
        self._image_shape: tuple[int, int] | None = None
        self._brushes: dict[tuple, object] = {}
        # shared pens and brushes let pyqtgraph reuse its rendered symbols (10x faster drags)
        self._pen_selected = pg.mkPen("w", width=2)
        self._pen_point = pg.mkPen((0, 0, 0, 160))
        self._pen_placed = pg.mkPen((255, 255, 255), width=2.2)
        self._roi_key: tuple | None = None
        self._raw_image: np.ndarray | None = None
        self._shown_image: np.ndarray | None = None
        self._image_scale = 1.0
        self.session.display_changed.connect(self._render_image)
        # the active face and the selection are drawn when the session announces them
        self._drawn_active = -1
        self.session.face_changed.connect(self._face_changed)
        self.session.selection_changed.connect(self._selection_changed)
        self.session.current_changed.connect(self._picture_changed)
        self.session.document_changed.connect(lambda: self._picture_changed(-1))
        # while a point is dragged: the picture around it, magnified, beside the cursor
        self.magnifier = Magnifier(self.viewport())

    # --- content ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None, scale: float = 1.0, reset_view: bool = True) -> None:
        """Show an RGB picture; `scale` picture pixels per array pixel for reduced big pictures.
        It is drawn with the session's ImageAdjust (brightness, contrast, gamma: the view only)."""
        self._raw_image, self._image_scale = image, scale
        if image is None:
            self.image_item.clear()
            self._image_shape = None
            self._shown_image = None
            return
        self._render_image()
        self.image_item.setTransform(QTransform.fromScale(scale, scale))
        shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
        if reset_view or shape != self._image_shape:
            self.vb.setRange(self.content_rect(shape), padding=0.02)
        self._image_shape = shape

    def content_rect(self, shape: tuple[int, int]) -> QRectF:
        """The picture, grown to take in every face's box and points: a face running past the
        picture's edge stays reachable after Fit picture."""
        rect = QRectF(-0.5, -0.5, shape[1], shape[0])
        for f in self._faces:
            parts = [np.asarray(f.box, float).reshape(2, 2)]
            if f.points is not None:
                parts.append(np.asarray(f.points, float))
            xy = np.concatenate(parts)
            x0, y0 = xy.min(0)
            x1, y1 = xy.max(0)
            rect = rect.united(QRectF(x0, y0, x1 - x0, y1 - y0))
        return rect

    def _render_image(self, *_: object) -> None:
        image = self._raw_image
        if image is None:
            return
        adjust = self.session.display
        shown = image if adjust.identity else cv2.LUT(np.ascontiguousarray(image), adjust.lut())
        self._shown_image = shown
        self.image_item.setImage(shown, levels=(0, 255))

    point_px = POINT_PX  # marker diameter on screen; View -> Larger / Smaller points

    def set_point_size(self, px: float) -> None:
        self.point_px = float(min(max(px, 2.0), 24.0))
        for i in range(len(self._face_items)):
            self._draw_face(i)

    def zoom_to(self, box, margin: float = 0.35) -> None:
        """Show a face box with a margin of its size around it."""
        x0, y0, x1, y1 = (float(v) for v in box)
        w, h = x1 - x0, y1 - y0
        self.vb.setRange(QRectF(x0 - margin * w, y0 - margin * h, w * (1 + 2 * margin), h * (1 + 2 * margin)),
                         padding=0.0)

    def set_faces(self, faces: list[Face], layout: Layout | None) -> None:
        same_picture = faces is self._faces  # a picture's face list is changed in place
        self._faces = faces
        self.layout = layout
        while len(self._face_items) > len(faces):
            self._face_items.pop().remove(self.vb)
        while len(self._face_items) < len(faces):
            self._face_items.append(FaceItems(self.vb))
        if self.active >= len(faces):
            self.active, self.selection = -1, set()
        for i in range(len(faces)):
            self._draw_face(i)
        self._update_roi()
        if same_picture and self._hover_at is not None and self._drag is None:  # e.g. an undo moved it
            self._hover(self._hover_at, tooltip=False)

    @property
    def box_mode(self) -> bool:
        """A drag draws a face box (Session.box_mode)."""
        return self.session.box_mode

    @box_mode.setter
    def box_mode(self, on: bool) -> None:
        self.session.set_box_mode(on)

    def set_hidden_face(self, index: int) -> None:
        """Draw face index without its points and lines (the research view shows one thing at a
        time: a refinement step's shape replaces the final points); -1 shows every face."""
        if index == self.hidden_face:
            return
        old, self.hidden_face = self.hidden_face, index
        for i in (old, index):
            self.refresh_face(i)

    def refresh_face(self, index: int) -> None:
        if 0 <= index < len(self._face_items):
            self._draw_face(index)

    def _brush(self, rgb: tuple, alpha: int = 255):
        key = (*rgb, alpha)
        if key not in self._brushes:
            self._brushes[key] = pg.mkBrush(*key)
        return self._brushes[key]

    def _draw_face(self, i: int) -> None:
        face, items = self._faces[i], self._face_items[i]
        x0, y0, x1, y1 = (float(v) for v in face.box)
        items.box.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        pen = pg.mkPen(UNCERTAIN_PEN if face.uncertain else STATUS_PEN[face.status],
                       width=2 if i == self.active or face.uncertain else 1,
                       style=Qt.PenStyle.SolidLine if i == self.active else Qt.PenStyle.DashLine, cosmetic=True)
        items.box.setPen(pen)
        pts = face.points if i != self.hidden_face else None
        if pts is None:
            items.points.clear()
            items.lines.setData([], [])
            items.ghost.clear()
            items.flags.clear()
            return
        layout = self.layout if self.layout and self.layout.num_points == len(pts) else None
        colors = layout.point_colors() if layout else [(255, 255, 0)] * len(pts)
        sel = self.selection if i == self.active else set()
        brushes, pens, sizes, symbols = [], [], [], []
        for k, c in enumerate(colors):
            occluded = k in face.occluded
            brushes.append(self._brush(c, 60 if occluded else 255))
            # a point a person placed is a white-edged diamond: the tool never moves it
            pens.append(self._pen_selected if k in sel else self._pen_placed if k in face.placed else self._pen_point)
            size = self.point_px * (PLACED_SCALE if k in face.placed else 1.0)
            sizes.append(size + 4 if k in sel else size)
            symbols.append("s" if occluded else "d" if k in face.placed else "o")
        items.points.setData(pos=pts, brush=brushes, pen=pens, size=sizes, symbol=symbols, data=list(range(len(pts))))
        if layout:
            pairs = np.asarray(layout.lines(), dtype=int).reshape(-1, 2)
            xs, ys = pair_lines(pts[pairs[:, 0]], pts[pairs[:, 1]])
            items.lines.setData(xs, ys)
        else:
            items.lines.setData([], [])
        model = getattr(face.result, "points", None)
        if self.show_ghost and face.human and model is not None and len(model) == len(pts):
            items.ghost.setData(pos=np.asarray(model))
        else:
            items.ghost.clear()
        flagged = sorted(k for k in face.suspicious if k < len(pts)) if self.show_ghost else []
        if flagged:
            items.flags.setData(pos=pts[flagged], size=self.point_px + 10)
        else:
            items.flags.clear()

    # --- selection --------------------------------------------------------------------------
    @property
    def active(self) -> int:
        """Index of the face being edited (-1: none), Session.active."""
        return self.session.active

    @active.setter
    def active(self, index: int) -> None:
        self.session.set_active(index, self.session.selection if index == self.session.active else frozenset())

    @property
    def selection(self) -> set[int]:
        """Point indices selected in the active face (a copy), Session.selection."""
        return set(self.session.selection)

    @selection.setter
    def selection(self, indices: set[int]) -> None:
        self.session.set_selection(indices)

    def set_active(self, index: int, selection: set[int] | None = None) -> None:
        """Make a face active with these points selected (Session.set_active; the canvas
        redraws when the session announces it)."""
        self.session.set_active(index, set(selection or ()))

    def select_points(self, indices: set[int]) -> None:
        self.session.set_selection(set(indices))

    def _face_changed(self, index: int) -> None:
        """Session event: another face is active; redraw the one left and the new one."""
        for i in {self._drawn_active, index}:
            self.refresh_face(i)
        self._drawn_active = index
        self._update_roi()

    def _picture_changed(self, index: int) -> None:
        """Session event: another picture (no face active); its faces come with set_faces. The
        hover text named a point of the picture left behind: it goes, and so do its faces, so
        that fitting the new picture does not take them in (content_rect)."""
        self._drawn_active = -1
        self.set_faces([], self.layout)
        QToolTip.hideText()
        self.hoverText.emit("")

    def _selection_changed(self) -> None:
        """Session event: other points selected; redraw the active face and tell the window."""
        self.refresh_face(self.active)
        self.selectionChanged.emit()

    def _update_roi(self) -> None:
        """Box handles on the active face only, so that other faces stay clickable."""
        key = None
        if 0 <= self.active < len(self._faces):
            key = (id(self._faces[self.active]), *(float(v) for v in self._faces[self.active].box))
        if key == self._roi_key and (self.roi is not None) == (key is not None):
            return  # unchanged: rebuilding it on every drag step would cost milliseconds
        self._roi_key = key
        if self.roi is not None:
            self.vb.removeItem(self.roi)
            self.roi = None
        if key is None:
            return
        x0, y0, x1, y1 = (float(v) for v in self._faces[self.active].box)
        roi = BoxROI([x0, y0], [x1 - x0, y1 - y0], pen=pg.mkPen(None), movable=False, rotatable=False)
        roi.setZValue(30)
        roi.sigRegionChangeFinished.connect(self._roi_changed)
        self.vb.addItem(roi)
        self.roi = roi

    def _roi_changed(self, roi: pg.RectROI) -> None:
        pos, size = roi.pos(), roi.size()
        box = np.array([pos.x(), pos.y(), pos.x() + size.x(), pos.y() + size.y()])
        box[[0, 2]] = np.sort(box[[0, 2]])
        box[[1, 3]] = np.sort(box[[1, 3]])
        if 0 <= self.active < len(self._faces) and not np.allclose(box, self._faces[self.active].box):
            self.boxEdited.emit(self.active, box)

    # --- hit testing ------------------------------------------------------------------------
    def point_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(face, point) nearest to a view position within HIT_PX screen pixels; the active face
        wins ties so that overlapping faces stay editable."""
        px, py = self.vb.viewPixelSize()
        best, best_d = None, HIT_PX
        order = [self.active] + [i for i in range(len(self._faces)) if i != self.active]
        for i in order:
            if not self._editable(i):
                continue
            p = self._faces[i].points
            d = np.hypot((p[:, 0] - pos.x()) / px, (p[:, 1] - pos.y()) / py)
            k = int(np.argmin(d))
            if d[k] < best_d - (0.5 if best else 0):
                best, best_d = (i, k), d[k]
        return best

    def _editable(self, i: int) -> bool:
        """Face i's points can be hit: it has points and they are drawn (a face shown as a
        refinement step instead, set_hidden_face, has its points hidden: a drag there pans)."""
        return 0 <= i < len(self._faces) and self._faces[i].points is not None and i != self.hidden_face

    def face_at(self, pos: QPointF) -> int:
        for i, f in enumerate(self._faces):
            x0, y0, x1, y1 = f.box
            if x0 <= pos.x() <= x1 and y0 <= pos.y() <= y1:
                return i
        return -1

    def view_to_widget(self, x: float, y: float) -> QPointF:
        """Where a picture coordinate is on the widget (for tests and tooltips)."""
        return self.mapFromScene(self.vb.mapViewToScene(QPointF(x, y))).toPointF()

    # --- gestures ---------------------------------------------------------------------------
    def part_line_at(self, pos: QPointF) -> tuple[int, set[int]] | None:
        """(face, the part's points) of the part line within HIT_PX screen pixels of a position,
        the active face first."""
        if self.layout is None:
            return None
        px, py = self.vb.viewPixelSize()
        order = [self.active] + [i for i in range(len(self._faces)) if i != self.active]
        for i in order:
            if not self._editable(i):
                continue
            if len(self._faces[i].points) != self.layout.num_points:
                continue
            found = self.layout.part_at(self._faces[i].points, pos.x(), pos.y(), px, py)
            if found is not None and found[1] < HIT_PX:
                return i, set(found[0].indices)
        return None

    def click(self, pos: QPointF, modifiers) -> None:
        hit = self.point_at(pos)
        ctrl = bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        line = self.part_line_at(pos) if hit is None else None
        if line is not None:  # a click on a part's line selects the part (Ctrl adds it)
            face, part = line
            if face != self.active:
                self.set_active(face, part)
            else:
                self.select_points(self.selection | part if ctrl else part)
            return
        if hit is None:
            face = self.face_at(pos)
            if face != self.active or not ctrl:
                self.set_active(face)
            return
        face, k = hit
        if face != self.active:
            self.set_active(face, {k})
        elif ctrl:
            self.select_points(self.selection ^ {k})
        else:
            self.select_points({k})

    def drag(self, ev, vb: pg.ViewBox) -> bool:
        """Handle a left-button drag; False lets the view box pan instead."""
        pos = vb.mapSceneToView(ev.scenePos())
        if ev.isStart():
            start = vb.mapSceneToView(ev.buttonDownScenePos())
            hit = self.point_at(start)
            shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if self.box_mode:
                self._drag = {"kind": "box", "start": start}
            elif hit is not None:
                QToolTip.hideText()  # the hover text would sit on the magnifier, with old coordinates
                face, k = hit
                if face != self.active:
                    self.set_active(face, {k})
                elif k not in self.selection:
                    self.select_points({k})
                self._drag = {"kind": "points", "start": start, "face": face, "point": k,
                              "orig": self._faces[face].points.copy(), "id": next(_drag_ids)}
            elif shift and 0 <= self.active < len(self._faces):
                self._drag = {"kind": "rubber", "start": start}
            else:
                self._drag = None
                return False
        if self._drag is None:
            return False
        ev.accept()
        d = self._drag
        if d["kind"] == "points":
            new = d["orig"].copy()
            idx = sorted(self.selection)
            new[idx] += np.array([pos.x() - d["start"].x(), pos.y() - d["start"].y()])
            self.pointsDragged.emit(d["face"], new, d["id"])
            self.hoverText.emit(self.point_text(d["face"], d["point"], new[d["point"]]))  # where it is now
            self._magnify(pos, ev.scenePos())
        else:
            rect = QRectF(d["start"], pos).normalized()
            self._rubber.setRect(rect)
            self._rubber.setVisible(not ev.isFinish())
            if ev.isFinish():
                if d["kind"] == "box" and rect.width() > 4 and rect.height() > 4:
                    self.boxDrawn.emit(np.array([rect.left(), rect.top(), rect.right(), rect.bottom()]))
                elif d["kind"] == "rubber":
                    p = self._faces[self.active].points
                    if p is not None:
                        inside = {k for k, (x, y) in enumerate(p) if rect.contains(QPointF(x, y))}
                        self.select_points(self.selection | inside)
        if ev.isFinish():
            self._drag = None
            self.magnifier.hide()
            if d["kind"] == "points":
                self.dragFinished.emit(d["face"], set(self.selection), d["id"])
        return True

    def _magnify(self, pos: QPointF, scene_pos: QPointF) -> None:
        if self._shown_image is not None:
            px = max(self.vb.viewPixelSize()[0], 1e-6)  # picture pixels per screen pixel
            face = self._faces[self.active] if 0 <= self.active < len(self._faces) else None
            avoid = None if face is None or face.points is None else self.points_on_widget(face.points)
            self.magnifier.show_at(self._shown_image, self._image_scale, px, pos, self.mapFromScene(scene_pos),
                                   avoid)

    def points_on_widget(self, pts: np.ndarray) -> np.ndarray:
        """Picture coordinates (n, 2) -> widget coordinates (the view neither rotates nor shears)."""
        o, u = self.view_to_widget(0.0, 0.0), self.view_to_widget(1.0, 1.0)
        return np.asarray(pts, float) * [u.x() - o.x(), u.y() - o.y()] + [o.x(), o.y()]

    def point_text(self, face: int, k: int, xy: np.ndarray) -> str:
        """What the status bar says of a point: its face, number, name and picture coordinates."""
        names = self.layout.point_names() if self.layout else []
        name = names[k] if k < len(names) else ""
        text = f"face {face + 1}, point {k + 1}: {name}  ({xy[0]:.1f}, {xy[1]:.1f})"
        return text + "  occluded" if k in self._faces[face].occluded else text

    def _hover(self, scene_pos: QPointF, tooltip: bool = True) -> None:
        self._hover_at = scene_pos
        if self._drag is not None or not self._faces:
            return
        pos = self.vb.mapSceneToView(scene_pos)
        hit = self.point_at(pos)
        if hit is None:
            self.hoverText.emit("")
            return
        face, k = hit
        text = self.point_text(face, k, self._faces[face].points[k])
        self.hoverText.emit(text)
        if tooltip:
            QToolTip.showText(self.mapToGlobal(self.mapFromScene(scene_pos)), text, self)
