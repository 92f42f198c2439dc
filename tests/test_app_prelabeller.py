"""The pre-labeller without a window: it keeps the document in step with the model and
announces every change through the session, so that any view subscribed to it follows."""

from __future__ import annotations

from conftest_app import fake_factory, make_folder

from drr_studio._qt.prelabeller import PREDICT_AHEAD, PreLabeller
from drr_studio.document import Document
from drr_studio.session import Session


def test_prelabeller_predicts_the_picture_shown_and_the_next_ones_through_session_events(qtbot, tmp_path):
    session = Session(Document.from_paths([make_folder(tmp_path / "imgs", 5)]))
    labeller = PreLabeller(session, fake_factory())
    touched, pictures, ready = [], [], []
    session.entry_changed.connect(touched.append)
    labeller.pictureChanged.connect(pictures.append)
    labeller.modelReady.connect(ready.append)
    try:
        labeller.load_model(None)
        qtbot.waitUntil(lambda: labeller.predictor is not None, timeout=5000)
        assert ready == [labeller.predictor]
        touched.clear()  # a new model marks every picture stale; count only what follows
        session.set_current(1)
        labeller.shown(1)
        entries = session.document.entries
        qtbot.waitUntil(lambda: all(e.predicted for e in entries[1:2 + PREDICT_AHEAD]), timeout=5000)
        assert not entries[0].predicted  # behind the current picture: not asked for
        assert {1, 2, 3} <= set(touched) and 0 not in touched
        assert pictures and set(pictures) == {1}  # only the picture on screen is announced to the window
        assert labeller.picture(entries[1]) is not None and labeller.last_latency is not None
        # a picture that cannot be read: its entry carries the error and the session says so
        entries[4].path.write_bytes(b"not an image")
        problems = []
        labeller.problem.connect(lambda text, path: problems.append((text, path)))
        session.set_current(4)
        labeller.shown(4)
        qtbot.waitUntil(lambda: entries[4].error is not None, timeout=5000)
        assert problems and problems[-1][1] == entries[4].path and entries[4].path.name in problems[-1][0]
    finally:
        labeller.stop()
