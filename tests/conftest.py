"""Shared test setup: Qt runs offscreen (without a display Qt would abort), and the real
300-W faces are read from ../shared (never copied into the repository)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data" / "300w_train"


NO_SHARED_DATA = (f"needs the research-only 300-W faces at {SHARED_DATA}, which exist only next to the "
                  "project's own checkout (CI has them); a clone without them skips these tests")


def require_shared_data() -> Path:
    """The real faces: skipped with one reason where they are absent, a failure in CI (CI=true),
    where they must be present so that no test is skipped there in silence."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must have the shared 300-W data at {SHARED_DATA}")
        pytest.skip(NO_SHARED_DATA)
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture(scope="session")
def sample_faces(tmp_path_factory) -> list[Path]:
    """Three pictures made from the shipped sample (shifted crops of the astronaut), each with
    a .pts of the shipped model's points: real-looking faces that a bare clone has too."""
    import cv2
    import numpy as np

    from model.images import read_image
    from model.predict import Predictor
    from model.pts import write_pts
    from model.resources import SAMPLE, resource

    d = tmp_path_factory.mktemp("sample_faces")
    img = read_image(resource(SAMPLE))
    points = Predictor.load(mirror_average=False, precision="fp32").inference(img)[0].points
    out = []
    for name, (y, x) in (("sample_a", (0, 0)), ("sample_b", (24, 36)), ("sample_c", (10, 60))):
        crop = np.ascontiguousarray(img[y : y + 440, x : x + 440])
        path = d / f"{name}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        write_pts(path.with_suffix(".pts"), points - [x, y])
        out.append(path)
    return out


@pytest.fixture(autouse=True)
def collect_garbage_on_the_gui_thread():
    """After each test, collect its garbage here, on the main (GUI) thread: a window left in a
    reference cycle would otherwise be freed by Python's collector from whatever thread allocates
    next, such as the next test's prediction thread, and Qt objects must die on the GUI thread."""
    yield
    import gc

    gc.collect()


@pytest.fixture(autouse=True)
def no_blocking_dialogs(monkeypatch):
    """A modal question, message or file dialog waits for a click that never comes offscreen and
    would hang the suite (CI then only sees its time run out): here each one fails the test at
    once with its title, unless the test answers it (its own monkeypatch wins)."""
    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    def refuse(kind):
        def dialog(*args, **kwargs):
            texts = [a for a in args if isinstance(a, str)][:2]
            raise AssertionError(f"unanswered modal {kind} in a test: {' / '.join(texts)}")
        return dialog

    for name in ("question", "warning", "critical", "information", "about"):
        monkeypatch.setattr(QMessageBox, name, refuse(f"QMessageBox.{name}"))
    for name in ("getOpenFileName", "getOpenFileNames", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, refuse(f"QFileDialog.{name}"))
    for name in ("getItem", "getText", "getInt", "getDouble"):
        monkeypatch.setattr(QInputDialog, name, refuse(f"QInputDialog.{name}"))
