"""The desk without papercuts (issue 35): each behaviour an annotator met, under pytest-qt."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def test_without_a_display_the_app_says_so_and_exits_1():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    run = subprocess.run([sys.executable, "-c", "import sys; from drr_studio._qt.app import main; "
                          "sys.exit(main([]))"], env=env, capture_output=True, text=True, timeout=120)
    if not sys.platform.startswith("linux"):
        return
    assert run.returncode == 1, run.stderr
    assert "no display found" in run.stderr and "xcb" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
