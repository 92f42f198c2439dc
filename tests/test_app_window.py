"""The main window under pytest-qt (offscreen): open, predict, step, drag, undo, approve, save,
reload, bad input."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest_app import FakePredictor, fake_factory, make_folder  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from drr_studio._qt.main_window import MainWindow  # noqa: E402
from drr_studio.document import Status  # noqa: E402
from model.pts import read_pts  # noqa: E402


@pytest.fixture
def questions(monkeypatch):
    """Modal questions would hang an offscreen test: answer Yes and record them."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


@pytest.fixture
def open_window(qtbot, tmp_path, questions):
    made = []

    def make(paths, predictor=None, fail=None, settings_name="s.ini"):
        settings = QSettings(str(tmp_path / settings_name), QSettings.Format.IniFormat)
        w = MainWindow(paths, settings=settings, factory=fake_factory(predictor, fail))
        qtbot.addWidget(w)
        w.resize(1000, 700)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.labeller.worker.stop()


def wait_predicted(qtbot, w, index=None):
    index = w.current if index is None else index
    qtbot.waitUntil(lambda: w.document.entries[index].predicted and w.current_image() is not None, timeout=5000)


def export_and_wait(qtbot, w, *args, **kwargs) -> str:
    """Run an export and wait for it to end; returns the status bar's message. Waiting on the
    worker's own signal could miss it: a short export may finish before the wait connects."""
    w.files.run_export(*args, **kwargs)
    qtbot.waitUntil(lambda: w.files.export_worker is None, timeout=30000)
    return w.statusBar().currentMessage()


def key(w, k, mod=Qt.KeyboardModifier.NoModifier):
    QTest.keyClick(w, k, mod)


def test_open_folder_predicts_and_navigates(qtbot, open_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 3)
    w = open_window([folder])
    wait_predicted(qtbot, w)
    e = w.entry
    assert w.current == 0 and len(e.faces) == 1 and e.faces[0].points.shape == (68, 2)
    assert w.image_panel.row_text(0).endswith("[predicted]")
    assert "fake" in w.status_model.text() and "CPU" in w.status_model.text()
    assert w.labeller.last_latency is not None and w.labeller.last_latency < 2.0
    # predict-ahead: the next image is ready before we go there
    qtbot.waitUntil(lambda: w.document.entries[1].predicted, timeout=5000)
    key(w, Qt.Key.Key_PageDown)
    assert w.current == 1 and w.entry.faces and w.current_image() is not None
    key(w, Qt.Key.Key_PageUp)
    assert w.current == 0
    # filter by status: only 'not predicted' rows remain visible (none or the last one)
    w.image_panel.filter.setCurrentText("predicted")
    assert 0 in w.image_panel.visible_rows()


def test_faces_the_model_doubts_are_shown_and_filtered(qtbot, open_window, tmp_path):
    """The review flag: a pink box, a marked row, the 'to check' filter, the status bar and
    the initialisation panel all say which face the model is unsure of."""
    from drr_studio._qt.canvas import UNCERTAIN_PEN
    from drr_studio._qt.image_list import TO_CHECK

    w = open_window([make_folder(tmp_path / "imgs", 1)], predictor=FakePredictor(uncertainty=7.5))
    wait_predicted(qtbot, w)
    assert w.entry.to_check == 1
    row = w.image_panel.row_text(0)
    assert row.startswith("⚠") and row.endswith("[predicted]")
    assert "1 face(s) the model is unsure of" in w.image_panel.row_tooltip(0)
    assert w.canvas._face_items[0].box.pen().color().getRgb()[:3] == UNCERTAIN_PEN
    assert "unsure of 1" in w.statusBar().currentMessage()
    w.docks["Initialisation"].show()
    w.canvas.set_active(0)
    w.research.update_overlays()
    assert "7.5% of the eye distance" in w.init_panel.info.text() and "check" in w.init_panel.info.text()
    w.image_panel.filter.setCurrentText(TO_CHECK)
    assert w.image_panel.visible_rows() == [0]
    w.entry.faces[0].status = Status.CORRECTED  # a human took it over
    w.image_panel.update_entry(0, w.entry)
    assert w.image_panel.visible_rows() == []


def test_refinement_steps_and_panels(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    for name in ("Heatmaps", "Initialisation", "Refinement"):
        w.docks[name].show()
    w.canvas.set_active(0)
    slider = w.refine_panel.slider
    assert slider.maximum() == 1 + 4  # Ŝ, S0..S4 of the fake model
    key(w, Qt.Key.Key_BracketLeft)
    assert slider.value() == 0
    n0 = len(w.canvas.research.items)
    for _ in range(3):
        key(w, Qt.Key.Key_BracketRight)
    assert slider.value() == 3 and "S2" in w.refine_panel.label.text()
    assert w.session.step == 3  # the session knows which step the panels show
    assert len(w.canvas.research.items) > n0  # arrows and SIP boxes appear from S1 on
    disp = w.refine_panel.disp_curve.getData()[1]
    assert disp is not None and len(disp) == 4 and np.all(disp > 0)
    # one thing at a time: the step's shape replaces the face's points; no heatmap under it
    assert w.canvas.hidden_face == 0 and len(w.canvas._face_items[0].points.data) == 0
    assert not w.canvas.research.heat_item.isVisible()
    # the hidden points cannot be dragged: a drag where the chin is pans, nothing changes
    before = w.entry.faces[0].points.copy()
    x, y = before[8]
    drag(qtbot, w, (x, y), (x, y + 30))
    np.testing.assert_array_equal(w.entry.faces[0].points, before)
    assert not w.entry.dirty and w.entry.faces[0].status == Status.PREDICTED
    ticks = w.refine_panel.plot.getAxis("bottom")._tickLevels[0]
    assert [t for _, t in ticks] == ["Ŝ", "S0", "S1", "S2", "S3", "S4"]
    legend = [label.text for _, label in w.refine_panel.legend.items]
    assert legend == ["mean displacement (%)"]  # no annotation here: no "error to annotation"
    width = w.docks["Refinement"].width()
    for _ in range(2):
        key(w, Qt.Key.Key_BracketRight)
    assert w.docks["Refinement"].width() == width  # the dock does not jump as the text changes
    w.refine_panel.enabled.setChecked(False)  # back to the points, with the other panels' overlays
    assert w.canvas.hidden_face == -1 and len(w.canvas._face_items[0].points.data) == 68
    assert w.canvas.research.heat_item.isVisible()
    w.docks["Initialisation"].raise_()  # it shares a tab with the heatmaps
    qtbot.waitUntil(lambda: w.init_panel.gallery.count() == 3, timeout=2000)
    assert "★" in w.init_panel.gallery.item(0).text()
    assert not w.canvas.research.heat_item.isVisible()  # the heatmap tab is now behind
    # clicking a point selects its heatmap
    w.docks["Heatmaps"].raise_()
    qtbot.waitUntil(lambda: w.canvas.research.heat_item.isVisible(), timeout=2000)
    w.canvas.set_active(0, {36})
    w.editor.on_selection_changed()
    assert w.heat_panel.landmark_index() == 36


def drag(qtbot, w, start, end, steps=6):
    vp = w.canvas.viewport()
    a = w.canvas.view_to_widget(*start).toPoint()
    b = w.canvas.view_to_widget(*end).toPoint()
    QTest.mouseMove(vp, a)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for t in np.linspace(0, 1, steps)[1:]:
        QTest.mouseMove(vp, QPoint(round(a.x() + (b.x() - a.x()) * t), round(a.y() + (b.y() - a.y()) * t)))
        qtbot.wait(5)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def test_drag_undo_redo_approve_save_reload(qtbot, open_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 2)
    w = open_window([folder])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    before = face.points.copy()
    k = 30  # nose tip: well inside the face
    x, y = before[k]
    drag(qtbot, w, (x, y), (x + 15, y + 10))
    moved = face.points - before
    assert np.abs(moved[k] - [15, 10]).max() < 2.0, moved[k]
    assert np.abs(np.delete(moved, k, 0)).max() == 0
    assert face.status == Status.CORRECTED and w.entry.dirty
    stack = w.undo_group.activeStack()
    assert stack.count() == 1  # the whole drag is one undo step
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(face.points, before)
    assert face.status == Status.PREDICTED
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert abs(face.points[k, 0] - before[k, 0] - 15) < 2.0
    key(w, Qt.Key.Key_A)
    assert face.status == Status.APPROVED and w.entry.status == "approved"
    corrected = face.points.copy()
    key(w, Qt.Key.Key_PageDown)  # autosave on leaving the image
    pts = read_pts(folder / "img00.pts", 68)
    np.testing.assert_allclose(pts, corrected, atol=1e-3)
    w.close()

    w2 = open_window([folder], settings_name="s2.ini")
    wait_predicted(qtbot, w2)
    f2 = w2.entry.faces[0]
    assert f2.status == Status.APPROVED
    np.testing.assert_allclose(f2.points, corrected, atol=1e-3)  # the prediction did not replace it
    assert f2.result is not None  # but the model's trace is there to compare


def test_reopened_folder_shows_each_pictures_status_before_it_is_visited(qtbot, open_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 4)
    w = open_window([folder])
    for i, approve in ((1, True), (2, False)):
        w.go_to(i)
        wait_predicted(qtbot, w)
        face = w.entry.faces[0]
        face.status = Status.APPROVED if approve else Status.CORRECTED
        w.entry.dirty = True
        w.files.save_current()
    w.close()
    w2 = open_window([folder], settings_name="s2.ini")
    rows = [w2.image_panel.row_text(i) for i in range(4)]
    assert rows[1].endswith("[approved]") and rows[2].endswith("[corrected]"), rows
    from drr_studio.document import Document

    fresh = Document.from_paths([folder])
    fresh.peek_statuses()  # from the side files alone, no points read
    assert [e.status for e in fresh.entries] == ["not predicted", "approved", "corrected", "not predicted"]
    assert not any(e.loaded for e in fresh.entries)
    assert "1 approved, 1 corrected" in w2.image_panel.count.text()
    w2.image_panel.filter.setCurrentText("approved")
    assert w2.image_panel.visible_rows() == [1]


def test_help_lists_every_shortcut_and_keys_say_what_they_did(qtbot, open_window, tmp_path):
    from drr_studio._qt.help import ShortcutsDialog, about_text, shortcut_rows

    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    rows = shortcut_rows(w)
    keys = {(a, k) for _, a, k in rows}
    assert ("Toggle occluded", "O") in keys and ("Approve face", "A") in keys and ("Draw face box", "B") in keys
    assert any(a == "Keyboard shortcuts" and k == "F1" for a, k in keys)
    key(w, Qt.Key.Key_A)  # a step to undo: the menu then says "Undo approve ...", the table "Undo"
    assert {a for _, a, _ in shortcut_rows(w) if a.startswith(("Undo", "Redo"))} == {"Undo", "Redo"}
    d = ShortcutsDialog(w)
    qtbot.addWidget(d)
    assert d.table.rowCount() >= len(rows) + 3
    text = about_text(w)
    assert "research-use-only" in text and "YuNet" in text and "fake" in text
    # single-letter keys say what they did
    key(w, Qt.Key.Key_Tab)
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    key(w, Qt.Key.Key_M)
    assert "mirrored" in w.statusBar().currentMessage()
    key(w, Qt.Key.Key_O)
    assert "marked occluded" in w.statusBar().currentMessage()
    key(w, Qt.Key.Key_Delete)
    assert "deleted" in w.statusBar().currentMessage() and not w.entry.faces


def test_copy_the_previous_images_faces(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 2)])
    wait_predicted(qtbot, w)
    prev = [f.points.copy() for f in w.entry.faces]
    w.go_to(1)
    wait_predicted(qtbot, w)
    key(w, Qt.Key.Key_Tab)
    key(w, Qt.Key.Key_Delete)
    assert not w.entry.faces
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(w.entry.faces) == len(prev) and "Copied" in w.statusBar().currentMessage()
    for f, p in zip(w.entry.faces, prev):
        np.testing.assert_array_equal(f.points, p)
        assert f.status == Status.CORRECTED
    qtbot.waitUntil(lambda: all(f.result is not None for f in w.entry.faces), timeout=5000)
    np.testing.assert_array_equal(w.entry.faces[0].points, prev[0])  # the model's trace did not move them
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one step takes them all back
    assert not w.entry.faces
    w.go_to(0)
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert "No previous image" in w.statusBar().currentMessage()


def test_copied_faces_replace_the_models_face_of_the_same_person(qtbot, open_window, tmp_path):
    """Video frames: the previous frame's corrected face replaces this frame's predicted face
    where they overlap (no second face for the same person), in one undo step."""
    w = open_window([make_folder(tmp_path / "imgs", 2)])
    wait_predicted(qtbot, w)
    prev = w.entry.faces[0].points.copy()
    w.go_to(1)
    wait_predicted(qtbot, w)
    predicted = w.entry.faces[0]
    assert predicted.status == Status.PREDICTED
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(w.entry.faces) == 1 and predicted not in w.entry.faces
    np.testing.assert_array_equal(w.entry.faces[0].points, prev)
    assert "1 fitted to the model's face box here" in w.statusBar().currentMessage()
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.entry.faces == [predicted]


def test_traces_are_kept_for_recent_pictures_only_and_come_back_on_demand(qtbot, open_window, tmp_path):
    from drr_studio._qt.prelabeller import PREDICT_AHEAD, TRACE_KEEP

    n = TRACE_KEEP + PREDICT_AHEAD + 4
    w = open_window([make_folder(tmp_path / "imgs", n)])
    for i in range(n):
        w.go_to(i)
        wait_predicted(qtbot, w)
    kept = [e for e in w.document.entries if e.faces and e.faces[0].result.heatmaps is not None]
    assert w.entry in kept and len(kept) <= TRACE_KEEP + PREDICT_AHEAD
    first = w.document.entries[0]
    assert first.faces[0].result.heatmaps is None and first.faces[0].result.steps is not None  # points and steps stay
    points = first.faces[0].points.copy()
    # the heatmap panel on an old picture asks for its maps again
    w.docks["Heatmaps"].show()
    w.docks["Heatmaps"].raise_()
    w.go_to(0)
    qtbot.waitUntil(lambda: first.faces[0].result.heatmaps is not None, timeout=5000)
    np.testing.assert_array_equal(first.faces[0].points, points)


def test_point_size_and_zoom_to_face(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    px = w.canvas.point_px
    key(w, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert w.canvas.point_px == px + 2 and w.settings.value("view/point_px", type=float) == px + 2
    key(w, Qt.Key.Key_Z)
    (vx0, vx1), (vy0, vy1) = w.canvas.vb.viewRange()
    x0, y0, x1, y1 = w.entry.faces[0].box
    assert vx0 <= x0 and x1 <= vx1 and vy0 <= y0 and y1 <= vy1
    assert (vx1 - vx0) < 2.5 * (x1 - x0)  # the face fills most of the view


def test_export_as_coco_and_import_it_elsewhere(qtbot, open_window, tmp_path):
    import shutil

    folder = make_folder(tmp_path / "imgs", 2)
    w = open_window([folder])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    face.status, face.occluded = Status.CORRECTED, {5}
    points = face.points.copy()
    assert export_and_wait(qtbot, w, tmp_path / "out" / "coco.json", fmt="coco").startswith("Exported 1 face")
    coco = json.loads((tmp_path / "out" / "coco.json").read_text())
    assert len(coco["annotations"]) == 1 and coco["images"][0]["file_name"] == "img00.png"
    other = tmp_path / "copy"
    other.mkdir()
    for f in folder.glob("*.png"):
        shutil.copy(f, other / f.name)
    w2 = open_window([other], settings_name="s2.ini")
    assert w2.files.import_from(tmp_path / "out" / "coco.json") == 1
    e = w2.document.entries[0]
    assert e.faces[0].status == Status.CORRECTED and e.faces[0].occluded == {5} and e.dirty
    np.testing.assert_allclose(e.faces[0].points, points, atol=1e-3)
    assert "Imported 1 face" in w2.statusBar().currentMessage()
    assert w2.files.import_from(tmp_path / "out" / "coco.json") == 0  # a person's faces are not replaced
    assert "already corrected" in w2.message_bar.label.text()  # the list above the picture


def test_multiselect_mirror_occlusion_reset(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    w.canvas.set_active(0, {36})
    key(w, Qt.Key.Key_M)
    assert w.canvas.selection == {36, 45}
    key(w, Qt.Key.Key_O)
    assert face.occluded == {36, 45} and face.status == Status.CORRECTED
    before = face.points.copy()
    x, y = before[36]
    drag(qtbot, w, (x, y), (x - 6, y - 6))
    assert np.allclose(face.points[[36, 45]] - before[[36, 45]], [-6, -6], atol=2.0)
    key(w, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_allclose(face.points, face.result.points)
    assert face.status == Status.PREDICTED and not face.occluded


def test_draw_box_adds_face_and_delete(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)], predictor=FakePredictor())
    wait_predicted(qtbot, w)
    key(w, Qt.Key.Key_B)
    assert w.canvas.box_mode
    drawn = []
    w.canvas.boxDrawn.connect(drawn.append)
    drag(qtbot, w, (10, 10), (70, 80))
    assert len(w.entry.faces) == 2
    # a drawn box frames the face like the detector's box: it is stored in the network's convention
    from model.detect import drawn_box_to_landmark_box

    assert len(drawn) == 1 and np.allclose(w.entry.faces[1].box, drawn_box_to_landmark_box(drawn[0]))
    qtbot.waitUntil(lambda: w.entry.faces[1].points is not None, timeout=5000)
    assert w.entry.faces[1].points[:, 0].max() < 80
    key(w, Qt.Key.Key_Delete)
    assert len(w.entry.faces) == 1
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(w.entry.faces) == 2


def test_a_picture_without_faces_gets_a_status_of_its_own(qtbot, open_window, tmp_path):
    import cv2

    folder = make_folder(tmp_path / "imgs", 1)
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 300, 3), 90, np.uint8))  # the fake finds no face
    w = open_window([folder])
    names = [e.path.name for e in w.document.entries]
    w.go_to(names.index("blank.png"))
    wait_predicted(qtbot, w)
    assert w.entry.status == "no face found" and not w.entry.faces
    row = w.image_panel.row_text(names.index("blank.png"))
    assert row.endswith("[no face found]"), row
    w.image_panel.filter.setCurrentText("no face found")
    assert w.image_panel.visible_rows() == [names.index("blank.png")]
    assert "No face found in blank.png" in w.statusBar().currentMessage()
    # shown again, predicted ahead this time: the status bar says it again, and what to do
    w.go_to(1 - names.index("blank.png"))
    wait_predicted(qtbot, w)
    w.statusBar().clearMessage()
    w.go_to(names.index("blank.png"))
    assert "No face found in blank.png" in w.statusBar().currentMessage()
    assert "Press B" in w.statusBar().currentMessage()


def test_problem_banner_belongs_to_its_picture(qtbot, open_window, tmp_path):
    """The red line names the picture it is about, goes when another picture is shown, comes
    back with it, and a new folder starts without it; a malformed .pts gets its own row status,
    and saving over it says where the old file went."""
    folder = make_folder(tmp_path / "imgs", 3)
    (folder / "img01.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    w = open_window([folder])
    bar = w.message_bar
    wait_predicted(qtbot, w)
    assert not bar.isVisible()
    w.go_to(1)
    assert bar.isVisible() and "img01.pts" in bar.label.text()
    wait_predicted(qtbot, w)
    assert w.image_panel.row_text(1).endswith("[bad annotation file]")
    w.go_to(2)
    assert not bar.isVisible()  # a good picture: no stale banner
    w.go_to(1)
    assert bar.isVisible() and "img01.pts" in bar.label.text()
    # correct the face and save: the malformed file is kept aside, and the status bar says so
    w.entry.faces[0].status = Status.CORRECTED
    w.entry.dirty = True
    w.files.save_current()
    assert (folder / "img01.pts.bak").exists() and "img01.pts.bak" in w.statusBar().currentMessage()
    assert not bar.isVisible() and w.entry.status == "corrected"
    # a new folder starts clean
    w.go_to(0)
    w.show_problem("something about img00", w.entry.path)
    w.files.open_paths([make_folder(tmp_path / "other", 1)])
    assert not bar.isVisible()


def test_bad_files_give_messages_and_the_rest_works(qtbot, open_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 2)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "img01.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    w = open_window([folder])
    names = [e.path.name for e in w.document.entries]
    w.go_to(names.index("broken.jpg"))
    qtbot.waitUntil(lambda: w.entry.status == "error", timeout=5000)
    assert w.message_bar.isVisible() and "broken.jpg" in w.message_bar.label.text()
    w.go_to(names.index("empty.png"))
    qtbot.waitUntil(lambda: "empty" in w.message_bar.label.text(), timeout=5000)
    w.go_to(names.index("img01.png"))
    assert "img01.pts" in w.message_bar.label.text() and "68" in w.message_bar.label.text()
    wait_predicted(qtbot, w)
    assert len(w.entry.faces) == 1  # the model still works on that picture


def test_missing_checkpoint_keeps_editing_possible(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)], fail="resources/drr_default.pt: file not found")
    qtbot.waitUntil(lambda: w.labeller.model_error is not None, timeout=5000)
    assert "not found" in w.message_bar.label.text() and "Model: none" in w.status_model.text()
    qtbot.waitUntil(lambda: w.current_image() is not None, timeout=5000)
    assert w.entry.status == "not predicted"
    key(w, Qt.Key.Key_B)
    drag(qtbot, w, (20, 20), (90, 90))
    assert len(w.entry.faces) == 1  # a box can still be drawn (no points without a model)


def test_switch_checkpoint_repredicts_untouched_faces(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    w.files.load_checkpoint(tmp_path / "bad.pt")
    qtbot.waitUntil(lambda: "kept" in w.status_model.text(), timeout=5000)
    assert "bad.pt" in w.message_bar.label.text()
    w.files.load_checkpoint(tmp_path / "other.pt")
    qtbot.waitUntil(lambda: w.entry.predicted and "kept" not in w.status_model.text(), timeout=5000)


def test_export_and_predict_all(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 4)])
    wait_predicted(qtbot, w)
    w.files.predict_all()
    qtbot.waitUntil(lambda: all(e.predicted for e in w.document.entries), timeout=8000)
    # on a loaded machine the modal progress dialog shows up; keys reach the window once it is gone
    qtbot.waitUntil(lambda: w.files.batch is None and QApplication.activeModalWidget() is None, timeout=8000)
    key(w, Qt.Key.Key_A)
    assert w.entry.faces[0].status == Status.APPROVED
    assert export_and_wait(qtbot, w, tmp_path / "train").startswith("Exported 1 face")
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["img00.png", "img00.pts"]


def test_event_loop_stays_responsive_with_a_slow_model(qtbot, open_window, tmp_path):
    """The model runs in the worker: with a 300 ms model the Qt thread still ticks freely
    while the user flips through images, and the picture appears before the points."""
    from drr_studio._qt.loop_monitor import LoopMonitor

    w = open_window([make_folder(tmp_path / "imgs", 5)], predictor=FakePredictor(delay=0.3))
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=5000)
    loop = LoopMonitor()
    for _ in range(4):
        key(w, Qt.Key.Key_PageDown)
        qtbot.wait(60)
    qtbot.waitUntil(lambda: w.entry.predicted, timeout=8000)
    loop.stop()
    assert w.current == 4 and w.entry.faces
    # a wait on the 300 ms model would show as a gap >= 0.3 s; 0.25 leaves room for a busy CPU
    held = max(loop.gaps[1:]) * 1000
    assert held < 250, f"event loop blocked {held:.0f} ms"


def test_odd_pictures_and_unwritable_output(qtbot, open_window, tmp_path):
    import cv2

    folder = tmp_path / "odd"
    folder.mkdir()
    rng = np.random.default_rng(1)
    cv2.imwrite(str(folder / "a16.png"), (rng.random((200, 260, 3)) * 65535).astype(np.uint16))
    cv2.imwrite(str(folder / "b_grey.png"), (rng.random((200, 260)) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "c_rgba.png"), (rng.random((200, 260, 4)) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "d_big.jpg"), (rng.random((2400, 3600, 3)) * 255).astype(np.uint8))
    w = open_window([folder])
    for i in range(4):
        w.go_to(i)
        wait_predicted(qtbot, w)
        assert w.entry.faces and w.entry.error is None, w.entry.path.name
    pic = w.current_image()
    assert (pic.width, pic.height) == (3600, 2400) and max(pic.display.shape) <= 2048
    # corrections that cannot be written stay in memory, with a message naming the file
    w.output_dir = w.document.output_dir = folder / "a16.png"  # a file, so no folder can be made there
    w.canvas.set_active(0)
    key(w, Qt.Key.Key_A)
    key(w, Qt.Key.Key_PageUp)
    assert "Cannot save d_big.jpg" in w.message_bar.label.text()
    assert w.document.entries[3].dirty and w.document.entries[3].faces[0].status == Status.APPROVED
    # a writable folder again: the next save (here on closing) writes them
    w.output_dir = w.document.output_dir = tmp_path / "out"
    w.close()
    assert read_pts(tmp_path / "out" / "d_big.pts", 68).shape == (68, 2)


def test_recent_folders_and_layout_are_remembered(qtbot, open_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 1)
    w = open_window([folder])
    w.files.open_paths([folder])
    assert w.files.recent_folders()[0] == str(folder.resolve())
    w.docks["Review"].show()  # the research docks start closed on each launch (test_app_desk)
    w.close()
    w2 = open_window([], settings_name="s.ini")
    assert w2.files.recent_folders()[0] == str(folder.resolve())
    assert w2.docks["Review"].isVisible()
    assert w2.files.recent_menu.actions()[0].text() == str(folder.resolve())


def test_hover_names_the_point_and_click_selects(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    x, y = w.entry.faces[0].points[36]
    pos = w.canvas.view_to_widget(x, y).toPoint()
    QTest.mouseMove(w.canvas.viewport(), pos)
    qtbot.waitUntil(lambda: "point 37" in w.status_pos.text(), timeout=2000)
    assert "right eye 1" in w.status_pos.text()
    QTest.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    assert w.canvas.active == 0 and w.canvas.selection == {36}
    x2, y2 = w.entry.faces[0].points[45]
    QTest.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     w.canvas.view_to_widget(x2, y2).toPoint())
    assert w.canvas.selection == {36, 45}


def test_command_line(tmp_path):
    from drr_studio._qt.app import SAMPLE, parse_args

    assert SAMPLE.is_file()
    args = parse_args([str(tmp_path), "--output", str(tmp_path / "o")])
    assert args.paths == [tmp_path] and args.output == tmp_path / "o" and args.checkpoint is None


def test_missing_qt_system_library_is_one_clear_line(monkeypatch, capsys):
    import ctypes.util

    from drr_studio._qt import app

    real = ctypes.util.find_library
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else real(name))
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":0")  # a display, but not the libraries Qt needs for it
    assert app.main([]) == 1
    err = capsys.readouterr().err.strip()
    assert "libxcb-cursor0" in err and "apt-get install" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # other platform plugins need none of them
    assert app.missing_qt_libraries() == []


def test_moving_a_face_box_runs_the_model_again(qtbot, open_window, tmp_path):
    """A box moved by hand is a person's box: the policy gives it the second pass (the fake
    follows model.predict.SECOND_PASS); undo brings back the detector's box and its one pass."""
    from model.predict import refined_box

    fake = FakePredictor()
    w = open_window([make_folder(tmp_path / "imgs", 1)], predictor=fake)
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    assert face.source == "detector" and fake.calls[-1] == ("detect", 1, ("detector",))
    old = face.points.copy()
    w.canvas.set_active(0)
    box = face.box + [20, 10, 20, 10]
    w.canvas.boxEdited.emit(0, box)  # what the box handles emit at the end of a drag
    np.testing.assert_allclose(face.box, box)
    assert face.source == "person"
    qtbot.waitUntil(lambda: face.result is not None and face.result.box_source == "person", timeout=5000)
    assert fake.calls[-1] == ("boxes", 1, ("person",))
    want = fake._result(refined_box(box, fake._result(box).points)).points
    np.testing.assert_allclose(face.points, want, atol=1e-9)  # untouched face: the new prediction
    assert face.status == Status.PREDICTED
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_allclose(face.box, box - [20, 10, 20, 10])
    assert face.source == "detector"
    np.testing.assert_allclose(face.points, old)
    # the trace follows the box back, so the panels never describe another box
    qtbot.waitUntil(lambda: face.result is not None and np.allclose(face.result.box, face.box), timeout=5000)
    assert fake.calls[-1] == ("boxes", 1, ("detector",))
    np.testing.assert_allclose(face.result.points, old)


def test_extensions_can_add_actions(qtbot, open_window, tmp_path, monkeypatch):
    import sys
    import types

    ext = types.ModuleType("drr_studio._qt.finetune")
    ext.install = lambda window: window.model_menu.addAction("Fine-tune on corrected data…")
    monkeypatch.setitem(sys.modules, "drr_studio._qt.finetune", ext)
    w = open_window([])
    assert "Fine-tune on corrected data…" in [a.text() for a in w.model_menu.actions()]


def test_shift_drag_inside_a_face_box_selects_points_and_leaves_the_box(qtbot, open_window, tmp_path):
    """The selection rectangle works wherever it starts; only the box's handle changes the box."""
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    box = face.box.copy()
    w.canvas.set_active(0, {30})
    x0, y0 = face.points[36:48].min(0) - 6  # around both eyes, inside the face box
    x1, y1 = face.points[36:48].max(0) + 6
    vp = w.canvas.viewport()
    a = w.canvas.view_to_widget(x0, y0)
    b = w.canvas.view_to_widget(x1, y1)
    shift, left = Qt.KeyboardModifier.ShiftModifier, Qt.MouseButton.LeftButton

    def send(kind, pos, buttons):
        glob = vp.mapToGlobal(pos.toPoint()).toPointF()
        QApplication.sendEvent(vp, QMouseEvent(kind, pos, glob, left if kind != QEvent.Type.MouseMove else
                                               Qt.MouseButton.NoButton, buttons, shift))

    send(QEvent.Type.MouseButtonPress, a, left)  # QTest's moves carry no modifiers: Shift held by hand
    for t in np.linspace(0, 1, 6)[1:]:
        send(QEvent.Type.MouseMove, a + (b - a) * t, left)
        qtbot.wait(5)
    send(QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)
    assert set(range(36, 48)) <= w.canvas.selection
    np.testing.assert_array_equal(face.box, box)
    assert face.status == Status.PREDICTED


def test_time_to_screen_is_measured_from_what_the_user_did(qtbot, open_window, tmp_path):
    """A picture predicted ahead shows its points at once: no stale switch time is left to time
    a later prediction by (the status bar once said 3522 ms for a picture predicted long before)."""
    w = open_window([make_folder(tmp_path / "imgs", 3)])
    wait_predicted(qtbot, w)
    qtbot.waitUntil(lambda: w.document.entries[1].predicted and w.labeller.picture(w.document.entries[1]) is not None,
                    timeout=5000)
    key(w, Qt.Key.Key_PageDown)
    assert w.current == 1 and w.labeller.switch_time is None and w.labeller.last_latency == 0.0
    qtbot.wait(1200)
    w.labeller.rerun(1)  # a new prediction the user asked for: timed from the Re-run, not the switch
    wait_predicted(qtbot, w)
    assert w.labeller.last_latency < 1.0


def test_shift_a_leaves_faces_that_need_a_look(qtbot, open_window, tmp_path):
    """Shift+A approves the faces the model is sure of and stops on a doubted one, selected;
    approving that one takes selecting it and pressing A."""
    import dataclasses

    w = open_window([make_folder(tmp_path / "imgs", 2)], predictor=FakePredictor(faces=2))
    wait_predicted(qtbot, w)
    sure, doubted = w.entry.faces
    doubted.result = dataclasses.replace(doubted.result, uncertainty=9.0)
    assert w.entry.needs_a_look(doubted) and not w.entry.needs_a_look(sure)
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert w.current == 0  # stopped here
    assert sure.status == Status.APPROVED and doubted.status == Status.PREDICTED and doubted.uncertain
    assert w.canvas.active == 1 and "left for you to check" in w.statusBar().currentMessage()
    # the image list says the picture is half done, and by approval (nobody corrected anything)
    assert w.image_panel.row_text(0).endswith("[approved 1 of 2]")
    key(w, Qt.Key.Key_A)  # the deliberate act: the doubted face is selected
    assert doubted.status == Status.APPROVED
    assert w.image_panel.row_text(0).endswith("[approved]")
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert w.current == 1


def test_shift_a_again_on_the_face_it_stopped_on_approves_it_and_never_unapproves(qtbot, open_window, tmp_path):
    """Issue 33: a second Shift+A used to take the sure face's approval back as "corrected" (a
    face nobody edited). Now it approves the face it stopped on (selected, looked at) and goes
    on; what is saved says approved for both."""
    import dataclasses
    import json

    folder = make_folder(tmp_path / "imgs", 2)
    w = open_window([folder], predictor=FakePredictor(faces=2))
    wait_predicted(qtbot, w)
    sure, doubted = w.entry.faces
    doubted.result = dataclasses.replace(doubted.result, uncertainty=9.0)
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert w.current == 0 and sure.status == Status.APPROVED
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert w.current == 1
    assert sure.status == Status.APPROVED and doubted.status == Status.APPROVED
    side = json.loads((folder / "img00.drr.json").read_text())
    assert [f["status"] for f in side["faces"]] == ["approved", "approved"]
    wait_predicted(qtbot, w)
    w.entry.faces[1].result = dataclasses.replace(w.entry.faces[1].result, uncertainty=0.5)
    key(w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # the last picture: it says so
    assert w.current == 1 and "Last picture of the list: every picture is approved" in w.statusBar().currentMessage()


def test_taking_an_approval_back_restores_what_the_face_was(qtbot, open_window, tmp_path):
    """A on approved faces takes the approval back: a face nobody edited goes back to the
    model's prediction (not "corrected", which would make it a lesson and a fine-tune face)."""
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    key(w, Qt.Key.Key_A)
    assert face.status == Status.APPROVED
    key(w, Qt.Key.Key_A)
    assert face.status == Status.PREDICTED and not face.human


def test_labelme_export_opens_its_pictures_and_a_folder_of_them_imports(qtbot, open_window, tmp_path, monkeypatch):
    """labelme resolves imagePath from the JSON's folder: the export writes it so; File -> Import
    annotations from a folder reads a folder of labelme files (the normal case) in one go."""
    import shutil

    from PySide6.QtWidgets import QFileDialog

    folder = make_folder(tmp_path / "imgs", 2)
    w = open_window([folder])
    for i in (0, 1):
        w.go_to(i)
        wait_predicted(qtbot, w)
        w.entry.faces[0].status = Status.APPROVED
    out = tmp_path / "elsewhere" / "labelme"
    assert export_and_wait(qtbot, w, out, fmt="labelme").startswith("Exported 2 face")
    for k in (0, 1):
        data = json.loads((out / f"img0{k}.json").read_text())
        assert (out / data["imagePath"]).resolve() == (folder / f"img0{k}.png").resolve()
    other = tmp_path / "copy"
    other.mkdir()
    for p in folder.glob("*.png"):
        shutil.copy(p, other / p.name)
    w2 = open_window([other], settings_name="s2.ini")
    wait_predicted(qtbot, w2)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    w2.files.import_folder()
    assert "Imported 2 face(s)" in w2.statusBar().currentMessage()
    assert all(e.faces and e.faces[0].human for e in w2.document.entries)


def test_select_a_part_by_its_line_or_its_key(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    key(w, Qt.Key.Key_Z)  # zoomed on the face: lines stand clear of the points
    seg = max(range(48, 59), key=lambda k: np.hypot(*(face.points[k + 1] - face.points[k])))
    mid = (face.points[seg] + face.points[seg + 1]) / 2  # on the outer lip line, between two points
    pos = w.canvas.view_to_widget(*mid).toPoint()
    assert w.canvas.point_at(w.canvas.vb.mapSceneToView(w.canvas.mapToScene(pos))) is None
    QTest.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    assert w.canvas.active == 0 and w.canvas.selection == set(range(48, 60))
    assert "Selected the outer lips" in w.statusBar().currentMessage()
    key(w, Qt.Key.Key_1)
    assert w.canvas.selection == set(range(17))
    key(w, Qt.Key.Key_4)
    assert w.canvas.selection == set(range(36, 48)) and "eyes" in w.statusBar().currentMessage()
    before = face.points.copy()
    x, y = before[40]
    drag(qtbot, w, (x, y), (x + 5, y))  # one drag moves the whole selected part
    moved = face.points - before
    assert np.allclose(moved[36:48, 0], moved[40, 0]) and moved[40, 0] > 3
    assert np.abs(moved[:36]).max() == 0
    key(w, Qt.Key.Key_Escape)
    assert not w.canvas.selection


def test_image_adjustments_change_the_view_only_and_reset_with_one_key(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    raw = w.current_image().display.copy()
    w.adjust_panel.sliders["gamma"].setValue(200)  # lighter shadows
    w.adjust_panel.sliders["brightness"].setValue(10)
    assert w.session.display.gamma == 2.0 and w.session.display.brightness == 0.1
    assert w.adjust_panel.values["gamma"].text() == "×2.00" and w.adjust_panel.values["brightness"].text() == "+10%"
    shown = w.canvas.image_item.image
    assert shown.shape == raw.shape and shown.mean() > raw.mean() + 10
    np.testing.assert_array_equal(w.current_image().display, raw)  # the picture itself is untouched
    key(w, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert w.session.display.identity and w.adjust_panel.sliders["gamma"].value() == 100
    np.testing.assert_array_equal(w.canvas.image_item.image, raw)


def test_a_magnifier_follows_a_dragged_point(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    x, y = w.entry.faces[0].points[30]
    vp = w.canvas.viewport()
    a = w.canvas.view_to_widget(x, y).toPoint()
    QTest.mouseMove(vp, a)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for dx in (3, 6, 9):
        QTest.mouseMove(vp, a + QPoint(dx, 0))
        qtbot.wait(5)
    assert w.canvas.magnifier.isVisible() and not w.canvas.magnifier.pixmap().isNull()
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a + QPoint(9, 0))
    assert not w.canvas.magnifier.isVisible()


def test_views_follow_the_sessions_events_without_a_refresh(qtbot, open_window, tmp_path):
    """napari's shape: a change made through the Qt-free session (no window method, no refresh
    call) reaches the canvas, the image list, the title's unsaved mark and the undo-free state."""
    import dataclasses

    w = open_window([make_folder(tmp_path / "imgs", 2)])
    wait_predicted(qtbot, w)
    s, e = w.session, w.entry
    face = e.faces[0]
    assert not w.isWindowModified()
    s.set_active(0, {3, 4})  # the selection: the canvas draws it larger
    sizes = w.canvas._face_items[0].points.data["size"]
    assert sizes[3] == sizes[4] == w.canvas.point_px + 4 and sizes[5] == w.canvas.point_px
    moved = face.points + [4.0, 0.0]
    s.set_face_state(e, face, dataclasses.replace(face.state(), points=moved, status=Status.APPROVED))
    np.testing.assert_allclose(w.canvas._face_items[0].points.data["x"], moved[:, 0])
    assert w.image_panel.row_text(0).endswith("[approved]")
    assert w.isWindowModified()  # the folder's dirty flag is announced
    w.files.save_current()
    assert not w.isWindowModified()
    s.remove_face(e, face)
    assert len(w.canvas._face_items) == 0 and w.isWindowModified()


def test_box_mode_and_the_heatmap_landmark_are_the_sessions(qtbot, open_window, tmp_path):
    """State the views show lives in the Qt-free session: the menu, the canvas and the Heatmaps
    panel follow it, whoever changes it."""
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    key(w, Qt.Key.Key_B)
    assert w.session.box_mode and w.canvas.box_mode and w.editor.box_action.isChecked()
    w.session.set_box_mode(False)
    assert not w.editor.box_action.isChecked() and not w.canvas.box_mode
    w.docks["Heatmaps"].show()
    w.session.set_landmark(36)
    assert w.heat_panel.landmark_index() == 36
    w.heat_panel.mode.setCurrentIndex(0)  # the panel edits it too
    assert w.session.landmark is None
    w.canvas.set_active(0, {30})  # a clicked point shows its map
    assert w.session.landmark == 30 and w.heat_panel.landmark_index() == 30
