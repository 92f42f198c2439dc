"""The Qt side of DRR Studio: widgets, the window, undo commands, workers. Everything here draws
or wires the Qt-free model one level up (drr_studio.document, .session, .assist, .review), whose
methods every edit goes through and whose events every view follows."""

from .qt_compat import pin_singletons  # noqa: E402

pin_singletons()  # before any Qt graphics item exists: see qt_compat
