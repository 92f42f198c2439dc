"""Work-arounds for bugs in the Qt binding stack, kept in one place.

PySide6 6.12 drops one reference to a singleton each time Qt calls a Python override of
`QGraphicsItem.itemChange` (pyqtgraph has one on every item): `None` for a plain override,
`True` for pyqtgraph's, on every add, remove, show, hide, move... On Python 3.12+ these
singletons are immortal and nothing happens; on 3.11 their reference count runs down and the
interpreter aborts ("bool_dealloc: deallocating True or False" / "none_dealloc") after a few
minutes of editing, or at exit. We emulate 3.12's immortal singletons by giving None, True and
False a huge reference count, which is harmless (they are never freed anyway).
"""

from __future__ import annotations

import ctypes
import sys

_PINNED = False
_PIN = 1 << 40


def pin_singletons() -> None:
    global _PINNED
    if _PINNED or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _PIN
    _PINNED = True
