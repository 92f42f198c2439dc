"""The clip window (drr_studio/_qt/clip_window.py) and its timeline, offscreen, on a clip this
file writes with OpenCV (never a committed video); the real model tracks it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

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


def test_keyframe_correction_propagates_in_the_document(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 10, 25.0, tmp_path / "c")
    rng = np.random.default_rng(0)
    shape = rng.normal(size=(68, 2)) * 10 + 100
    shape[36:42] -= [25, 0]
    shape[42:48] += [25, 0]
    for f in range(10):
        doc.set_model(f, {1: shape + [2 * f, 0]}, cut=f == 6)
    doc.correct(1, 0, doc.points[1][0] + [0, 4])
    assert np.allclose(doc.points[1][5] - (shape + [10, 0]), [0, 4])  # held through the shot
    assert np.allclose(doc.points[1][6], shape + [12, 0])  # not across the cut
    before = doc.face_state(1)
    doc.correct(1, 4, doc.points[1][4] + [0, -4])
    np.testing.assert_allclose(doc.points[1][0] - shape, [[0, 4]] * 68)  # the first keyframe stays
    np.testing.assert_allclose(doc.points[1][2] - (shape + [4, 0]), [[0, 2]] * 68, atol=1e-9)  # halfway
    doc.set_face_state(1, before)  # undo: the second correction taken back, frame 4 propagated again
    assert doc.keyframes() == [0] and np.allclose(doc.points[1][4] - (shape + [8, 0]), [0, 4])
    doc.correct(1, 4, doc.points[1][4] + [0, -4])
    doc.save()
    again, problems = ClipDocument.open(doc.video, 10, 25.0, doc.folder)
    assert not problems and again.keyframes() == [0, 4] and again.cuts == {6}


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



def eyed_shape(seed: int) -> np.ndarray:
    """A random 68-point shape with its eyes well apart (the eye frame of the corrections)."""
    shape = np.random.default_rng(seed).normal(size=(68, 2)) * 10 + 100
    shape[36:42] -= [25, 0]
    shape[42:48] += [25, 0]
    return shape

def test_a_correction_made_while_tracking_runs_reaches_the_frames_tracked_after_it(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 10, 25.0, tmp_path / "c")
    shape = eyed_shape(2)
    for f in range(3):
        doc.set_model(f, {1: shape + [f, 0]})
    doc.correct(1, 1, doc.points[1][1] + [0, 5])
    for f in range(3, 10):  # the tracker goes on after the correction
        doc.set_model(f, {1: shape + [f, 0]}, cut=f == 8)
    for f in (3, 7):
        np.testing.assert_allclose(doc.points[1][f] - (shape + [f, 0]), [[0, 5]] * 68, atol=1e-9)
    np.testing.assert_allclose(doc.points[1][9], shape + [9, 0])  # the next shot untouched


def test_a_clip_saved_before_tracking_ended_resumes_where_it_stopped(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 10, 25.0, tmp_path / "c")
    shape = np.random.default_rng(1).normal(size=(68, 2)) * 10 + 100
    for f in range(4):
        doc.set_model(f, {1: shape} if f != 2 else {})  # frame 3 had no face
    doc.save()
    again, _ = ClipDocument.open(doc.video, 10, 25.0, doc.folder)
    assert again.tracked == 4 and sorted(again.points[1]) == [0, 1, 3]
    assert again.faces_at(3).keys() == {1} and again.next_track() == 2  # what the resumed tracker is given
    for f in range(4, 10):
        again.set_model(f, {1: shape})
    again.save()
    done, _ = ClipDocument.open(doc.video, 10, 25.0, doc.folder)
    assert done.tracked == 10


def test_retracked_frames_stop_at_the_next_keyframe_and_cut_and_keep_the_keyframes(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 12, 25.0, tmp_path / "c")
    shape = eyed_shape(3)
    for f in range(12):
        doc.set_model(f, {1: shape + [f, 0]}, cut=f == 9)
    doc.correct(1, 6, doc.points[1][6] + [0, 3])
    state = doc.face_state(1)
    doc.correct(1, 2, doc.points[1][2] + [0, -3])
    assert doc.retrack_span(1, 2) == range(3, 6) and doc.retrack_span(1, 6) == range(7, 9)
    before = {f: p.copy() for f, p in doc.points[1].items()}
    key = doc.keys[1][2]
    tracked_again = {f: shape + [f, 2.0] for f in range(3, 12)}  # the re-tracker went on past both
    assert doc.set_retracked(1, 2, key, key, tracked_again) == [3, 4, 5]
    for f in (0, 1, 6, 7, 8, 9, 10, 11):  # not before it, not past the next keyframe or the cut
        np.testing.assert_allclose(doc.points[1][f], before[f])
    np.testing.assert_allclose(doc.points[1][2], key)  # the keyframes stay
    np.testing.assert_allclose(doc.points[1][6], before[6])
    assert doc.keyframes() == [2, 6]
    # frame 3: the re-tracked points with the blend of a zero correction (its base is the key) and
    # a quarter of frame 6's
    assert not np.allclose(doc.points[1][3], before[3])
    np.testing.assert_allclose(doc.points[1][3] - (shape + [3, 2.0]), [[0, 0.75]] * 68, atol=1e-9)
    doc.set_face_state(1, state)  # undo: the correction on frame 2 taken back, the tracker's points as they were
    assert doc.keyframes() == [6]
    np.testing.assert_allclose(doc.model[1][4], shape + [4, 0])
    assert doc.set_retracked(1, 2, key, key, tracked_again) == []  # a stale result is dropped


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


def test_autosave_writes_the_frames_that_changed(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 6, 25.0, tmp_path / "c")
    shape = np.random.default_rng(1).normal(size=(68, 2)) * 10 + 100
    shape[36:42] -= [25, 0]
    shape[42:48] += [25, 0]
    for f in range(6):
        doc.set_model(f, {1: shape + [f, 0]}, cut=f == 3)
    assert len([p for p in doc.save_changes() if p.suffix == ".pts"]) == 6
    doc.correct(1, 4, doc.points[1][4] + [0, 2])  # frames 3-5 follow (the shot after the cut)
    written = {p.name for p in doc.save_changes()}
    assert written == {"000004.pts", "000005.pts", "000006.pts", files.CLIP_SIDECAR}
    again, problems = ClipDocument.open(doc.video, 6, 25.0, doc.folder)
    assert not problems and again.keyframes() == [4]
    np.testing.assert_allclose(again.points[1][5], doc.points[1][5], atol=1e-3)
    assert [p for p in doc.save_changes() if p.suffix == ".pts"] == []  # nothing changed since


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


def test_a_deleted_face_stays_deleted_while_tracked_and_after_reopening(tmp_path) -> None:
    """Delete hides a face from a frame on; the tracker's later frames of it stay hidden, its
    files lose it, undo brings it back, and a clip reopened before tracking ended resumes the
    tracker with it (hidden), so that a later detection of it does not bring it back as new."""
    doc = ClipDocument(tmp_path / "c.mp4", 10, 25.0, tmp_path / "c")
    a, b = eyed_shape(1), eyed_shape(2) + 200
    for f in range(4):
        doc.set_model(f, {1: a, 2: b})
    doc.correct(2, 3, b + 1)  # a keyframe of the face that goes
    before = doc.face_state(2)
    doc.delete(2, 2)
    assert doc.faces_at(1).keys() == {1, 2} and doc.faces_at(2).keys() == {1} and doc.faces_at(3).keys() == {1}
    assert doc.keyframes() == []  # its keyframe is no longer shown
    doc.set_model(4, {1: a, 2: b + 3})  # tracking goes on: still hidden
    assert doc.faces_at(4).keys() == {1}
    doc.set_face_state(2, before)  # undo
    assert doc.faces_at(3).keys() == {1, 2} and doc.keyframes() == [3]
    doc.delete(2, 2)
    doc.save()
    assert not (doc.folder / "000003_face2.pts").exists() and (doc.folder / "000002_face2.pts").is_file()
    again, problems = ClipDocument.open(doc.video, 10, 25.0, doc.folder)
    assert problems == [] and again.deleted == {2: 2} and again.tracked == 5
    assert again.faces_at(4).keys() == {1}
    resume = again.tracker_faces(4)  # what the reopened window's tracker goes on from
    assert resume.keys() == {1, 2}
    np.testing.assert_allclose(resume[2], b + 3, atol=1e-3)
    again.set_model(5, {1: a, 2: b})
    assert again.faces_at(5).keys() == {1} and again.next_track() == 3


def test_a_broken_deleted_entry_is_named_and_the_rest_read(tmp_path) -> None:
    import json

    doc = ClipDocument(tmp_path / "c.mp4", 4, 25.0, tmp_path / "c")
    for f in range(2):
        doc.set_model(f, {1: eyed_shape(1)})
    doc.save()
    side = doc.folder / files.CLIP_SIDECAR
    data = json.loads(side.read_text())
    data["deleted"] = [{"track": 5, "from": "x"}, {"track": 6, "from": 2}]
    side.write_text(json.dumps(data))
    again, problems = ClipDocument.open(doc.video, 4, 25.0, doc.folder)
    assert again.deleted == {6: 1} and len(problems) == 1
    assert str(side) in problems[0] and "deleted face" in problems[0]


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


def test_an_approved_face_is_a_keyframe_saved_as_approved_and_taken_back_cleanly(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 6, 25.0, tmp_path / "c")
    shape = eyed_shape(3)
    for f in range(6):
        doc.set_model(f, {1: shape + [f, 0]})
    shown = doc.points[1][2].copy()
    assert doc.approve(1, 2) and doc.is_approved(1, 2) and doc.keyframes() == [2]
    np.testing.assert_allclose(doc.points[1][2], shown)  # approving moves nothing
    assert not doc.approve(1, 2) and doc.keyframes() == []  # taken back: no keyframe left behind
    doc.correct(1, 4, doc.points[1][4] + [0, 3])
    assert doc.approve(1, 4) and not doc.approve(1, 4) and doc.keyframes() == [4]  # the correction stays
    doc.approve(1, 1)
    before = doc.face_state(1)
    doc.correct(1, 1, doc.points[1][1] + [0, 2])  # moved again after approving: corrected
    assert not doc.is_approved(1, 1)
    doc.set_face_state(1, before)  # undo
    assert doc.is_approved(1, 1)
    doc.save()
    statuses = {f: files.read_clip(doc.folder)[0].frames[f][0].record.status for f in range(6)}
    assert statuses == {0: "predicted", 1: "approved", 2: "predicted", 3: "predicted", 4: "corrected",
                        5: "predicted"}
    again, _ = ClipDocument.open(doc.video, 6, 25.0, doc.folder)
    assert again.is_approved(1, 1) and again.keyframes() == [1, 4]


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


def test_a_face_a_person_adds_is_a_new_track_that_undo_hides(tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 6, 25.0, tmp_path / "c")
    a, b = eyed_shape(1), eyed_shape(2) + 200
    for f in range(6):
        doc.set_model(f, {1: a})
    track = doc.next_track()
    before = doc.absent(2)
    doc.add_face(track, 2, b)
    for f in (3, 4, 5):  # what the tracker's thread hands over for the frames after it
        doc.set_model(f, {track: b + f})
    assert [set(doc.faces_at(f)) for f in range(6)] == [{1}, {1}, {1, 2}, {1, 2}, {1, 2}, {1, 2}]
    assert doc.keyframes() == [2] and track == 2
    after = doc.face_state(track)
    doc.save()
    statuses = [face.record.status for face in files.read_clip(doc.folder)[0].frames[2]]
    assert statuses == ["predicted", "corrected"]
    doc.set_face_state(track, before)  # undo: gone from frame 2 on, also as tracking goes on
    doc.set_model(5, {track: b + 9})
    assert all(set(doc.faces_at(f)) == {1} for f in range(6)) and doc.keyframes() == []
    doc.set_face_state(track, after)  # redo
    assert set(doc.faces_at(4)) == {1, 2} and doc.next_track() == 3


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


def test_shift_a_approves_a_face_through_its_shot_and_again_takes_it_back(qtbot, tmp_path) -> None:
    doc = ClipDocument(tmp_path / "c.mp4", 10, 25.0, tmp_path / "c")
    shape = eyed_shape(3)
    for f in range(8):  # tracked to frame 7, a cut at 5
        doc.set_model(f, {1: shape + [f, 0], 2: shape + [100, f]}, cut=f == 5)
    doc.correct(1, 3, doc.points[1][3] + [0, 2])
    assert doc.shot(3) == range(0, 5) and doc.shot(5) == range(5, 8) and doc.shot(7) == range(5, 8)
    shown = {f: doc.points[1][f].copy() for f in range(8)}
    assert doc.approve_shot(1, 2) == [0, 1, 2, 3, 4]
    assert [doc.is_approved(1, f) for f in range(8)] == [True] * 5 + [False] * 3
    assert not any(doc.is_approved(2, f) for f in range(8))  # the other face is not touched
    for f in range(8):
        np.testing.assert_allclose(doc.points[1][f], shown[f])  # approving moves nothing
    assert doc.approve_shot(1, 4) == []  # all approved: taken back; the correction on 3 stays
    assert doc.keyframes() == [3] and not any(doc.is_approved(1, f) for f in range(8))
    doc.approve(1, 6)
    assert doc.approve_shot(1, 6) == [5, 6, 7] and doc.keyframes() == [3, 5, 6, 7]
    doc.save()
    statuses = {f: files.read_clip(doc.folder)[0].frames[f][0].record.status for f in (3, 5, 7)}
    assert statuses == {3: "corrected", 5: "approved", 7: "approved"}


def test_shift_a_in_the_clip_window_is_one_undo_step(qtbot, clip) -> None:
    w = open_window(qtbot, clip)
    w.timeline.set_frame(2)
    w.editing.approve_shot(1)
    assert all(w.doc.is_approved(1, f) for f in range(8)) and w.timeline.marks.keys == list(range(8))
    assert "approved on frames 1-8" in w.statusBar().currentMessage()
    w.undo_stack.undo()
    assert not any(w.doc.is_approved(1, f) for f in range(8)) and w.timeline.marks.keys == []
    w.close()


def test_a_face_removed_from_one_frame_stays_on_the_others_and_after_reopening(tmp_path) -> None:
    import json

    doc = ClipDocument(tmp_path / "c.mp4", 6, 25.0, tmp_path / "c")
    a, b = eyed_shape(1), eyed_shape(2) + 200
    for f in range(4):
        doc.set_model(f, {1: a, 2: b + f})
    doc.correct(2, 2, b + 5)
    before = doc.face_state(2)
    doc.hide(2, 2)
    assert [set(doc.faces_at(f)) for f in range(4)] == [{1, 2}, {1, 2}, {1}, {1, 2}]
    assert doc.keyframes() == []  # its keyframe there is no longer shown
    doc.set_model(4, {1: a, 2: b + 4})  # tracking goes on: shown again after it
    assert set(doc.faces_at(4)) == {1, 2}
    assert 2 in doc.tracker_faces(2)  # the tracker keeps following it through that frame
    doc.save()
    assert not (doc.folder / "000003_face2.pts").exists() and (doc.folder / "000004_face2.pts").is_file()
    again, problems = ClipDocument.open(doc.video, 6, 25.0, doc.folder)
    assert problems == [] and again.hidden == {2: {2}} and set(again.faces_at(2)) == {1}
    doc.set_face_state(2, before)  # undo
    assert set(doc.faces_at(2)) == {1, 2} and doc.keyframes() == [2]
    side = doc.folder / files.CLIP_SIDECAR
    data = json.loads(side.read_text())
    data["hidden"] = [{"track": 2, "frames": "x"}, {"track": 1, "frames": [2]}]
    side.write_text(json.dumps(data))
    broken, problems = ClipDocument.open(doc.video, 6, 25.0, doc.folder)
    assert broken.hidden == {1: {1}} and len(problems) == 1 and str(side) in problems[0]


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
