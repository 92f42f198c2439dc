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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared 300-W data is missing at {SHARED_DATA} (CI provides it)")
    return SHARED_DATA


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
