"""Work-arounds for bugs in the Qt binding stack, kept in one place.

PySide6 6.12 drops one reference to `True` each time a Python `QGraphicsItem.itemChange`
override (pyqtgraph has one on every item) returns a boolean value, e.g. when an item is added,
removed or shown. On Python 3.12+ `True` is immortal and nothing happens; on 3.11 its reference
count runs down and the interpreter aborts ("bool_dealloc: deallocating True or False") after a
few minutes of editing, or at exit. We emulate 3.12's immortal booleans by giving both a huge
reference count, which is harmless (they are never freed anyway).
"""

from __future__ import annotations

import ctypes
import sys

_PINNED = False
_PIN = 1 << 40


def pin_booleans() -> None:
    global _PINNED
    if _PINNED or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for obj in (True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _PIN
    _PINNED = True
