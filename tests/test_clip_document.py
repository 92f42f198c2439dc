"""The clip document (drr_studio/clip_document.py) without Qt: what the tracker gives, what a person
does (corrections, approvals, deletions, faces added), undo through face states, and the clip
folder it saves and reopens."""

from __future__ import annotations

import numpy as np

from drr_studio.clip_document import ClipDocument
from model import annotation_files as files


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


def test_shift_a_approves_a_face_through_its_shot_and_again_takes_it_back(tmp_path) -> None:
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
