"""Annotation review in the app (issue 21) and the Qt-free session's events (issue 20): a
mislabelled point gets a ring, its picture comes first in the 'suspicious first' order and
navigation follows that order; the Review dock plots the folder's CED."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest_app import FakePredictor, fake_factory, make_folder  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from drr_studio._qt.image_list import FOLDER_ORDER, SUSPICIOUS_FIRST  # noqa: E402
from drr_studio._qt.main_window import MainWindow  # noqa: E402
from drr_studio.document import Document, Face, ImageEntry, Status  # noqa: E402
from drr_studio.review import Review, ced  # noqa: E402
from drr_studio.session import Session  # noqa: E402
from model.layout import layout_for  # noqa: E402
from model.metrics import normaliser  # noqa: E402

LAYOUT = layout_for(68)
JAW_TIP = 8


def _human_face(model_points: np.ndarray, shift: float = 0.0) -> Face:
    """A face approved as the model put it, or corrected with the jaw tip moved down by shift
    eye distances (a labelling mistake); read from an annotation file, so every point is a
    person's (placed)."""
    class Result:
        points = model_points
        uncertainty = None

    pts = model_points.copy()
    iod = float(normaliser(model_points[None], LAYOUT)[0])
    pts[JAW_TIP, 1] += shift * iod
    face = Face(box=np.array([0.0, 0.0, 100.0, 100.0]), points=pts,
                status=Status.CORRECTED if shift else Status.APPROVED, placed=set(range(len(pts))))
    face.result = Result()
    return face


def test_review_ranks_the_mislabelled_point_first_without_qt(tmp_path):
    rng = np.random.default_rng(0)
    base = FakePredictor()._result(np.array([10.0, 10.0, 110.0, 110.0])).points
    entries = []
    for i in range(6):
        model = base + rng.normal(0, 0.8, base.shape)  # the model is a little off everywhere
        entries.append(ImageEntry(tmp_path / f"p{i}.png", faces=[_human_face(model, 0.4 if i == 3 else 0.0)]))
    doc = Document([])
    doc.entries = entries
    review = Review()
    review.update(doc, LAYOUT)
    assert review.order(6)[0] == 3
    assert entries[3].faces[0].suspicious == {JAW_TIP}
    assert all(not e.faces[0].suspicious for k, e in enumerate(entries) if k != 3)
    assert len(review.errors) == 6 and review.errors[3] == pytest.approx(review.errors.max())
    x, y = ced(review.errors)
    # five faces were approved as the model put them (error 0), the sixth is off by its jaw tip
    assert y[0] == pytest.approx(5 / 6) and y[-1] == 1.0 and np.all(np.diff(y) >= 0)
    assert "6 face(s)" in review.summary() and "1 suspicious point" in review.summary()
    # a model face (no human points) is never compared
    entries[0].faces[0].status = Status.PREDICTED
    review.update(doc, LAYOUT)
    assert len(review.errors) == 5 and 0 not in review.picture_scores
    # nor is a face approved here as the model predicted it (no point placed): model vs model
    entries[1].faces[0].placed = set()
    review.update(doc, LAYOUT)
    assert len(review.errors) == 4 and 1 not in review.picture_scores


def test_session_announces_changes_and_resets_the_selection_per_picture(tmp_path):
    doc = Document([])
    doc.entries = [ImageEntry(tmp_path / "a.png"), ImageEntry(tmp_path / "b.png")]
    session = Session()
    heard: list[tuple] = []
    session.document_changed.connect(lambda: heard.append(("document",)))
    session.current_changed.connect(lambda i: heard.append(("current", i)))
    session.face_changed.connect(lambda i: heard.append(("face", i)))
    session.entry_changed.connect(lambda i: heard.append(("entry", i)))
    session.set_document(doc)
    session.set_current(1)
    session.set_active(0, {3, 4})
    assert session.selection == {3, 4}
    session.touch(doc.entries[1])
    session.set_current(0)
    assert (session.active, session.selection) == (-1, frozenset())
    assert heard == [("document",), ("current", 1), ("face", 0), ("entry", 1), ("current", 0)]
    assert session.status_counts()["not predicted"] == 2


@pytest.fixture
def window(qtbot, tmp_path):
    made = []

    def make(paths):
        w = MainWindow(paths, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                       factory=fake_factory(FakePredictor()))
        qtbot.addWidget(w)
        w.resize(1100, 700)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.labeller.worker.stop()


def test_no_rings_on_a_face_being_corrected_here(tmp_path):
    """Points placed by a drag here (and the followers they moved) differ from the model by
    design: rings are for annotations whose every point is a person's."""
    rng = np.random.default_rng(0)
    base = FakePredictor()._result(np.array([10.0, 10.0, 110.0, 110.0])).points
    entries = [ImageEntry(tmp_path / f"p{i}.png", faces=[_human_face(base + rng.normal(0, 0.8, base.shape),
                                                                      0.4 if i == 3 else 0.0)]) for i in range(6)]
    entries[3].faces[0].placed = {JAW_TIP}  # dragged here, not read from a file
    doc = Document([])
    doc.entries = entries
    review = Review()
    review.update(doc, LAYOUT)
    assert not entries[3].faces[0].suspicious and "0 suspicious point" in review.summary()
    assert review.order(6)[0] == 3  # the order still puts it first: a reading order, not a ring


def test_suspicious_first_order_rings_and_ced_in_the_window(qtbot, window, tmp_path):
    w = window([make_folder(tmp_path / "imgs", 5)])
    for i in range(5):
        w.go_to(i)
        qtbot.waitUntil(lambda: w.entry.predicted, timeout=5000)
    # a reviewer's folder: every face approved as predicted, one with the jaw tip misplaced
    for i, e in enumerate(w.document.entries):
        face = e.faces[0]
        face.placed = set(range(len(face.points)))  # as read from .pts: every point a person's
        if i == 2:
            iod = float(normaliser(face.points[None], w.layout)[0])
            face.points = face.points.copy()
            face.points[JAW_TIP, 1] += 0.5 * iod
            face.status = Status.CORRECTED
        else:
            face.status = Status.APPROVED
        w.session.touch(e)  # the row follows the event, nobody calls the panel
    assert w.image_panel.row_text(0).endswith("[approved]")
    qtbot.waitUntil(lambda: w.document.entries[2].faces[0].suspicious == {JAW_TIP}, timeout=3000)

    w.image_panel.order.setCurrentText(SUSPICIOUS_FIRST)
    rows = w.image_panel.visible_rows()
    assert rows[0] == 2 and sorted(rows) == list(range(5))
    assert "review score" in w.image_panel.row_tooltip(0)
    w.go_to(rows[0])
    flags = w.canvas._face_items[0].flags.getData()
    assert len(flags[0]) == 1 and np.allclose([flags[0][0], flags[1][0]], w.entry.faces[0].points[JAW_TIP])
    w.step_image(1)  # navigation follows the list's order
    assert w.current == rows[1]
    assert "(2/5)" in w.windowTitle()  # its place in the list as shown
    # an edit (the suspicious face fixed) does not move the pictures about under Next / Previous
    fixed = w.document.entries[2].faces[0]
    fixed.points = fixed.points.copy()
    fixed.points[JAW_TIP, 1] -= 0.5 * iod
    w.session.touch(w.document.entries[2])
    qtbot.waitUntil(lambda: not w.document.entries[2].faces[0].suspicious, timeout=3000)
    assert w.image_panel.visible_rows() == rows
    w.image_panel.order.setCurrentText(FOLDER_ORDER)
    w.image_panel.order.setCurrentText(SUSPICIOUS_FIRST)  # chosen again: sorted again
    assert w.image_panel.visible_rows()[0] != 2

    w.docks["Review"].show()
    qtbot.waitUntil(lambda: "5 face(s)" in w.review_panel.summary.text(), timeout=3000)
    assert w.review_panel.curve.getData()[1][-1] == 1.0
    w.image_panel.order.setCurrentText(FOLDER_ORDER)
    assert w.image_panel.visible_rows() == list(range(5))
