"""Shared test setup: Qt runs offscreen (without a display Qt would abort), and the real
300-W faces are read from ../shared (never copied into the repository)."""

from __future__ import annotations

import os
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
