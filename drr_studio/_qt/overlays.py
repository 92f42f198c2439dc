"""What the DRR panels draw on the canvas for the selected face: the conv8 heatmap, the
initialisation (Ŝ, S0) and one refinement step with its displacement arrows and SIP boxes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt

from model.layout import layout_for
from model.metrics import normaliser

from ..document import Face, ImageEntry
from ..session import Session

if TYPE_CHECKING:
    from PySide6.QtWidgets import QDockWidget

    from model.layout import Layout

    from .canvas import Canvas
    from .panels import HeatmapPanel, InitPanel, RefinePanel

SHAT_COLOR = (255, 70, 70)
S0_COLOR = (80, 255, 120)
STEP_COLOR = (0, 230, 255)
ARROW_COLOR = (255, 240, 60)
BOX_COLOR = (120, 200, 255)


def step_shapes(result) -> list[np.ndarray]:
    """The sequence the step control walks: Ŝ, S0, S1 .. SK."""
    return [np.asarray(result.s_hat, float)] + [np.asarray(s, float) for s in result.steps]


def step_curves(result, reference: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean displacement |S^k - S^(k-1)| for k = 1..K, and the mean error of Ŝ, S0..SK to a
    human reference shape (None without one, or when the reference is the model's own points,
    approved unchanged: an error of 0 there says nothing), both in % of the eye distance (of the
    reference, else of the model's points), like every other error the app shows."""
    steps = np.asarray(result.steps, float)
    has_reference = reference is not None and np.shape(reference) == steps.shape[1:]
    shape = np.asarray(reference if has_reference else result.points, float)
    scale = 100.0 / max(float(normaliser(shape[None], layout_for(len(shape)))[0]), 1e-6)
    disp = np.linalg.norm(np.diff(steps, axis=0), axis=-1).mean(-1) * scale
    if not has_reference or np.allclose(reference, np.asarray(result.points, float), atol=0.5):
        return disp, None
    seq = np.stack(step_shapes(result))
    return disp, np.linalg.norm(seq - shape, axis=-1).mean(-1) * scale


class ResearchView:
    """What the DRR panels draw on the canvas for the face they describe, one thing at a time.
    Given what it shows and draws on (the session, the canvas, the three DRR panels and their
    docks) and two questions it asks (the model in use; recompute a trimmed trace), it
    subscribes itself (subscribe): nobody has to call update_overlays."""

    def __init__(self, session: Session, canvas: Canvas, docks: dict[str, QDockWidget], heat_panel: HeatmapPanel,
                 init_panel: InitPanel, refine_panel: RefinePanel, predictor: Callable[[], Any],
                 refresh_trace: Callable[[ImageEntry], None]) -> None:
        self.session, self.canvas, self.docks = session, canvas, docks
        self.heat_panel, self.init_panel, self.refine_panel = heat_panel, init_panel, refine_panel
        self.predictor, self.refresh_trace = predictor, refresh_trace

    def subscribe(self) -> None:
        """Follow the session (the picture, its faces, the face and points selected, the step,
        the landmark), the panels' own choices and whether their docks are on screen. Subscribe
        after the canvas has been given the faces (its slots run first)."""
        s = self.session
        s.entry_changed.connect(lambda i: i == s.current and self.update_overlays())
        for event in (s.current_changed, s.face_changed, s.step_changed, s.landmark_changed):
            event.connect(lambda *_: self.update_overlays())
        s.selection_changed.connect(self.update_overlays)
        for name in ("Heatmaps", "Initialisation", "Refinement"):
            self.docks[name].visibilityChanged.connect(lambda *_: self.update_overlays())
        self.heat_panel.changed.connect(self.update_overlays)
        self.init_panel.changed.connect(self.update_overlays)
        self.refine_panel.stepChanged.connect(lambda _: self.update_overlays())  # its toggles redraw too

    @property
    def layout(self) -> Layout | None:
        return self.canvas.layout

    def panel_shown(self, name: str) -> bool:
        """Open and on screen: a dock behind another one's tab does not count."""
        dock = self.docks[name]
        return dock.isVisible() and not dock.visibleRegion().isEmpty()

    def overlay_face(self) -> Face | None:
        """The face the panels describe: the selected one, else the first with a result."""
        e = self.session.entry
        if e is None:
            return None
        if 0 <= self.session.active < len(e.faces):
            return e.faces[self.session.active]
        return next((f for f in e.faces if f.result is not None), None)

    def update_overlays(self) -> None:
        """One thing at a time: with the Refinement panel's step view on, the face shows that
        step's shape, arrows and SIP boxes instead of its points, and nothing else; otherwise its
        points with the heatmap or the initialisation."""
        layer = self.canvas.research
        layer.clear()
        face = self.overlay_face()
        res = face.result if face is not None else None
        lines = self.layout.lines() if self.layout else []
        step_view = res is not None and self.panel_shown("Refinement") and self.refine_panel.enabled.isChecked()
        self.canvas.set_hidden_face(self.session.entry.faces.index(face) if step_view else -1)
        if step_view:
            layer.set_heatmap(None)
            self.heat_panel.info.setText("The Refinement panel shows a step on the face: untick its "
                                         "\"Show the refinement step\" box to see the heatmap here.")
            if self.panel_shown("Initialisation"):
                self.init_panel.set_result(res, lines)  # the list only: one thing at a time on the face
            self._draw_refinement(face, res)
            return
        self._draw_heatmap(res)
        if self.panel_shown("Initialisation"):
            self.init_panel.set_result(res, lines)
            if res is not None:
                if self.init_panel.show_s0.isChecked():
                    layer.add_shape(res.s0, S0_COLOR, size=4, style=Qt.PenStyle.DashLine)
                if self.init_panel.show_shat.isChecked():
                    layer.add_shape(res.s_hat, SHAT_COLOR, symbol="x", size=9, lines=False)
        if self.panel_shown("Refinement"):
            curves = (None, None) if res is None else step_curves(res, face.reference())
            self.refine_panel.set_curves(*curves)
            self.refine_panel.describe_step(*curves)

    def _draw_refinement(self, face: Face, res) -> None:
        layer, panel = self.canvas.research, self.refine_panel
        disp, err = step_curves(res, face.reference())
        panel.set_curves(disp, err)
        seq = step_shapes(res)
        v = min(self.session.step, len(seq) - 1)  # the session's step, which the panel's slider sets
        if v >= 2 and panel.show_boxes.isChecked():
            # step k pools SIP features around S^(k-1): draw those boxes
            layer.add_boxes(seq[v - 1], float(res.sip_box_image), BOX_COLOR)
        layer.add_shape(seq[v], SHAT_COLOR if v == 0 else STEP_COLOR, symbol="x" if v == 0 else "o", size=6,
                        lines=v > 0)
        if v >= 1:
            layer.add_arrows(seq[v - 1], seq[v], ARROW_COLOR)
        panel.describe_step(disp, err)

    def _draw_heatmap(self, res) -> None:
        panel = self.heat_panel
        if res is None or not self.panel_shown("Heatmaps") or not panel.show_box.isChecked():
            self.canvas.research.set_heatmap(None)
            if res is None:
                panel.info.setText("No model result for this face yet.")
            return
        if res.heatmaps is None:  # trimmed to save memory: computed again on demand
            self.canvas.research.set_heatmap(None)
            panel.info.setText("Computing this face's heatmaps again…")
            self.refresh_trace(self.session.entry)
            return
        maps = np.asarray(res.heatmaps)
        k = self.session.landmark
        if k is not None and not 0 <= k < len(maps):
            k = None
        heat = maps.max(0) if k is None else maps[k]
        predictor = self.predictor()
        size = predictor.config.input_size if predictor is not None else maps.shape[-1]
        self.canvas.research.set_heatmap(heat, res.crop_to_image, size / maps.shape[-1])
        self.canvas.research.set_heat_opacity(panel.opacity.value() / 100)
        if k is None:
            panel.info.setText(f"Max over all {len(maps)} conv8 maps, each normalised to its peak.")
        else:
            names = self.layout.point_names() if self.layout else []
            name = names[k] if k < len(names) else ""
            panel.info.setText(f"Landmark {k + 1} ({name}): peak probability {float(maps[k].max()):.3f}")
