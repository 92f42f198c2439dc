"""Entry point: `drr-studio [FOLDER | IMAGES… | CLIP.mp4] [--checkpoint FILE] [--output DIR]`.

With no argument the bundled sample picture opens, so that the first screen always shows a
face with the default model's points.
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from pathlib import Path

from model.resources import SAMPLE as SAMPLE_PICTURE
from model.resources import resource

SAMPLE = resource(SAMPLE_PICTURE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="drr-studio", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="a folder, or image files (default: the sample), or video clips "
                    "(each opens in a clip window)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="model checkpoint (default: the shipped one)")
    ap.add_argument("--output", type=Path, default=None, help="write .pts files here instead of beside the images")
    return ap.parse_args(argv)


# system libraries Qt's X11 platform plugin loads (Qt 6.5+), with their Debian/Ubuntu packages.
# Without them Qt aborts with a long plugin message; we say what to install instead.
QT_XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4",
                    "xcb-keysyms": "libxcb-keysyms1", "xkbcommon-x11": "libxkbcommon-x11-0"}


def missing_qt_libraries() -> list[str]:
    """Packages to install before Qt can open a window on this Linux box (empty elsewhere, and
    when another platform plugin such as offscreen or wayland was asked for)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (platform and not platform.startswith("xcb")):
        return []
    return [pkg for lib, pkg in QT_XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]


def display_missing() -> bool:
    """True on Linux when Qt would need a display and none is set (no DISPLAY for X11, no
    WAYLAND_DISPLAY for Wayland); other platform plugins (offscreen, minimal, vnc, eglfs…) need
    none. Qt itself would abort with a message about xcb-cursor0, which misleads."""
    if not sys.platform.startswith("linux"):
        return False
    wanted = [p.split(":")[0].strip() for p in os.environ.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]
    if any(p not in ("xcb", "wayland", "wayland-egl") for p in wanted):
        return False  # a plugin that draws without a display server
    x11 = bool(os.environ.get("DISPLAY")) and (not wanted or "xcb" in wanted)
    wayland = bool(os.environ.get("WAYLAND_DISPLAY")) and (not wanted or any(p.startswith("wayland") for p in wanted))
    return not (x11 or wayland)


def warm_up() -> None:
    """Import torch and OpenCV's DNN module before the window exists: torch's import holds
    Python's GIL for about a second, which done in the worker would freeze the visible window;
    done here the window opens a moment later and then never stutters."""
    try:
        import numpy as np

        import model.predict  # noqa: F401 - the import is the point
        from model.detect import detect_faces
        from model.inference import keep_freed_memory

        # The app predicts in a loop (predict-ahead, Predict all), like drr-predict: keeping freed
        # blocks saves page faults on every face (bench.speed measures it); the heap keeps its
        # peak, which bench.app_memory measures with this same call.
        keep_freed_memory()

        detect_faces(np.zeros((32, 32, 3), np.uint8))
    except Exception:  # noqa: BLE001 - the worker reports model problems properly later
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if display_missing():
        print("drr-studio: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set): run it in a "
              "desktop session, or over ssh -X; the command-line tools (drr-predict, drr-convert) need none",
              file=sys.stderr)
        return 1
    missing = missing_qt_libraries()
    if missing:
        print(f"drr-studio: Qt cannot open a window without these system packages: {' '.join(missing)} "
              f"(on Debian/Ubuntu: sudo apt-get install {' '.join(missing)})", file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    warm_up()
    app.setApplicationName("DRR Studio")
    app.setOrganizationName("drr-studio")
    from model.video import is_video_file

    from .clip_window import open_clip

    paths = args.paths or ([SAMPLE] if SAMPLE.exists() else [])
    clips = [p for p in paths if is_video_file(p)]  # each in a clip window of its own (issue 36)
    window = MainWindow(checkpoint=args.checkpoint)
    window.output_dir = args.output
    window.show()
    window.files.open_paths([p for p in paths if not is_video_file(p)])
    for clip in clips:
        open_clip(clip, window, args.checkpoint, args.output)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
