"""The clip window (drr_studio/_qt/clip_window.py) and its timeline, offscreen, on a clip this
file writes with OpenCV (never a committed video); the real model tracks it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from test_clip_document import eyed_shape  # noqa: E402

from drr_studio.clip_document import ClipDocument  # noqa: E402
from model import annotation_files as files  # noqa: E402
from model.video import write_video  # noqa: E402


@pytest.fixture
def clip(tmp_path):
    import cv2

    from model.images import read_image
    from model.resources import SAMPLE, resource

    face = cv2.resize(read_image(resource(SAMPLE))[60:460, 90:490], (200, 200), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(8):
        frame = np.full((300, 400, 3), 70, np.uint8)
        frame[50:250, 60 + 5 * i : 260 + 5 * i] = face
        frames.append(frame)
    return write_video(tmp_path / "talk.mp4", frames)


def open_window(qtbot, clip):
    from drr_studio._qt.clip_window import ClipWindow

    w = ClipWindow(clip)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.tracking_ended, timeout=60000)
    qtbot.waitUntil(lambda: w.doc.tracked == 8, timeout=5000)
    return w


def test_clip_window_tracks_corrects_saves_and_reopens(qtbot, clip, tmp_path) -> None:
    w = open_window(qtbot, clip)
    assert (tmp_path / "talk" / "000008.pts").is_file()  # saved when tracking ended
    assert w.timeline.marks.tracked == 8 and w.doc.keyframes() == []
    # a correction on frame 3: its chin moved down by 6 px; the frame becomes a keyframe
    w.timeline.set_frame(2)
    before = {f: w.doc.points[1][f].copy() for f in range(8)}
    chin = before[2][8] + [0, 6]
    w.editing.move_point(1, 8, chin, finished=True)
    assert w.doc.keyframes() == [2] and w.timeline.marks.keys == [2]
    w.undo_stack.undo()  # Ctrl+Z: the correction taken back
    assert w.doc.keyframes() == [] and w.timeline.marks.keys == []
    np.testing.assert_allclose(w.doc.points[1][5], before[5])
    w.undo_stack.redo()  # Ctrl+Shift+Z: back again
    assert w.doc.keyframes() == [2] and w.timeline.marks.keys == [2]
    np.testing.assert_allclose(w.doc.points[1][2][8], chin)
    w.undo_stack.undo()
    w.editing.move_point(1, 8, chin, finished=True)
    np.testing.assert_allclose(w.doc.points[1][2][8], chin)
    for f in (0, 5, 7):  # the frames around it follow (the correction held in its shot)
        assert np.linalg.norm(w.doc.points[1][f][8] - before[f][8]) > 3
    # the timeline's keys: to the last frame, back to the keyframe, one step, ten steps
    w.timeline.handle_key(Qt.Key.Key_End, False)
    assert w.frame == 7
    w.timeline.handle_key(Qt.Key.Key_BracketLeft, False)
    assert w.frame == 2
    w.timeline.handle_key(Qt.Key.Key_Period, False)
    assert w.frame == 3
    w.timeline.handle_key(Qt.Key.Key_Left, True)
    assert w.frame == 0
    w.close()  # saves
    back, problems = files.read_clip(tmp_path / "talk", 68)
    assert not problems and back.keyframes(1) == [2]
    np.testing.assert_allclose(back.track(1)[2].record.points[8], chin, atol=1e-3)
    w2 = open_window(qtbot, clip)  # reopened: nothing tracked again, the keyframe still there
    assert w2.tracker is None and w2.doc.keyframes() == [2]
    w2.close()


def test_clip_window_screenshot(qtbot, clip, tmp_path) -> None:
    """The timeline under the picture, for a person to look at (written to tmp_path)."""
    w = open_window(qtbot, clip)
    w.timeline.set_frame(4)
    w.editing.move_point(1, 30, w.doc.points[1][4][30] + [3, 0], finished=True)
    w.resize(640, 560)
    qtbot.wait(50)
    shot = w.grab()
    assert shot.width() > 0 and shot.save(str(tmp_path / "clip_window.png"))
    w.close()


def test_file_menu_opens_a_video_and_names_a_broken_one(qtbot, clip, tmp_path, monkeypatch) -> None:
    from conftest_app import fake_factory
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from drr_studio._qt.clip_window import ClipWindow
    from drr_studio._qt.main_window import MainWindow

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow([], settings=settings, factory=fake_factory())
    qtbot.addWidget(w)
    action = next(a for a in w.file_menu.actions() if a.text() == "Open video…")
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append(text))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"junk" * 100)
    chosen = iter([str(bad), str(clip)])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (next(chosen), ""))
    action.trigger()
    assert len(warnings) == 1 and "broken.mp4" in warnings[0]
    action.trigger()
    clips = w.findChildren(ClipWindow)
    assert len(clips) == 1 and clips[0].doc.frame_count == 8
    clips[0].close()
    w.labeller.worker.stop()


def test_clip_window_retracks_after_a_correction(qtbot, clip) -> None:
    w = open_window(qtbot, clip)
    w.retrack = True
    model = {f: w.doc.model[1][f].copy() for f in range(8)}
    w.timeline.set_frame(5)
    w.editing.move_point(1, 30, w.doc.points[1][5][30] + [0, 4], finished=True)
    w.timeline.set_frame(2)
    w.editing.move_point(1, 8, w.doc.points[1][2][8] + [0, 6], finished=True)  # re-tracks frames 3 and 4
    qtbot.waitUntil(lambda: 2 in w.doc.bases.get(1, {}) and 5 in w.doc.bases.get(1, {}), timeout=60000)
    for f in (0, 1, 2, 5):  # the tracker's points before the keyframe and on the keyframes: as they were
        np.testing.assert_allclose(w.doc.model[1][f], model[f])
    for f in (3, 4, 6, 7):
        assert np.abs(w.doc.model[1][f] - model[f]).max() > 1e-3  # tracked again
    assert w.doc.keyframes() == [2, 5]
    w.close()


def test_a_correction_is_on_disk_within_the_autosave_delay(qtbot, clip, tmp_path) -> None:
    """Nothing is lost in a clip either: a correction reaches its frames' files AUTOSAVE_MS after
    it, without Save or Close (a killed app keeps it), and the autosave rewrites only the frames
    that changed."""
    from drr_studio.document import AUTOSAVE_MS

    w = open_window(qtbot, clip)
    qtbot.waitUntil(lambda: not w.autosave.timer.isActive(), timeout=5000)
    folder = tmp_path / "talk"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pts")}
    w.timeline.set_frame(3)
    chin = w.doc.points[1][3][8] + [0, 5]
    w.editing.move_point(1, 8, chin, finished=True)
    qtbot.wait(AUTOSAVE_MS + 300)
    back, problems = files.read_clip(folder, 68)  # what a reopened clip would find now
    assert not problems and back.keyframes(1) == [3]
    np.testing.assert_allclose(back.track(1)[3].record.points[8], chin, atol=1e-3)
    changed = {n for n, t in stamps.items() if (folder / n).stat().st_mtime_ns != t}
    assert "000004.pts" in changed and changed <= {f"{i:06d}.pts" for i in range(1, 9)}
    assert not w.doc.dirty
    w.close()


def test_a_reopened_clip_goes_on_tracking_with_its_own_identities(qtbot, clip, tmp_path) -> None:
    """A clip saved before its tracking ended (here: 4 of 8 frames, its face numbered 3) is
    tracked on from frame 5 with the face still track 3, not a fresh tracker's 1."""
    import shutil

    first = open_window(qtbot, clip)
    tracked = {f: first.doc.points[1][f] for f in range(4)}
    first.close()
    shutil.rmtree(tmp_path / "talk")
    doc = ClipDocument(clip, 8, 25.0, tmp_path / "talk")
    for f, pts in tracked.items():
        doc.set_model(f, {3: pts})
    doc.save()
    w = open_window(qtbot, clip)
    assert sorted(w.doc.points) == [3] and sorted(w.doc.points[3]) == list(range(8))
    w.close()


def test_delete_in_the_clip_window_hides_the_face_from_this_frame_on(qtbot, clip, tmp_path) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(5)
    pts = w.doc.faces_at(5)[1]
    assert w.editing.face_at(pg_point(*pts.mean(0))) == 1 and w.editing.face_at(pg_point(-50, -50)) is None
    w.editing.delete_face(1)
    assert w.doc.faces_at(5) == {} and w.doc.faces_at(4).keys() == {1}
    assert "deleted from frame 6" in w.statusBar().currentMessage()
    w.save()
    assert not (tmp_path / "talk" / "000006.pts").exists() and (tmp_path / "talk" / "000005.pts").is_file()
    w.undo_stack.undo()
    assert w.doc.faces_at(5).keys() == {1} and w.points.data.size == 68  # the view follows the document
    w.undo_stack.redo()
    assert w.doc.faces_at(5) == {} and w.points.data.size == 0
    w.close()


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_approve_in_the_clip_window_colours_the_face_and_says_so(qtbot, clip) -> None:
    from drr_studio._qt.clip_views import APPROVED_COLOUR

    w = open_window(qtbot, clip)
    w.timeline.set_frame(3)
    w.editing.approve_face(1)
    assert "approved on frame 4" in w.statusBar().currentMessage() and w.timeline.marks.keys == [3]
    brushes = {tuple(b.color().getRgb()[:3]) for b in w.points.data["brush"]}
    assert brushes == {APPROVED_COLOUR}
    w.editing.approve_face(1)
    assert "taken back" in w.statusBar().currentMessage() and w.timeline.marks.keys == []
    w.close()


def test_clip_undo_and_redo_of_a_correction_keep_what_was_re_tracked_after_it(qtbot, tmp_path) -> None:
    from PySide6.QtGui import QUndoStack

    from drr_studio._qt.commands import ClipFaceEdit

    doc = ClipDocument(tmp_path / "c.mp4", 8, 25.0, tmp_path / "c")
    shape = eyed_shape(3)
    for f in range(8):
        doc.set_model(f, {1: shape + [f, 0]})
    seen: list[frozenset] = []
    doc.frames_changed.connect(seen.append)
    stack = QUndoStack()
    before = doc.face_state(1)
    doc.correct(1, 2, doc.points[1][2] + [0, 3])
    stack.push(ClipFaceEdit(doc, 1, 2, before, doc.face_state(1), "move"))
    assert seen and 2 in seen[-1] and doc.keyframes() == [2]  # announced once the change is made
    key = doc.keys[1][2]
    doc.set_retracked(1, 2, key, key, {3: shape + [3, 5.0], 4: shape + [4, 5.0]})  # arrives after the push
    retracked = doc.points[1][3].copy()
    stack.undo()
    assert doc.keyframes() == [] and 2 not in doc.approved.get(1, {})
    np.testing.assert_allclose(doc.points[1][3], shape + [3, 0])
    stack.redo()
    assert doc.keyframes() == [2]
    np.testing.assert_allclose(doc.points[1][3], retracked)  # the re-tracked points came back too


def test_b_and_a_box_in_the_clip_window_add_a_missed_face_tracked_after_it(qtbot, clip) -> None:
    from model.geometry import box_of_points

    w = open_window(qtbot, clip)
    missed = w.doc.model[1][3].copy()
    w.timeline.set_frame(0)
    w.editing.delete_face(1)  # the face as if the detector had never found it
    w.timeline.set_frame(3)
    box = box_of_points(missed) + np.array([-8, -8, 8, 8])
    assert not w.editing.add_face_in_box(np.array([10, 10, 14, 13]))  # a slip, not a box
    assert "too small" in w.statusBar().currentMessage()
    w.add_face_action.trigger()  # B: box mode
    assert w.view.box_mode
    w._box_drawn(box)  # what the drag ends with
    assert not w.view.box_mode and "Looking for the face" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: 7 in w.doc.points.get(2, {}), timeout=60000)
    assert [sorted(w.doc.faces_at(f)) for f in range(8)] == [[]] * 3 + [[2]] * 5
    assert np.abs(w.doc.faces_at(3)[2] - missed).mean() < 3  # the face that was there
    assert "Face 2 added on frame 4" in w.statusBar().currentMessage() and w.timeline.marks.keys == [3]
    w.undo_stack.undo()
    assert all(w.doc.faces_at(f) == {} for f in range(8)) and w.points.data.size == 0
    w.undo_stack.redo()
    assert sorted(w.doc.faces_at(5)) == [2] and w.points.data.size == 68
    w.close()


def test_shift_a_in_the_clip_window_is_one_undo_step(qtbot, clip) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(2)
    w.editing.approve_shot(1)
    assert all(w.doc.is_approved(1, f) for f in range(8)) and w.timeline.marks.keys == list(range(8))
    assert "approved on frames 1-8" in w.statusBar().currentMessage()
    w.undo_stack.undo()
    assert not any(w.doc.is_approved(1, f) for f in range(8)) and w.timeline.marks.keys == []
    w.close()


def test_shift_delete_in_the_clip_window_removes_the_face_from_this_frame_only(qtbot, clip) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(4)
    w.editing.hide_face(1)
    assert w.doc.faces_at(4) == {} and set(w.doc.faces_at(3)) == {1} and set(w.doc.faces_at(5)) == {1}
    assert "removed from frame 5 only" in w.statusBar().currentMessage() and w.points.data.size == 0
    w.undo_stack.undo()
    assert set(w.doc.faces_at(4)) == {1} and w.points.data.size == 68
    w.close()


def test_a_box_over_a_face_already_there_adds_no_second_one(qtbot, clip) -> None:
    from model.geometry import box_of_points

    w = open_window(qtbot, clip)
    w.timeline.set_frame(3)
    face = box_of_points(w.doc.faces_at(3)[1])
    assert not w.editing.add_face_in_box(face + [-3, -3, 3, 3])  # drawn over it: said at once
    assert "That is face 1 already" in w.statusBar().currentMessage()
    centre, side = (face[:2] + face[2:]) / 2, 0.72 * (face[2:] - face[:2]).max()
    loose = np.r_[centre - side, centre + side]  # 1.44 times as wide: found to be face 1 by the model
    assert w.editing.add_face_in_box(loose)
    qtbot.waitUntil(lambda: "is face 1" in w.statusBar().currentMessage(), timeout=60000)
    assert set(w.doc.points) == {1} and w.undo_stack.count() == 0
    side *= 1.7  # far too loose: the model's two mirror passes disagree on what it finds
    assert w.editing.add_face_in_box(np.r_[centre - side, centre + side])
    qtbot.waitUntil(lambda: "unsure" in w.statusBar().currentMessage(), timeout=60000)
    assert "check it is a face (Ctrl+Z takes it back)" in w.statusBar().currentMessage()
    w.close()


def test_clip_undo_shows_the_frame_it_changed_and_says_what(qtbot, clip) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(2)
    w.editing.move_point(1, 8, w.doc.points[1][2][8] + [0, 5], finished=True)
    w.timeline.set_frame(6)
    w.undo_stack.undo()
    assert w.frame == 2 and w.statusBar().currentMessage() == "Undone: move point 9 of face 1 on frame 3"
    w.timeline.set_frame(0)
    w.undo_stack.redo()
    assert w.frame == 2 and w.statusBar().currentMessage().startswith("Redone: move point 9")
    assert w.points.labels[1].toPlainText() == "1"  # the face's number, as the messages use it
    w.timeline.toggle_play()
    w.editing.move_point(1, 30, w.doc.points[1][2][30] + [2, 0], finished=False)
    assert not w.timeline.timer.isActive()  # a drag pauses the clip: it corrects the frame it began on
    w.editing.move_point(1, 30, w.doc.points[1][2][30] + [2, 0], finished=True)
    assert w.doc.keyframes() == [2]
    w.close()


def test_points_set_by_hand_are_saved_and_stay_put_in_a_later_drag(qtbot, clip, tmp_path) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(2)
    chin = w.doc.points[1][2][8] + [0, 6]
    w.editing.move_point(1, 8, chin, finished=True)
    w.close()
    back, _ = files.read_clip(tmp_path / "talk", 68)
    assert back.track(1)[2].record.placed == {8}
    w2 = open_window(qtbot, clip)
    assert w2.doc.placed_at(1, 2) == {8}
    w2.timeline.set_frame(2)
    w2.editing.move_point(1, 30, w2.doc.points[1][2][30] + [4, 0], finished=True)  # the nose, after reopening
    np.testing.assert_allclose(w2.doc.points[1][2][8], chin, atol=1e-3)  # the chin set before stays exactly
    assert w2.doc.placed_at(1, 2) == {8, 30}
    w2.close()


def test_the_timeline_marks_a_cut_and_says_when_there_is_no_keyframe_to_go_to(qtbot) -> None:
    from drr_studio._qt.timeline import Timeline

    t = Timeline(10, 25.0)
    qtbot.addWidget(t)
    said: list[str] = []
    t.message.connect(said.append)
    t.set_marks([2], [5], 10)
    t.set_frame(5)
    assert "cut" in t.label.text()
    t.jump_key(1)
    assert t.frame == 5 and said == ["No keyframe after this frame"]
    t.jump_key(-1)
    assert t.frame == 2


def test_t_shows_the_models_trace_of_a_face_and_another_frame_hides_it(qtbot, clip) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(3)
    w.trace_face(1)
    qtbot.waitUntil(lambda: w.trace.shown == (1, 3), timeout=60000)
    layer = w.trace.layer
    assert layer.heat_item.isVisible() and len(layer.items) >= 3  # S0 (lines, points), S_hat, arrows
    message = w.statusBar().currentMessage()
    assert message.startswith("Face 1, frame 4: S0 = candidate") and "arg-max" in message
    heat = layer.heat_item.mapRectToView(layer.heat_item.boundingRect())  # the maps lie on the face
    face = w.doc.faces_at(3)[1]
    assert heat.contains(pg_point(*face.mean(0)))
    w.timeline.set_frame(4)
    assert w.trace.shown is None and not layer.heat_item.isVisible() and layer.items == []
    w.close()


def test_a_press_on_a_point_while_the_clip_plays_pauses_it(qtbot, clip) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtTest import QTest

    w = open_window(qtbot, clip)
    w.resize(640, 560)
    qtbot.wait(50)
    w.timeline.toggle_play()
    frame = w.frame
    x, y = w.doc.faces_at(frame)[1][30]
    at = w.graphics.mapFromScene(w.view.mapViewToScene(QPointF(x, y)))
    QTest.mousePress(w.graphics.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    assert not w.timeline.timer.isActive()  # paused at the press, before any move
    QTest.mouseRelease(w.graphics.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    w.close()
