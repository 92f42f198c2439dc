"""File dialogs that remember their folder per purpose: Load checkpoint opens where the last
checkpoint came from, Export where the last export went, never in the picture folder by
accident. Each purpose keeps its folder in QSettings ("dialogs/<purpose>")."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

KEY = "dialogs/{}"


def folder_for(settings: QSettings, purpose: str, fallback: str) -> str:
    """The folder the dialog for `purpose` opens in: the last one used for it while it
    exists, else `fallback`."""
    value = settings.value(KEY.format(purpose), "")
    return value if isinstance(value, str) and value and Path(value).is_dir() else fallback


def remember(settings: QSettings, purpose: str, chosen: str) -> None:
    """Keep the folder of what was chosen (a folder itself, or a file's folder)."""
    if chosen:
        path = Path(chosen)
        settings.setValue(KEY.format(purpose), str(path if path.is_dir() else path.parent))


def open_file(parent: QWidget, settings: QSettings, purpose: str, title: str, fallback: str, pattern: str) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, title, folder_for(settings, purpose, fallback), pattern)
    remember(settings, purpose, path)
    return path


def open_files(parent: QWidget, settings: QSettings, purpose: str, title: str, fallback: str,
               pattern: str) -> list[str]:
    files, _ = QFileDialog.getOpenFileNames(parent, title, folder_for(settings, purpose, fallback), pattern)
    if files:
        remember(settings, purpose, files[0])
    return files


def save_file(parent: QWidget, settings: QSettings, purpose: str, title: str, fallback: str, name: str,
              pattern: str) -> str:
    start = str(Path(folder_for(settings, purpose, fallback)) / name)
    path, _ = QFileDialog.getSaveFileName(parent, title, start, pattern)
    remember(settings, purpose, path)
    return path


def existing_dir(parent: QWidget, settings: QSettings, purpose: str, title: str, fallback: str) -> str:
    folder = QFileDialog.getExistingDirectory(parent, title, folder_for(settings, purpose, fallback))
    remember(settings, purpose, folder)
    return folder
