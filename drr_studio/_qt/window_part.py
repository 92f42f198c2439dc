"""What the window's action objects (Editor, FileActions, ResearchView) share: the window they
work on, held weakly."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .main_window import MainWindow


class WindowPart:
    """The parts keep what they own (their actions, their running work) as their own attributes:
    nothing is planted on the window."""

    def __init__(self, window: MainWindow) -> None:
        # a weak reference: a strong one would tie the window into a reference cycle, which
        # Python's collector may free from the prediction thread (Qt objects must die on the
        # GUI thread: that crashed the test suite)
        self._window = weakref.ref(window)

    @property
    def w(self) -> MainWindow:
        """The MainWindow."""
        return self._window()
