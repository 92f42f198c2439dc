"""Take the README screenshots: `xvfb-run -s '-screen 0 1400x860x24' python -m drr_studio._qt.screenshot OUT.png`.

Opens the sample, waits for the model, shows the research panels at a refinement step and
grabs the whole X screen with ImageMagick's `import` (so window decorations and docks are
what a user sees), then quits. With `--assist`: no panels; the chin is dragged down as a person
would and the rest of the face follows (assisted correction), the model's own points drawn as
red x beside them. With `--desk`: the image adjustments dock, the mouth selected with its key
and the magnifier as a drag shows it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QPointF, QTimer
from PySide6.QtWidgets import QApplication

from .app import SAMPLE
from .main_window import MainWindow


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    assist, desk = "--assist" in argv, "--desk" in argv
    argv = [a for a in argv if a not in ("--assist", "--desk")]
    out = Path(argv[0] if argv else "screenshot.png")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    w = MainWindow([SAMPLE])
    # the staged edit autosaves: into a temporary folder, never beside the shipped sample
    w.output_dir = Path(tempfile.mkdtemp(prefix="drr-screenshot-"))
    w.document.set_output_dir(w.output_dir)
    w.assistant.move_folder(w.output_dir)  # and so do the lessons
    w.setGeometry(0, 0, 1400, 860)
    w.show()
    if desk:
        w.docks["Image adjustments"].show()
    elif not assist:
        w.docks["Refinement"].show()
        w.docks["Heatmaps"].show()
        w.docks["Initialisation"].show()
        w.docks["Heatmaps"].raise_()

    def ready() -> bool:
        return w.entry is not None and w.entry.predicted and w.current_image() is not None

    def poll(tries: list[int] = [0]) -> None:  # noqa: B006 - a call counter
        tries[0] += 1
        if not ready() and tries[0] < 300:
            QTimer.singleShot(100, poll)
            return
        face = w.entry.faces[0] if w.entry and w.entry.faces else None
        if face is not None and assist:
            chin = 8
            w.canvas.set_active(0, {chin})
            moved = face.points.copy()
            moved[chin] += (0.04 * (face.box[2] - face.box[0]), 0.12 * (face.box[3] - face.box[1]))
            w.editor.on_points_dragged(0, moved, 1)  # what a drag of the chin sends, then its end
            w.editor.on_drag_finished(0, {chin}, 1)
        elif face is not None and desk:
            w.editor.select_part(("outer lips", "inner lips"), "mouth")  # key 5
            w.session.set_display(gamma=1.6, contrast=1.2)
        elif face is not None:
            w.canvas.set_active(0, {30})
            w.editor.on_selection_changed()
            w.refine_panel.enabled.setChecked(True)
            w.refine_panel.slider.setValue(2)
        if face is not None:  # zoom on the face so the overlays are readable
            x0, y0, x1, y1 = face.box
            m = 0.8 * (x1 - x0)
            w.canvas.vb.setRange(xRange=(x0 - m, x1 + m), yRange=(y0 - m, y1 + m), padding=0)
        if face is not None and desk:  # what a drag of the mouth's corner shows beside the cursor
            QTimer.singleShot(300, lambda: w.canvas._magnify(
                QPointF(*face.points[54]), w.canvas.vb.mapViewToScene(QPointF(*face.points[54]))))
        QTimer.singleShot(800, shoot)

    def shoot() -> None:
        subprocess.run(["import", "-window", "root", str(out)], check=False)
        w.close()
        app.quit()

    QTimer.singleShot(500, poll)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
