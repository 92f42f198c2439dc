"""What the window's action objects (Editor, FileActions) share: the services the window lends
them, held weakly. They depend on this protocol, not on the MainWindow class."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtGui import QAction, QUndoStack
from PySide6.QtWidgets import QMenu, QStatusBar, QWidget

from model.layout import Layout


class WindowServices(Protocol):
    """What a part may ask of the window (MainWindow provides it): its status bar and problem
    line, its action factory, the per-picture undo stacks, navigation, taking a new document,
    closing, the folder new documents save to, and the file actions' learning on save."""

    output_dir: Path | None
    files: Any  # FileActions: learn_from(entry)

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name

    def action(self, menu: QMenu, text: str, slot: Callable, shortcut: Any = None, tip: str = "",
               checkable: bool = False) -> QAction: ...

    def stack_for(self, index: int) -> QUndoStack: ...

    def step_image(self, delta: int) -> None: ...

    def show_problem(self, text: str, picture: Path | None = None) -> None: ...

    def set_document(self, document: Any) -> None: ...

    def close(self) -> bool: ...

    @property
    def layout(self) -> Layout | None: ...


class WindowPart:
    """The parts keep what they own (their actions, their running work) as their own attributes:
    nothing is planted on the window."""

    def __init__(self, window: WindowServices) -> None:
        # a weak reference: a strong one would tie the window into a reference cycle, which
        # Python's collector may free from the prediction thread (Qt objects must die on the
        # GUI thread: that crashed the test suite)
        self._window = weakref.ref(window)

    @property
    def w(self) -> WindowServices:
        """The window's services."""
        return self._window()

    @property
    def parent(self) -> QWidget:
        """The window, as the parent of dialogs and actions."""
        return self._window()
