"""One annotation-file module (model.annotation_files): the multi-face names, the side file,
statuses and boxes, the same along every path (drr-predict, drr-convert, drr-train, the app)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from model import annotation_files as files
from model.cli.convert import main as convert_main
from model.cli.predict import main as predict_main
from model.cli.train import main as train_main
from model.data import find_samples
from model.formats import AnnotatedImage, FaceAnnotation, read_pts_folder, write_pts_folder
from model.images import read_image
from model.pts import read_pts, write_pts
from model.resources import DEFAULT_WEIGHTS, resource


def test_names_and_the_old_drr_predict_names(tmp_path):
    pts = np.random.default_rng(0).uniform(10, 90, (68, 2))
    assert files.pts_name("a", 0) == "a.pts" and files.pts_name("a", 1) == "a_face2.pts"
    assert files.face_name("dir/a", 0) == "dir/a" and files.face_name("dir/a", 2) == "dir/a#face3"
    write_pts(tmp_path / "a.pts", pts)
    write_pts(tmp_path / "a_2.pts", pts + 5)  # drr-predict's former name for a second face
    assert [p.name for p in files.face_pts_files(tmp_path, "a")] == ["a.pts", "a_2.pts"]
    # but b_2.pts beside a picture b_2.jpg is that picture's own file (300-W's HELEN names)
    write_pts(tmp_path / "b.pts", pts)
    write_pts(tmp_path / "b_2.pts", pts)
    (tmp_path / "b_2.jpg").write_bytes(b"")
    assert [p.name for p in files.face_pts_files(tmp_path, "b")] == ["b.pts"]
    write_pts(tmp_path / "a_face2.pts", pts + 1)  # the current name wins over the old one
    assert [p.name for p in files.face_pts_files(tmp_path, "a")] == ["a.pts", "a_face2.pts"]


def test_ibug_folder_keeps_status_box_occluded_and_placed(tmp_path):
    pts = np.random.default_rng(1).uniform(10, 90, (68, 2))
    img = tmp_path / "pics" / "p.png"
    img.parent.mkdir()
    cv2.imwrite(str(img), np.zeros((100, 100, 3), np.uint8))
    faces = [FaceAnnotation(pts, {3}, "approved", np.array([1.0, 2.0, 95.0, 99.0])),
             FaceAnnotation(pts + 2, set(), "corrected", None)]
    write_pts_folder([AnnotatedImage(img, faces)], img.parent)
    back = list(read_pts_folder(img.parent))[0].faces
    assert [f.status for f in back] == ["approved", "corrected"]
    np.testing.assert_allclose(back[0].face_box, [1, 2, 95, 99])
    assert back[0].occluded == {3}
    records, problems, _ = files.read_faces(img.parent, "p")
    assert not problems and records[0].placed is None  # not recorded: all a person's
    files.write_faces(img.parent, "p", "p.png", [files.FaceRecord(pts, "corrected", None, set(), {8})])
    records, _, _ = files.read_faces(img.parent, "p")
    assert len(records) == 1 and records[0].placed == {8}
    assert not (img.parent / "p_face2.pts").exists()  # the deleted second face's file went too


def test_training_reads_every_face_of_a_picture(tmp_path, sample_faces):
    shutil.copy(sample_faces[0], tmp_path / "x.jpg")
    pts = read_pts(sample_faces[0].with_suffix(".pts"))
    write_pts(tmp_path / "x.pts", pts)
    write_pts(tmp_path / "x_face2.pts", pts + 3)
    samples, problems = find_samples([tmp_path], 68)
    assert not problems and [s.name for s in samples] == ["x", "x#face2"]
    # one folder given as a string is that folder, not a walk from each of its characters ("/")
    alone, problems = find_samples(str(tmp_path), 68)
    assert not problems and [s.name for s in alone] == ["x", "x#face2"]


def two_face_pictures(sample_faces, folder):
    """Two pictures, each with the sample's face twice side by side."""
    folder.mkdir()
    for k, src in enumerate(sample_faces[:2]):
        img = read_image(src)
        both = np.concatenate([img, img[:, ::-1]], axis=1)
        cv2.imwrite(str(folder / f"two{k}.jpg"), cv2.cvtColor(np.ascontiguousarray(both), cv2.COLOR_RGB2BGR))
    return folder


def test_predict_convert_train_on_two_face_pictures(tmp_path, sample_faces, capsys):
    pics = two_face_pictures(sample_faces, tmp_path / "pics")
    labels = tmp_path / "labels"
    assert predict_main([str(pics), "--out", str(labels)]) == 0
    assert sorted(p.name for p in labels.glob("*.pts")) == ["two0.pts", "two0_face2.pts", "two1.pts", "two1_face2.pts"]
    # drr-predict's folder has no pictures: drr-convert says so, and works with --images
    assert convert_main([str(labels), "--to", "coco", "--out", str(tmp_path / "c.json")]) == 2
    assert "--images" in capsys.readouterr().err
    assert convert_main([str(labels), "--images", str(pics), "--to", "coco", "--out", str(tmp_path / "c.json")]) == 0
    coco = json.loads((tmp_path / "c.json").read_text())
    assert len(coco["annotations"]) == 4
    # .pts beside the pictures: drr-train --init fine-tunes on all four faces
    for p in labels.glob("*.pts"):
        shutil.copy(p, pics / p.name)
    capsys.readouterr()
    rc = train_main(["--init", str(resource(DEFAULT_WEIGHTS)), "--data", str(pics), "--out", str(tmp_path / "ft"),
                     "--epochs", "1", "--batch-size", "2", "--val-fraction", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0 and "fine-tuned on 3 faces, 1 held out" in out, out
    new = next((tmp_path / "ft").glob("*.pt"))
    # its assisted-correction statistics: the parent's covariance, the mean reset, never stale
    from model.correction import for_checkpoint

    stats, why = for_checkpoint(new, 68)
    assert why is None and stats.active and not stats.mean.any() and "reset after fine-tuning" in stats.source


def test_the_detector_imports_no_evaluation_or_prediction():
    """The import cycle detect -> evaluate -> predict -> detect is cut: box_iou lives in
    geometry, the detection matching in detect, the calibration command in model.cli."""
    import subprocess
    import sys

    code = ("import sys, model.detect; "
            "print(sorted(m for m in ('model.evaluate', 'model.predict') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    """A 30000 x 30000 PNG of 875 KB: refused before decoding, its name and size in the message."""
    import struct
    import zlib

    from model.images import ImageError, read_image

    w = h = 30000
    z = zlib.compressobj(9)
    row = b"\x00" * (w + 1)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match=r"bomb\.png: too large \(30000x30000"):
        read_image(bomb)


def test_side_file_keeps_deleted_and_drawn_boxes(tmp_path):
    pts = np.zeros((68, 2)) + 5
    extras = files.SideExtras([np.array([1.0, 2, 30, 40])], [(np.array([5.0, 5, 50, 60]), "person")])
    files.write_faces(tmp_path, "p", "p.png", [files.FaceRecord(pts)], extras=extras)
    back = files.read_extras(tmp_path, "p")
    np.testing.assert_allclose(back.deleted[0], extras.deleted[0])
    np.testing.assert_allclose(back.boxes[0][0], extras.boxes[0][0])
    assert back.boxes[0][1] == "person"
    # a picture whose every face a person deleted still has its side file (and its status)
    files.write_faces(tmp_path, "q", "q.png", [], extras=files.SideExtras([np.array([1.0, 2, 30, 40])]))
    assert files.saved_status(tmp_path, "q") == "corrected"
    (tmp_path / "r.drr.json").write_text('{"faces": [], "deleted": "nonsense", "boxes": [{"box": [1, 2]}]}')
    assert not files.read_extras(tmp_path, "r")  # malformed extras are ignored, never raised


def test_another_tools_annotation_is_kept_once_as_orig_before_the_app_changes_it(tmp_path):
    """A .pts with no side file is a person's annotation from elsewhere: the first write of that
    picture's files (a deletion here: no faces left) keeps it as NAME.pts.orig, which later writes
    never touch and training never reads."""
    pts = np.random.default_rng(2).uniform(10, 90, (68, 2))
    write_pts(tmp_path / "g.pts", pts)
    write_pts(tmp_path / "g_face2.pts", pts + 9)
    original = (tmp_path / "g.pts").read_bytes()
    _, made = files.write_faces(tmp_path, "g", "g.jpg", [])
    assert sorted(p.name for p in made) == ["g.pts.orig", "g_face2.pts.orig"]
    assert not (tmp_path / "g.pts").exists() and (tmp_path / "g.pts.orig").read_bytes() == original
    _, made = files.write_faces(tmp_path, "g", "g.jpg", [files.FaceRecord(pts + 1)])  # now the app's files
    assert made == [] and (tmp_path / "g.pts.orig").read_bytes() == original
    (tmp_path / "g.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((100, 100, 3), np.uint8))[1].tobytes())
    samples, _ = find_samples([tmp_path], 68)
    assert [s.name for s in samples] == ["g"]  # the .orig files are not faces
