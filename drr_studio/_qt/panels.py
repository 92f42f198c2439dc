"""Dock panels: the three views of what DRR does (heatmaps, initialisation, refinement), the
image adjustments, the message bar and the status fields (the image list is image_list.py). They show state and emit the user's choices; the main window
draws the matching overlays on the canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .research_layer import HEAT_OPACITY


def fixed_width_text(label: QLabel) -> None:
    """A label whose changing text never widens its dock (the canvas would jump as you step):
    it wraps within the width the dock has."""
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)


class HeatmapPanel(QWidget):
    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.show_box = QCheckBox("Show heatmap")
        self.show_box.setChecked(True)
        self.mode = QComboBox()
        self.mode.addItems(["max over all landmarks", "chosen landmark"])
        self.landmark = QSpinBox()
        self.landmark.setRange(1, 68)
        self.landmark.setToolTip("Landmark number (1-based); clicking a point selects its map")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(HEAT_OPACITY * 100))
        self.info = QLabel()
        fixed_width_text(self.info)
        self.info.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.show_box)
        lay.addWidget(self.mode)
        row = QHBoxLayout()
        row.addWidget(QLabel("Landmark"))
        row.addWidget(self.landmark, 1)
        lay.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        lay.addLayout(row)
        lay.addWidget(self.info)
        lay.addStretch(1)
        for sig in (self.show_box.toggled, self.mode.currentIndexChanged, self.landmark.valueChanged,
                    self.opacity.valueChanged):
            sig.connect(lambda *_: self.changed.emit())

    def choose_landmark(self, index: int | None) -> None:
        """Show the map of landmark index (None: the maximum over all), e.g. the point clicked
        (Session.landmark); set without announcing it back."""
        for w in (self.mode, self.landmark):
            w.blockSignals(True)
        self.mode.setCurrentIndex(0 if index is None else 1)
        if index is not None:
            self.landmark.setValue(index + 1)
        for w in (self.mode, self.landmark):
            w.blockSignals(False)

    def landmark_index(self) -> int | None:
        return None if self.mode.currentIndex() == 0 else self.landmark.value() - 1


def shape_thumbnail(points: np.ndarray, lines: list[tuple[int, int]], chosen: bool, size: int = 72) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(QColor(40, 40, 46) if not chosen else QColor(30, 70, 40))
    p = np.asarray(points, float)
    lo, hi = p.min(0), p.max(0)
    s = (size - 10) / max(float((hi - lo).max()), 1e-6)
    q = (p - (lo + hi) / 2) * s + size / 2
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(80, 255, 120) if chosen else QColor(200, 200, 200), 1))
    for a, b in lines:
        painter.drawLine(int(q[a, 0]), int(q[a, 1]), int(q[b, 0]), int(q[b, 1]))
    if not lines:
        for x, y in q:
            painter.drawPoint(int(x), int(y))
    painter.end()
    return pix


class InitPanel(QWidget):
    """Ŝ (argmax of the heatmaps), the chosen candidate S0 and the candidate gallery."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.show_shat = QCheckBox("Draw Ŝ (argmax shape, red x)")
        self.show_s0 = QCheckBox("Draw S0 (chosen candidate, green)")
        self.show_shat.setChecked(True)
        self.show_s0.setChecked(True)
        self.info = QLabel()
        fixed_width_text(self.info)
        self.info.setWordWrap(True)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(72, 72))
        self.gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.gallery.setMovement(QListWidget.Movement.Static)
        self.gallery.setSpacing(2)
        lay = QVBoxLayout(self)
        lay.addWidget(self.show_shat)
        lay.addWidget(self.show_s0)
        lay.addWidget(self.info)
        lay.addWidget(QLabel("Candidates, nearest to Ŝ first (chosen one in green):"))
        lay.addWidget(self.gallery, 1)
        self.show_shat.toggled.connect(lambda *_: self.changed.emit())
        self.show_s0.toggled.connect(lambda *_: self.changed.emit())
        self._key = None

    def set_result(self, result, lines: list[tuple[int, int]]) -> None:
        key = id(result)
        if key == self._key:
            return
        self._key = key
        self.gallery.clear()
        if result is None:
            self.info.setText("No model result for the selected face.")
            return
        cands = np.asarray(getattr(result, "candidates", np.zeros((0, 1, 2))))
        dist = np.asarray(getattr(result, "candidate_distances", np.zeros(len(cands))))
        chosen = int(getattr(result, "candidate_index", -1))
        if chosen < 0:
            self.info.setText("Initialised with the mean shape (no candidate set).")
        else:
            self.info.setText(f"Chosen candidate #{chosen + 1} of {len(cands)}, "
                              f"distance to Ŝ {dist[chosen]:.1f} crop px.")
        gap = getattr(result, "uncertainty", None)
        if gap is not None:
            self.info.setText(self.info.text() + f"\nMirror passes {gap:.1f}% of the eye distance apart"
                              + (" — unsure, check this face." if getattr(result, "needs_review", False) else "."))
        for i in np.argsort(dist, kind="stable") if len(dist) == len(cands) else range(len(cands)):
            d = f"{dist[i]:.1f}" if i < len(dist) else "?"
            item = QListWidgetItem(QIcon(shape_thumbnail(cands[i], lines, i == chosen)), f"#{i + 1} d={d}")
            if i == chosen:
                item.setText(f"★#{i + 1} d={d}")
            self.gallery.addItem(item)


DISP_NAME, ERROR_NAME = "mean displacement (%)", "error to annotation (%)"  # % of the eye distance


class RefinePanel(QWidget):
    """Step control Ŝ, S0, S1..SK and the per-step plot."""

    stepChanged = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.enabled = QCheckBox("Show the refinement step instead of the points")
        self.enabled.setToolTip("On: the face shows the chosen step's shape with its arrows and SIP boxes, nothing "
                                "else ([ and ] step). Off: the face's points, and the other panels' overlays")
        self.enabled.setChecked(False)  # the points first, on each launch
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 9)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.label = QLabel()
        fixed_width_text(self.label)
        self.show_boxes = QCheckBox("SIP pooling boxes")
        self.show_boxes.setChecked(True)
        self.plot = pg.PlotWidget(background=(30, 30, 34))
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("bottom", "step")
        self.legend = self.plot.addLegend(offset=(-5, 5))
        self.plot.setLabel("left", "% of the eye distance")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # "pixels (x0.001)" reads badly
        self.plot.getViewBox().setLimits(yMin=0)
        self.disp_curve = self.plot.plot(pen=pg.mkPen((90, 170, 255), width=2), symbol="o", symbolSize=5,
                                         name=DISP_NAME)
        self.err_curve = self.plot.plot(pen=pg.mkPen((255, 120, 80), width=2), symbol="s", symbolSize=5,
                                        name=ERROR_NAME)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 255, 255, 120)))
        self.plot.addItem(self.marker)
        # Ŝ read as S: its hat was drawn over the axis line, a few pixels at the usual size;
        # the tick labels sit lower, a little larger
        font = QFont()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.plot.getAxis("bottom").setStyle(tickFont=font, tickTextOffset=8)
        lay = QVBoxLayout(self)
        lay.addWidget(self.enabled)
        lay.addWidget(self.slider)
        lay.addWidget(self.label)
        lay.addWidget(self.show_boxes)
        lay.addWidget(self.plot, 1)
        self.slider.valueChanged.connect(self._changed)
        self.enabled.toggled.connect(lambda *_: self.stepChanged.emit(self.slider.value()))
        self.show_boxes.toggled.connect(lambda *_: self.stepChanged.emit(self.slider.value()))
        self._changed(self.slider.value())

    @staticmethod
    def step_name(value: int) -> str:
        return "Ŝ (S-hat: the heatmaps' argmax)" if value == 0 else f"S{value - 1}"

    def set_steps(self, k: int) -> None:
        """k refinement steps: positions Ŝ, S0 .. Sk, which the plot's axis names."""
        if self.slider.maximum() != k + 1:
            self.slider.setRange(0, k + 1)
        ticks = [(-1, "Ŝ")] + [(i, f"S{i}") for i in range(k + 1)]
        self.plot.getAxis("bottom").setTicks([ticks, []])

    def _changed(self, value: int) -> None:
        self.label.setText(f"Step {self.step_name(value)}")
        self.marker.setValue(value - 1)
        self.stepChanged.emit(value)

    def describe_step(self, displacement: np.ndarray | None, error: np.ndarray | None) -> None:
        """The line under the slider: the step, and this face's figures for it (nothing stale:
        a face without a result or an annotation shows none)."""
        v = self.slider.value()
        text = f"Step {self.step_name(v)}"
        if displacement is not None and v >= 2 and v - 2 < len(displacement):
            text += f": mean displacement {displacement[v - 2]:.2f}%"
        if error is not None and v < len(error):
            text += f", error to annotation {error[v]:.2f}% of the eye distance"
        self.label.setText(text)

    def set_curves(self, displacement: np.ndarray | None, error: np.ndarray | None) -> None:
        """displacement[k-1] = mean |S^k - S^(k-1)| for k = 1..K; error for Ŝ, S0..SK."""
        if displacement is None:
            self.disp_curve.setData([], [])
        else:
            self.disp_curve.setData(np.arange(1, len(displacement) + 1), displacement)
        # "error to annotation" only where there is an annotation, in the legend too
        named = any(sample.item is self.err_curve for sample, _ in self.legend.items)
        if error is None:
            self.err_curve.setData([], [])
            if named:
                self.legend.removeItem(self.err_curve)
        else:
            self.err_curve.setData(np.arange(len(error)) - 1, error)  # Ŝ sits at x = -1
            if not named:
                self.legend.addItem(self.err_curve, ERROR_NAME)
        top = max([float(np.max(c)) for c in (displacement, error) if c is not None and len(c)] + [1e-3])
        self.plot.setYRange(0, top * 1.1)
        self.plot.setXRange(-1, max(self.slider.maximum() - 1, 1))


class ImageAdjustPanel(QWidget):
    """Brightness, contrast and gamma of the picture as shown (the view only: the model and the
    saved files never see them); it edits and follows Session.display."""

    changed = Signal(dict)  # {field: value} for Session.set_display
    reset = Signal()

    # field, label, slider range (hundredths), the slider's value for 1.0
    SLIDERS = (("brightness", "Brightness", (-60, 60)), ("contrast", "Contrast", (30, 300)),
               ("gamma", "Gamma", (30, 300)))

    def __init__(self) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        self.sliders: dict[str, QSlider] = {}
        self.values: dict[str, QLabel] = {}
        for name, label, (lo, hi) in self.SLIDERS:
            row = QHBoxLayout()
            text = QLabel(label)
            text.setMinimumWidth(70)
            row.addWidget(text)
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(lo, hi)
            s.setValue(0 if name == "brightness" else 100)
            value = QLabel()
            value.setMinimumWidth(40)
            s.valueChanged.connect(lambda v, n=name: self.changed.emit({n: v / 100.0}))
            s.valueChanged.connect(lambda v, lab=value, n=name: lab.setText(self._shown(n, v)))
            value.setText(self._shown(name, s.value()))
            self.values[name] = value
            row.addWidget(s, 1)
            row.addWidget(value)
            lay.addLayout(row)
            self.sliders[name] = s
        button = QPushButton("Reset (Ctrl+0)")
        button.clicked.connect(self.reset.emit)
        lay.addWidget(button)
        lay.addStretch(1)

    @staticmethod
    def _shown(name: str, value: int) -> str:
        return f"{value:+d}%" if name == "brightness" else f"×{value / 100:.2f}"

    def show_adjust(self, adjust) -> None:
        """Follow the session's ImageAdjust without echoing it back."""
        for name, s in self.sliders.items():
            value = round(getattr(adjust, name) * 100)
            if s.value() != value:
                s.blockSignals(True)
                s.setValue(value)
                s.blockSignals(False)
            self.values[name].setText(self._shown(name, value))


class StatusLabel(QLabel):
    """A permanent status-bar field no wider than max_px: a longer text is elided, and whole in
    its tooltip, so that the status bar's messages keep room and are not cut off."""

    def __init__(self, text: str = "", max_px: int = 240) -> None:
        super().__init__()
        self.max_px, self.full, self.tip = max_px, "", ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self.full = text
        shown = self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, self.max_px)
        super().setText(shown)
        super().setToolTip("\n".join(t for t in (text if shown != text else "", self.tip) if t))

    def setToolTip(self, tip: str) -> None:  # noqa: N802 - Qt's name
        self.tip = tip
        self.setText(self.full)

    def text(self) -> str:
        """The whole text (what is drawn may be elided)."""
        return self.full


class MessageBar(QWidget):
    """A dismissable line above the canvas for problems the user must see (bad files, save
    failures) without a modal dialog interrupting the work. A problem of one picture belongs to
    it (owner): the line goes when another picture is shown and comes back with it."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: Path | None = None
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 3, 3, 3)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.setStyleSheet(self.PROBLEM_STYLE)
        self.hide()

    PROBLEM_STYLE = "background:#5a2a22; color:#ffe9e0;"
    INFO_STYLE = "background:#22405a; color:#e6f2ff;"  # a report too long for the status bar

    def show_message(self, text: str, owner: Path | None = None, info: bool = False) -> None:
        self.label.setText(text)
        self.owner = owner
        self.setStyleSheet(self.INFO_STYLE if info else self.PROBLEM_STYLE)
        self.show()

    def clear(self) -> None:
        self.owner = None
        self.label.clear()
        self.hide()
