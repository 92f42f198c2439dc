"""Assisted correction in the window: a drag moves the face's unplaced points in the same undo
step, placed points never move, lessons persist beside the folder and reset cleanly, bad
statistics fall back to plain correction."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest_app import FakePredictor, make_folder  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from test_app_window import drag, open_window, questions, wait_predicted  # noqa: E402, F401 - fixtures

from drr_studio.assist import LEARNED_FILE  # noqa: E402
from drr_studio.document import Status  # noqa: E402
from model.correction import CorrectionModel, file_sha256, stats_path  # noqa: E402

JAW, CHIN = list(range(17)), 8


def jaw_statistics(checkpoint) -> CorrectionModel:
    """Residuals where the whole jaw shifts sideways together, the rest barely moves."""
    rng = np.random.default_rng(0)
    res = rng.normal(0, 0.004, size=(300, 68, 2))
    res[:, JAW, 0] += rng.normal(0, 0.06, size=(300, 1))
    stats = CorrectionModel(68, res.reshape(300, -1).mean(0), np.cov(res.reshape(300, -1), rowvar=False),
                            300.0, shrinkage=0.1, learn_weight=0.5)
    stats.model = {"sha256": file_sha256(checkpoint), "name": checkpoint.name}
    return stats


@pytest.fixture
def assisted_window(open_window, tmp_path):  # noqa: F811 - the imported fixture
    """A window whose (fake) model has assisted-correction statistics beside its checkpoint
    ("good"), a bad statistics file ("bad") or none."""

    def make(paths, stats: str = "good", settings_name: str = "s.ini"):
        ckpt = tmp_path / "fake.pt"
        ckpt.write_bytes(b"fake weights")
        if stats == "good":
            jaw_statistics(ckpt).save(stats_path(ckpt))
        elif stats == "bad":
            stats_path(ckpt).write_text('{"format": "drr-correction", "num_points": 5}')
        predictor = FakePredictor()
        predictor.path = ckpt
        return open_window(paths, predictor=predictor, settings_name=settings_name)

    return make


def test_a_drag_moves_the_unplaced_points_in_one_undo_step(qtbot, assisted_window, tmp_path):
    w = assisted_window([make_folder(tmp_path / "imgs", 2)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    before = face.points.copy()
    x, y = before[CHIN]
    drag(qtbot, w, (x, y), (x + 12, y))
    moved = face.points - before
    assert abs(moved[CHIN, 0] - 12) < 2.0
    # the rest of the jaw followed the chin; the eyes stayed
    assert np.all(moved[[2, 5, 11, 14], 0] > 4.0), moved[JAW, 0]
    assert np.abs(moved[36:48]).max() < 1.0
    assert face.placed == {CHIN} and face.status == Status.CORRECTED
    assert "you have not placed followed" in w.statusBar().currentMessage()
    stack = w.undo_group.activeStack()
    assert stack.count() == 1  # the drag and the followers: one step
    QTest.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(face.points, before)
    assert face.placed == set() and face.status == Status.PREDICTED
    QTest.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert abs(face.points[2, 0] - before[2, 0] - moved[2, 0]) < 1e-9


def test_placed_points_never_move(qtbot, assisted_window, tmp_path):
    w = assisted_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    x, y = face.points[CHIN]
    drag(qtbot, w, (x, y), (x + 10, y))
    chin = face.points[CHIN].copy()
    x, y = face.points[4]
    w.canvas.set_active(-1)
    drag(qtbot, w, (x, y), (x - 8, y))  # another jaw point, pulled the other way
    assert face.placed == {CHIN, 4}
    np.testing.assert_array_equal(face.points[CHIN], chin)
    # R re-fits: the placed points still stay
    w.canvas.set_active(0)
    QTest.keyClick(w, Qt.Key.Key_R)
    np.testing.assert_array_equal(face.points[CHIN], chin)


def test_turned_off_only_the_dragged_point_moves(qtbot, assisted_window, tmp_path):
    w = assisted_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    w.editor.assist_action.trigger()
    assert not w.assistant.enabled and "off" in w.assistant.describe()
    face = w.entry.faces[0]
    before = face.points.copy()
    x, y = before[CHIN]
    drag(qtbot, w, (x, y), (x + 12, y))
    assert np.abs(np.delete(face.points - before, CHIN, 0)).max() == 0


def test_lessons_persist_across_reopen_and_reset(qtbot, assisted_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 2)
    w = assisted_window([folder])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    x, y = face.points[CHIN]
    drag(qtbot, w, (x, y), (x + 12, y))
    QTest.keyClick(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # approve and next: saved, learned
    assert w.assistant.model.learned_count == 1
    saved = json.loads((folder / LEARNED_FILE).read_text())
    assert list(saved["learned"]) == ["img00.png"]
    side = json.loads((folder / "img00.drr.json").read_text())
    assert side["faces"][0]["placed"] == [CHIN]  # the person's points keep their look
    w.close()

    w2 = assisted_window([folder], settings_name="s2.ini")
    wait_predicted(qtbot, w2)
    assert w2.assistant.model.learned_count == 1
    assert "learned from 1 face" in w2.assistant.describe()
    assert "learned from 1 face" in w2.status_assist.text()  # always in the status bar
    assert w2.entry.faces[0].placed == {CHIN}
    w2.editor.reset_learned()
    assert w2.assistant.model.learned_count == 0 and not (folder / LEARNED_FILE).exists()


def test_bad_statistics_give_plain_correction_and_a_message(qtbot, assisted_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 1)
    (folder / LEARNED_FILE).write_text("not json")
    w = assisted_window([folder], stats="bad")
    wait_predicted(qtbot, w)
    assert not w.assistant.model.active
    assert "fake.correction.json" in w.assistant.prior_problem
    assert LEARNED_FILE in w.message_bar.label.text()
    face = w.entry.faces[0]
    before = face.points.copy()
    x, y = before[CHIN]
    drag(qtbot, w, (x, y), (x + 12, y))
    assert np.abs(np.delete(face.points - before, CHIN, 0)).max() == 0
    assert (folder / LEARNED_FILE).read_text() == "not json"  # never overwritten


def test_help_lists_the_assisted_correction_key_and_menu_items(qtbot, assisted_window, tmp_path):
    from drr_studio._qt.help import MOUSE, shortcut_rows

    w = assisted_window([make_folder(tmp_path / "imgs", 1)])
    rows = {(menu, action): keys for menu, action, keys in shortcut_rows(w)}
    assert rows[("Edit", "Re-fit unplaced points")] == "R"
    assert any("assisted correction" in text for _, text in MOUSE)
    texts = [a.text() for a in w.model_menu.actions()] + [a.text() for a in w.edit_menu.actions()]
    assert "Reset learned corrections" in texts and "Assisted correction: points follow a fix" in texts


def test_a_face_approved_unchanged_teaches_too_but_another_tools_annotation_does_not(qtbot, assisted_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 2)
    w = assisted_window([folder])
    wait_predicted(qtbot, w)
    QTest.keyClick(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # the model was right: approve, next
    assert w.assistant.model.learned_count == 1
    face = w.document.entries[0].faces[0]  # the picture just approved (the next may not be predicted yet)
    face.placed = set(range(68))  # as read from another tool's .pts: every point a person's
    assert not w.assistant.learn("x", face)


def test_locked_points_never_move_and_unlocked_ones_follow(qtbot, assisted_window, tmp_path):
    """Issue 34: L locks the selected points (they count as placed, nothing moves them); a chin
    drag moves the rest of the jaw (these statistics shift it as one) but not the locked half."""
    w = assisted_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    locked = set(range(8))
    w.canvas.set_active(0)
    w.canvas.select_points(locked)
    QTest.keyClick(w, Qt.Key.Key_L)
    assert locked <= face.placed and face.status == Status.CORRECTED
    before = face.points.copy()
    w.canvas.set_active(-1)
    x, y = face.points[CHIN]
    drag(qtbot, w, (x, y), (x + 12, y))
    np.testing.assert_array_equal(face.points[sorted(locked)], before[sorted(locked)])
    # the unlocked half followed (less than without the lock: the locked half says the model was right there)
    assert np.abs(face.points[9:17, 0] - before[9:17, 0]).mean() > 0.5
    QTest.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the drag
    QTest.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the lock
    assert not (locked & face.placed)


def test_the_last_picture_teaches_on_closing_after_its_autosave(qtbot, assisted_window, tmp_path):
    """Approved (or corrected) on the last picture, written by the autosave, then the app is
    closed without leaving the picture: its faces teach all the same."""
    folder = make_folder(tmp_path / "imgs", 1)
    w = assisted_window([folder])
    wait_predicted(qtbot, w)
    QTest.keyClick(w, Qt.Key.Key_A)  # approve, stay
    assert w.files.save_all(learn=False) == []  # the autosave: on disk, not taught yet
    assert w.assistant.model.learned_count == 0 and not (folder / LEARNED_FILE).exists()
    w.close()
    assert list(json.loads((folder / LEARNED_FILE).read_text())["learned"]) == ["img00.png"]
