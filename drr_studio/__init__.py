"""DRR Studio: a desktop app to annotate faces, correct the model's landmarks and step through
what Deep Recurrent Regression does (heatmaps, initialisation, refinement).

The model of the app is Qt-free (document, session, assist, review: importing them needs no Qt);
the widgets, the window and the workers are in drr_studio._qt."""

__version__ = "0.1.0"
