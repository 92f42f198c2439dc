"""The Qt-free document: loading, provenance, saving, export."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest_app import FakePredictor, face_image, make_folder

from drr_studio.document import Document, SaveError, Status
from model.pts import read_pts, write_pts


def _predicted_doc(tmp_path, n=2):
    folder = make_folder(tmp_path / "imgs", n)
    doc = Document.from_paths([folder])
    pred = FakePredictor()
    img = np.full((240, 320, 3), 128, np.uint8)
    img[::2] = 0
    for e in doc.entries:
        doc.load_annotations(e, 68)
        doc.apply_prediction(e, None, None, pred.inference(img))
    return doc, pred, img


def test_prediction_creates_faces_and_status(tmp_path):
    doc, _, _ = _predicted_doc(tmp_path)
    e = doc.entries[0]
    assert len(e.faces) == 1 and e.faces[0].status == Status.PREDICTED
    assert e.status == "predicted" and e.predicted
    assert doc.save(e) == []  # nothing human: nothing written
    assert not list((tmp_path / "imgs").glob("*.pts"))


def test_prediction_never_overwrites_human_points(tmp_path):
    doc, pred, img = _predicted_doc(tmp_path)
    e = doc.entries[0]
    face = e.faces[0]
    face.points = face.points + 3.0
    face.status = Status.CORRECTED
    human = face.points.copy()
    res = pred.inference(img, boxes=[face.box])
    doc.apply_prediction(e, [face.uid], [face.box_version], res)
    np.testing.assert_array_equal(face.points, human)
    assert face.result is res[0]
    # a stale result (box changed since the request) is dropped
    face.box_version += 1
    doc.apply_prediction(e, [face.uid], [face.box_version - 1], pred.inference(img, boxes=[face.box]))
    assert face.result is res[0]


def test_save_and_reload_round_trip(tmp_path):
    doc, _, _ = _predicted_doc(tmp_path)
    e = doc.entries[1]
    face = e.faces[0]
    face.status = Status.APPROVED
    face.occluded = {3, 40}
    e.dirty = True
    written = doc.save(e)
    pts = tmp_path / "imgs" / "img01.pts"
    side = tmp_path / "imgs" / "img01.drr.json"
    assert pts in written and side in written
    np.testing.assert_allclose(read_pts(pts, 68), face.points, atol=1e-3)
    meta = json.loads(side.read_text())
    assert meta["faces"][0]["status"] == "approved" and meta["faces"][0]["occluded"] == [3, 40]

    again = Document.from_paths([tmp_path / "imgs"])
    e2 = again.entries[1]
    assert again.load_annotations(e2, 68) == []
    assert e2.faces[0].status == Status.APPROVED and e2.faces[0].occluded == {3, 40}
    assert e2.status == "approved"
    assert again.entries[0].status == "not predicted"


def test_plain_pts_is_a_human_annotation_and_bad_pts_is_reported_then_kept(tmp_path):
    folder = make_folder(tmp_path / "imgs", 2)
    write_pts(folder / "img00.pts", np.random.default_rng(0).random((68, 2)) * 100)
    (folder / "img01.pts").write_text("version: 1\nn_points: 68\n{\n1 2\nfoo bar\n}\n")
    doc = Document.from_paths([folder])
    assert doc.load_annotations(doc.entries[0], 68) == []
    assert doc.entries[0].faces[0].status == Status.CORRECTED
    problems = doc.load_annotations(doc.entries[1], 68)
    assert problems and "img01.pts" in problems[0] and "point 2" in problems[0]
    # editing and saving that image keeps the unreadable original as .bak
    e = doc.entries[1]
    pred = FakePredictor()
    img = np.zeros((240, 320, 3), np.uint8)
    img[::2] = 200
    doc.apply_prediction(e, None, None, pred.inference(img))
    e.faces[0].status = Status.CORRECTED
    e.dirty = True
    doc.save(e)
    assert (folder / "img01.pts.bak").read_text().count("foo bar") == 1
    assert read_pts(folder / "img01.pts", 68).shape == (68, 2)


def test_output_folder_and_read_only_folder(tmp_path):
    doc, _, _ = _predicted_doc(tmp_path)
    e = doc.entries[0]
    e.faces[0].status = Status.CORRECTED
    e.dirty = True
    out = tmp_path / "out"
    doc.output_dir = out
    doc.save(e)
    assert (out / "img00.pts").exists() and not (tmp_path / "imgs" / "img00.pts").exists()
    if os.geteuid() == 0:
        doc.output_dir = tmp_path / "imgs" / "img00.png"  # a file: mkdir fails even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        doc.output_dir = ro
    e.dirty = True
    with pytest.raises(SaveError, match="Cannot save img00.png"):
        doc.save(e)
    assert e.dirty  # still marked unsaved: nothing is lost


def test_export_training_folder(tmp_path):
    doc, _, _ = _predicted_doc(tmp_path, n=3)
    doc.entries[0].faces[0].status = Status.APPROVED
    doc.entries[1].faces[0].status = Status.CORRECTED
    out = tmp_path / "train"
    steps = list(doc.export_training(out))
    assert [s[:2] for s in steps] == [(1, 2), (2, 2)]
    assert sorted(p.name for p in out.iterdir()) == ["img00.png", "img00.pts", "img01.png", "img01.pts"]
    from model.data import find_samples  # what drr-train reads

    samples, problems = find_samples([out], 68)
    assert len(samples) == 2 and not problems
    np.testing.assert_allclose(samples[0].points, doc.entries[0].faces[0].points, atol=1e-3)
    out2 = tmp_path / "train2"
    assert len(list(doc.export_training(out2, approved_only=True))) == 1


def test_face_image_helper_is_readable(tmp_path):
    from model.images import read_image

    assert read_image(face_image(tmp_path / "a.png")).shape == (240, 320, 3)


def test_faces_the_model_doubts_are_flagged_until_a_human_edits_them(tmp_path):
    """A result whose mirror passes disagree (needs_review) marks its face 'uncertain' and
    counts in the image's to_check; once a human corrects the points it no longer does."""
    folder = make_folder(tmp_path / "imgs", 1)
    doc = Document.from_paths([folder])
    e = doc.entries[0]
    doc.load_annotations(e, 68)
    img = np.full((240, 320, 3), 128, np.uint8)
    img[::2] = 0
    doc.apply_prediction(e, None, None, FakePredictor(faces=2, uncertainty=9.0).inference(img))
    assert [f.uncertain for f in e.faces] == [True, True] and e.to_check == 2
    e.faces[0].status = Status.CORRECTED
    assert not e.faces[0].uncertain and e.to_check == 1
    sure = FakePredictor(uncertainty=1.0).inference(img, boxes=[e.faces[1].box])
    doc.apply_prediction(e, [e.faces[1].uid], [e.faces[1].box_version], sure)
    assert e.to_check == 0


def test_export_writes_a_snapshot_taken_before_the_worker_starts(tmp_path):
    """The export's worker thread writes a copy made on the GUI thread: a prediction or edit
    applied while it runs changes nothing it writes (no shared state)."""
    from drr_studio.exports import write_export

    doc, _, _ = _predicted_doc(tmp_path, n=2)
    face = doc.entries[0].faces[0]
    face.status = Status.APPROVED
    snapshot = doc.export_snapshot()
    before = face.points.copy()
    face.points += 50.0  # the GUI thread goes on editing
    doc.entries[0].faces.clear()
    out = tmp_path / "labels"
    assert list(write_export(snapshot, "pts", out))[-1][:2] == (1, 1)
    np.testing.assert_allclose(read_pts(out / "img00.pts", 68), before, atol=1e-3)
