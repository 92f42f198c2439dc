"""DRR Studio: a desktop app to annotate faces, correct the model's landmarks and step through
what Deep Recurrent Regression does (heatmaps, initialisation, refinement)."""

__version__ = "0.1.0"

from .qt_compat import pin_singletons  # noqa: E402

pin_singletons()  # before any Qt graphics item exists: see qt_compat
