"""What the DRR panels draw on the canvas for the selected face: the conv8 heatmap, the
initialisation (Ŝ, S0) and one refinement step with its displacement arrows and SIP boxes."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from model.layout import layout_for
from model.metrics import normaliser

from ..document import Face
from .window_part import WindowPart

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


class ResearchView(WindowPart):
    """What the DRR panels draw on the canvas for the face they describe, one thing at a time.
    Works on the window `w` (canvas, docks, the three DRR panels, session, layout, predictor);
    its pre-labeller recomputes a trimmed trace when a panel asks for it."""

    def panel_shown(self, name: str) -> bool:
        """Open and on screen: a dock behind another one's tab does not count."""
        dock = self.w.docks[name]
        return dock.isVisible() and not dock.visibleRegion().isEmpty()

    def overlay_face(self) -> Face | None:
        """The face the panels describe: the selected one, else the first with a result."""
        e = self.w.entry
        if e is None:
            return None
        if 0 <= self.w.canvas.active < len(e.faces):
            return e.faces[self.w.canvas.active]
        return next((f for f in e.faces if f.result is not None), None)

    def update_overlays(self) -> None:
        """One thing at a time: with the Refinement panel's step view on, the face shows that
        step's shape, arrows and SIP boxes instead of its points, and nothing else; otherwise its
        points with the heatmap or the initialisation."""
        layer = self.w.canvas.research
        layer.clear()
        face = self.overlay_face()
        res = face.result if face is not None else None
        lines = self.w.layout.lines() if self.w.layout else []
        step_view = res is not None and self.panel_shown("Refinement") and self.w.refine_panel.enabled.isChecked()
        self.w.canvas.set_hidden_face(self.w.entry.faces.index(face) if step_view else -1)
        if step_view:
            layer.set_heatmap(None)
            self.w.heat_panel.info.setText("The Refinement panel shows a step on the face: untick its "
                                         "\"Show the refinement step\" box to see the heatmap here.")
            if self.panel_shown("Initialisation"):
                self.w.init_panel.set_result(res, lines)  # the list only: one thing at a time on the face
            self._draw_refinement(face, res)
            return
        self._draw_heatmap(res)
        if self.panel_shown("Initialisation"):
            self.w.init_panel.set_result(res, lines)
            if res is not None:
                if self.w.init_panel.show_s0.isChecked():
                    layer.add_shape(res.s0, S0_COLOR, size=4, style=Qt.PenStyle.DashLine)
                if self.w.init_panel.show_shat.isChecked():
                    layer.add_shape(res.s_hat, SHAT_COLOR, symbol="x", size=9, lines=False)
        if self.panel_shown("Refinement"):
            curves = (None, None) if res is None else step_curves(res, face.reference())
            self.w.refine_panel.set_curves(*curves)
            self.w.refine_panel.describe_step(*curves)

    def _draw_refinement(self, face: Face, res) -> None:
        layer, panel = self.w.canvas.research, self.w.refine_panel
        disp, err = step_curves(res, face.reference())
        panel.set_curves(disp, err)
        seq = step_shapes(res)
        v = min(self.w.session.step, len(seq) - 1)  # the session's step, which the panel's slider sets
        if v >= 2 and panel.show_boxes.isChecked():
            # step k pools SIP features around S^(k-1): draw those boxes
            layer.add_boxes(seq[v - 1], float(res.sip_box_image), BOX_COLOR)
        layer.add_shape(seq[v], SHAT_COLOR if v == 0 else STEP_COLOR, symbol="x" if v == 0 else "o", size=6,
                        lines=v > 0)
        if v >= 1:
            layer.add_arrows(seq[v - 1], seq[v], ARROW_COLOR)
        panel.describe_step(disp, err)

    def _draw_heatmap(self, res) -> None:
        panel = self.w.heat_panel
        if res is None or not self.panel_shown("Heatmaps") or not panel.show_box.isChecked():
            self.w.canvas.research.set_heatmap(None)
            if res is None:
                panel.info.setText("No model result for this face yet.")
            return
        if res.heatmaps is None:  # trimmed to save memory: computed again on demand
            self.w.canvas.research.set_heatmap(None)
            panel.info.setText("Computing this face's heatmaps again…")
            self.w.labeller.refresh_trace(self.w.entry)
            return
        maps = np.asarray(res.heatmaps)
        k = self.w.session.landmark
        if k is not None and not 0 <= k < len(maps):
            k = None
        heat = maps.max(0) if k is None else maps[k]
        size = self.w.predictor.config.input_size if self.w.predictor is not None else maps.shape[-1]
        self.w.canvas.research.set_heatmap(heat, res.crop_to_image, size / maps.shape[-1])
        self.w.canvas.research.set_heat_opacity(panel.opacity.value() / 100)
        if k is None:
            panel.info.setText(f"Max over all {len(maps)} conv8 maps, each normalised to its peak.")
        else:
            names = self.w.layout.point_names() if self.w.layout else []
            name = names[k] if k < len(names) else ""
            panel.info.setText(f"Landmark {k + 1} ({name}): peak probability {float(maps[k].max()):.3f}")
