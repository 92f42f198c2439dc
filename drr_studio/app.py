"""Entry point: `drr-studio [FOLDER | IMAGES…] [--checkpoint FILE] [--output DIR]`.

With no argument the bundled sample picture opens, so that the first screen always shows a
face with the default model's points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.resources import SAMPLE as SAMPLE_PICTURE
from model.resources import resource

SAMPLE = resource(SAMPLE_PICTURE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="drr-studio", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="a folder, or image files (default: the sample)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: the shipped one)")
    ap.add_argument("--output", type=Path, default=None, help="write .pts files here instead of beside the images")
    return ap.parse_args(argv)


def warm_up() -> None:
    """Import torch and build the face detector before the window exists. Both hold Python's
    GIL for a long time (torch's import ~1 s, the detector's first construction ~0.3 s): done in
    the worker they would freeze the visible window instead; done here the window opens a
    moment later and then never stutters."""
    try:
        import numpy as np

        import model.predict  # noqa: F401 - the import is the point
        from model.detect import detect_faces

        detect_faces(np.zeros((32, 32, 3), np.uint8))
    except Exception:  # noqa: BLE001 - the worker reports model problems properly later
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    warm_up()
    app.setApplicationName("DRR Studio")
    app.setOrganizationName("drr-studio")
    paths = args.paths or ([SAMPLE] if SAMPLE.exists() else [])
    window = MainWindow(checkpoint=args.checkpoint)
    window.output_dir = args.output
    window.show()
    window.open_paths(paths)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
