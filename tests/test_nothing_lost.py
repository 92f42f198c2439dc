"""Issue 33: a person's work survives everything. Each bug a new user met, as a pytest-qt test
against the real window (offscreen): deleted faces stay deleted, drawn boxes are saved and
never replaced, Reset learned asks first, Ctrl+R forgets a lesson, copy-previous fits or
refuses, edits reach disk without leaving the picture, views follow the model with no refresh
call, a second app on the folder is warned."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest_app import FakePredictor, face_image, make_folder  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from test_app_window import drag, key, open_window, questions, wait_predicted  # noqa: E402,F401

from drr_studio.document import Face, Status  # noqa: E402
from model import annotation_files as files  # noqa: E402


@pytest.fixture
def make_window(open_window):  # noqa: F811 - the imported fixture
    return open_window


def test_a_deleted_face_stays_deleted_after_reopening(qtbot, make_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 2)
    w = make_window([folder], predictor=FakePredictor(faces=2))
    wait_predicted(qtbot, w)
    assert len(w.entry.faces) == 2
    w.canvas.set_active(0)
    key(w, Qt.Key.Key_Delete)
    assert len(w.entry.faces) == 1
    key(w, Qt.Key.Key_PageDown)
    w.close()
    side = json.loads((folder / "img00.drr.json").read_text())
    assert len(side["deleted"]) == 1 and side["faces"] == []
    w2 = make_window([folder], predictor=FakePredictor(faces=2), settings_name="s2.ini")
    wait_predicted(qtbot, w2)
    assert len(w2.entry.faces) == 1, "the deleted face came back"
    # undo of a deletion brings the face back and forgets the deletion
    w2.canvas.set_active(0)
    key(w2, Qt.Key.Key_Delete)
    assert not w2.entry.faces and w2.entry.status == Status.CORRECTED.value
    key(w2, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(w2.entry.faces) == 1 and len(w2.entry.deleted) == 1


def test_a_drawn_box_is_saved_before_approval_and_survives_a_model_switch(qtbot, make_window, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    face_image(folder / "a.png")
    w = make_window([folder], predictor=FakePredictor(faces=0))
    wait_predicted(qtbot, w)
    assert not w.entry.faces
    drawn = np.array([60.0, 50.0, 180.0, 190.0])
    w.editor.on_box_drawn(drawn)
    qtbot.waitUntil(lambda: w.entry.faces[0].points is not None, timeout=5000)
    box = w.entry.faces[0].box.copy()
    assert w.entry.faces[0].status == Status.PREDICTED  # the model's points, a person's box
    w.files.load_checkpoint(None)  # a model switch: every face predicted again
    qtbot.waitUntil(lambda: w.entry.predicted, timeout=5000)
    np.testing.assert_array_equal(w.entry.faces[0].box, box)
    w.files.save_all()
    w.close()
    w2 = make_window([folder], predictor=FakePredictor(faces=0), settings_name="s2.ini")
    qtbot.waitUntil(lambda: w2.entry.predicted, timeout=5000)
    assert len(w2.entry.faces) == 1 and w2.entry.faces[0].source == "person"
    np.testing.assert_allclose(w2.entry.faces[0].box, box, atol=1e-3)
    assert w2.entry.faces[0].points is not None


def test_an_edit_reaches_disk_without_leaving_the_picture(qtbot, make_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 1)
    w = make_window([folder])
    wait_predicted(qtbot, w)
    x, y = w.entry.faces[0].points[30]
    drag(qtbot, w, (x, y), (x + 12, y + 6))
    qtbot.waitUntil(lambda: (folder / "img00.pts").is_file() and not w.entry.dirty, timeout=3000)
    assert not w.session.dirty


def test_reset_learned_corrections_asks_first(qtbot, make_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    w = make_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    w.assistant.model.learned["x"] = np.zeros(136)
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (asked.append(a[2]), answers.pop(0))[1])
    w.editor.reset_learned()
    assert w.assistant.model.learned_count == 1 and len(asked) == 1  # No: kept
    w.editor.reset_learned()
    assert w.assistant.model.learned_count == 0


def test_ctrl_r_takes_a_faces_lesson_back(qtbot, make_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 1)
    w = make_window([folder])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    x, y = face.points[8]
    drag(qtbot, w, (x, y), (x + 10, y + 8))
    w.files.save_current()
    key_name = w.document.face_key(w.entry, face)
    assert key_name in w.assistant.model.learned
    w.canvas.set_active(0)
    key(w, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert face.status == Status.PREDICTED
    assert key_name not in w.assistant.model.learned
    w.files.save_current()
    assert key_name not in w.assistant.model.learned
    learned = folder / files.LEARNED_FILE
    assert not learned.exists() or key_name not in json.loads(learned.read_text()).get("learned", {})


def test_copy_previous_from_a_picture_of_another_size_fits_or_refuses(qtbot, make_window, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    face_image(folder / "a.png", size=(240, 320))
    face_image(folder / "b.png", size=(480, 640), seed=1)
    w = make_window([folder])
    wait_predicted(qtbot, w)
    prev = w.entry.faces[0]
    prev_rel = (prev.points - prev.box[:2]) / (prev.box[2:] - prev.box[:2])
    w.go_to(1)
    wait_predicted(qtbot, w)
    target_box = w.entry.faces[0].box.copy()
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    face = w.entry.faces[0]
    assert len(w.entry.faces) == 1 and face.status == Status.CORRECTED
    np.testing.assert_allclose((face.points - target_box[:2]) / (target_box[2:] - target_box[:2]), prev_rel,
                               atol=1e-6)  # the shape, fitted to this picture's face box
    assert "fitted" in w.statusBar().currentMessage()
    # no face here to fit to and another size: nothing copied, and it says why
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    w.canvas.set_active(0)
    key(w, Qt.Key.Key_Delete)
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not w.entry.faces and "Nothing copied" in w.statusBar().currentMessage()


def test_copy_previous_never_covers_a_face_a_person_finished(qtbot, make_window, tmp_path):
    """Ctrl+Shift+V onto a picture whose face is approved adds no second face on top of it."""
    folder = make_folder(tmp_path / "imgs", 2)
    w = make_window([folder])
    wait_predicted(qtbot, w)
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # approve the first, go to the second
    wait_predicted(qtbot, w)
    key(w, Qt.Key.Key_A)  # the second approved too
    approved = w.entry.faces[0].points.copy()
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(w.entry.faces) == 1 and w.entry.faces[0].status == Status.APPROVED
    np.testing.assert_array_equal(w.entry.faces[0].points, approved)
    assert "would cover a face a person already corrected or approved" in w.statusBar().currentMessage()


def test_views_follow_changes_made_from_code_with_no_refresh_call(qtbot, make_window, tmp_path):
    """The document announces every change itself: the image list and the canvas follow an
    import and a face added from code, without touch()."""
    from model.formats import AnnotatedImage, FaceAnnotation

    folder = make_folder(tmp_path / "imgs", 2)
    w = make_window([folder])
    wait_predicted(qtbot, w)
    pts = w.entry.faces[0].points.copy()
    other = w.document.entries[1]
    w.document.import_annotations([AnnotatedImage(other.path, [FaceAnnotation(pts, set(), "approved", None)])])
    assert w.image_panel.row_text(1).endswith("[approved]")
    face = Face(box=np.array([10.0, 10.0, 100.0, 100.0]), points=pts, status=Status.CORRECTED)
    w.document.insert_face(w.entry, face)
    assert len(w.canvas._face_items) == 2  # the canvas drew it
    assert "corrected 1 of 2" in w.image_panel.row_text(0)
    w.session.set_current(1)  # the list follows the session's picture, nobody pushes it
    assert w.image_panel.current_index() == 1


def test_a_second_app_on_the_folder_is_warned_and_a_stale_lock_is_taken_over(qtbot, make_window, tmp_path):
    import socket
    import subprocess
    import sys

    folder = make_folder(tmp_path / "imgs", 1)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (folder / files.LOCK_FILE).write_text(json.dumps({"pid": other.pid, "host": socket.gethostname()}))
        w = make_window([folder])
        assert "Another DRR Studio" in w.message_bar.label.text()
    finally:
        other.kill()
        other.wait()
    w.close()
    # the other process is gone: its lock is stale, taken over in silence
    w2 = make_window([folder], settings_name="s2.ini")
    assert "Another DRR Studio" not in w2.message_bar.label.text()
    assert json.loads((folder / files.LOCK_FILE).read_text())["pid"] == os.getpid()
    w2.close()
    assert not (folder / files.LOCK_FILE).exists()


def test_a_pts_edited_by_another_program_while_open_is_kept_not_overwritten(tmp_path):
    from drr_studio.document import Document
    from model.pts import read_pts, write_pts

    folder = make_folder(tmp_path / "imgs", 1)
    pts = np.tile([[50.0, 60.0]], (68, 1))
    write_pts(folder / "img00.pts", pts)
    doc = Document.from_paths([folder])
    entry = doc.entries[0]
    doc.load_annotations(entry)
    write_pts(folder / "img00.pts", pts + 7)  # another program, while the folder is open here
    face = entry.faces[0]
    doc.set_face_state(entry, face, face.state())  # an edit here
    doc.save(entry)
    assert [p.name for p in doc.outside_edits] == ["img00.pts.theirs"]
    np.testing.assert_allclose(read_pts(folder / "img00.pts.theirs"), pts + 7, atol=1e-3)  # theirs, kept
    np.testing.assert_allclose(read_pts(folder / "img00.pts"), pts, atol=1e-3)  # ours, saved
    face.points = face.points + 1
    doc.set_face_state(entry, face, face.state())
    doc.save(entry)  # nothing changed outside since our save: no copy
    assert doc.outside_edits == []



def test_the_autosave_does_not_learn_from_a_face_still_being_corrected(qtbot, make_window, tmp_path):
    """The edit reaches disk at once, but the face teaches the assisted correction only when the
    person leaves the picture (a half-corrected face would otherwise teach its own followers)."""
    folder = make_folder(tmp_path / "imgs", 2)
    w = make_window([folder])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    name = w.document.face_key(w.entry, face)
    x, y = face.points[8]
    drag(qtbot, w, (x, y), (x + 10, y + 8))
    qtbot.waitUntil(lambda: (folder / "img00.pts").is_file() and not w.session.dirty, timeout=3000)
    assert name not in w.assistant.model.learned
    key(w, Qt.Key.Key_PageDown)
    assert name in w.assistant.model.learned


def test_another_programs_edit_is_read_again_when_untouched_and_asked_about_when_touched(
        qtbot, make_window, tmp_path, monkeypatch):
    """Issue 33, other writers: an untouched picture whose .pts changed on disk is read again when
    shown; a picture edited here asks at its next save which version wins, and keeps the other."""
    from dataclasses import replace

    from PySide6.QtWidgets import QMessageBox

    from model.pts import read_pts, write_pts

    folder = make_folder(tmp_path / "imgs", 2)
    pts = np.tile([[60.0, 70.0]], (68, 1)) + np.arange(68)[:, None]
    write_pts(folder / "img00.pts", pts)
    w = make_window([folder])
    qtbot.waitUntil(lambda: w.entry is not None and bool(w.entry.faces), timeout=5000)
    w.go_to(1)
    write_pts(folder / "img00.pts", pts + 5)  # another program, while img00 is not shown
    w.go_to(0)
    np.testing.assert_allclose(w.entry.faces[0].points, pts + 5, atol=1e-3)  # read again
    # now edited here, and changed there too: asked; "No" takes theirs and keeps ours as .mine
    face = w.entry.faces[0]
    moved = face.points.copy()
    moved[0] += 9
    w.session.set_face_state(w.entry, face, replace(face.state(), points=moved))
    write_pts(folder / "img00.pts", pts + 20)
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (asked.append(a[1]), QMessageBox.StandardButton.No)[1])
    w.files.save_current()
    assert asked == ["Changed by another program"]
    np.testing.assert_allclose(read_pts(folder / "img00.pts"), pts + 20, atol=1e-3)  # theirs in place
    np.testing.assert_allclose(read_pts(folder / "img00.pts.mine")[0], moved[0], atol=1e-3)  # ours kept
    np.testing.assert_allclose(w.entry.faces[0].points, pts + 20, atol=1e-3)


def test_setting_an_output_folder_is_not_taken_for_another_programs_edit(tmp_path):
    from drr_studio.document import Document
    from model.pts import read_pts, write_pts

    folder = make_folder(tmp_path / "imgs", 1)
    write_pts(folder / "img00.pts", np.tile([[50.0, 60.0]], (68, 1)))
    doc = Document.from_paths([folder])
    entry = doc.entries[0]
    doc.load_annotations(entry)
    out = tmp_path / "out"
    doc.set_output_dir(out)
    assert entry.dirty and not doc.changed_on_disk(entry)
    doc.save(entry)
    assert doc.outside_edits == [] and read_pts(out / "img00.pts").shape == (68, 2)


def test_deleting_another_tools_annotation_keeps_the_original_and_says_so(qtbot, make_window, tmp_path):
    """Delete (or Ctrl+R) on a face read from a .pts another tool wrote takes that file away:
    the original is kept as NAME.pts.orig and the status bar names it."""
    from model.pts import read_pts, write_pts

    folder = make_folder(tmp_path / "imgs", 1)
    w0 = make_window([folder])
    wait_predicted(qtbot, w0)
    truth = w0.entry.faces[0].points + 3.0
    w0.close()
    for p in folder.glob("img00.*json"):
        p.unlink()
    write_pts(folder / "img00.pts", truth)  # a person's annotation from elsewhere, no side file
    w = make_window([folder], settings_name="s2.ini")
    wait_predicted(qtbot, w)
    assert w.entry.faces[0].human
    w.canvas.set_active(0)
    key(w, Qt.Key.Key_Delete)
    key(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not (folder / "img00.pts").exists()
    np.testing.assert_allclose(read_pts(folder / "img00.pts.orig"), truth, atol=1e-3)
    assert "img00.pts.orig" in w.statusBar().currentMessage()


def test_undoing_a_drawn_box_records_no_deletion(qtbot, make_window, tmp_path):
    """Ctrl+Z of a face drawn with B takes the addition back; it is not a deletion, so its box
    is not kept in the side file's "deleted" (which keeps every prediction away from it)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    face_image(folder / "a.png")
    w = make_window([folder], predictor=FakePredictor(faces=0))
    wait_predicted(qtbot, w)
    w.editor.on_box_drawn(np.array([60.0, 50.0, 180.0, 190.0]))
    qtbot.waitUntil(lambda: bool(w.entry.faces) and w.entry.faces[0].points is not None, timeout=5000)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not w.entry.faces and w.entry.deleted == []
    w.files.save_all()
    side = folder / "a.drr.json"
    assert not side.exists() or "deleted" not in json.loads(side.read_text())
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)  # redo
    assert len(w.entry.faces) == 1
