"""Annotation formats: .pts -> COCO / labelme / CVAT -> .pts give back the same points, occluded
flags and face grouping; the COCO file passes pycocotools' loader and COCOeval; other tools'
coordinate conventions are honoured."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from model.cli.convert import main as convert_main
from model.formats import CORNER, FormatError, read_annotations
from model.pts import read_pts, write_pts


@pytest.fixture()
def pts_folder(tmp_path, sample_faces):
    """Three pictures (conftest.sample_faces), one with a second (shifted) face and occluded points."""
    d = tmp_path / "labels"
    d.mkdir()
    src = sample_faces
    for f in src:
        shutil.copy(f, d / f.name)
        shutil.copy(f.with_suffix(".pts"), d / f.with_suffix(".pts").name)
    first = src[0]
    second = read_pts(first.with_suffix(".pts")) + [13.25, -7.5]
    write_pts(d / f"{first.stem}_face2.pts", second)
    side = {"version": 1, "image": first.name, "faces": [{"pts": f"{first.stem}.pts", "occluded": [3, 40]},
                                                        {"pts": f"{first.stem}_face2.pts", "occluded": [67]}]}
    (d / f"{first.stem}.drr.json").write_text(json.dumps(side))
    return d


def _as_dict(images):
    return {im.path.name: [(f.points, f.occluded) for f in im.faces] for im in images}


def _same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert len(a[name]) == len(b[name]), name  # the grouping: as many faces, in order
        for (pa, oa), (pb, ob) in zip(a[name], b[name]):
            np.testing.assert_allclose(pa, pb, atol=1e-3)
            assert oa == ob


@pytest.mark.parametrize("fmt,target", [("coco", "coco.json"), ("labelme", "lm"), ("cvat", "cvat.xml")])
def test_round_trip_through_each_format(pts_folder, tmp_path, fmt, target):
    original = _as_dict(read_annotations(pts_folder))
    assert sum(len(v) for v in original.values()) == 4 and any(o for v in original.values() for _, o in v)
    out = tmp_path / target
    assert convert_main([str(pts_folder), "--to", fmt, "--out", str(out)]) == 0
    back = tmp_path / "back"
    assert convert_main([str(out), "--images", str(pts_folder), "--to", "pts", "--out", str(back)]) == 0
    for f in pts_folder.glob("*.jpg"):
        shutil.copy(f, back / f.name)
    _same(original, _as_dict(read_annotations(back)))


def test_coco_file_passes_pycocotools(pts_folder, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = tmp_path / "coco.json"
    assert convert_main([str(pts_folder), "--to", "coco", "--out", str(out)]) == 0
    gt = COCO(str(out))
    cat = gt.loadCats(1)[0]
    assert len(cat["keypoints"]) == 68 and [37, 38] in cat["skeleton"]  # 1-based, from model/layout.py
    anns = gt.loadAnns(gt.getAnnIds())
    assert len(anns) == 4 and all(a["num_keypoints"] == 68 for a in anns)
    v = np.asarray(anns[0]["keypoints"]).reshape(-1, 3)[:, 2]
    assert set(v) <= {1, 2} and (v == 1).any()

    def evaluate(shift):
        preds = []
        for a in anns:
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            kp[:, :2] += shift
            kp[:, 2] = 1
            preds.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
        ev = COCOeval(gt, gt.loadRes(preds), iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.full(68, 0.025)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return ev.stats[0]

    assert evaluate(0.0) == pytest.approx(1.0)
    assert evaluate(6.0) < 0.9  # points 6 px off lower the OKS-based AP


def test_other_tools_conventions(pts_folder, tmp_path):
    """labelme and CVAT store pixel-corner coordinates (a pixel's centre at +0.5), COCO 0-based
    pixel indices, .pts 1-based: the same point in each."""
    name = sorted(pts_folder.glob("*.jpg"))[1]
    x, y = read_pts(name.with_suffix(".pts"))[0]  # 0-based in memory
    on_disk = [float(v) for v in name.with_suffix(".pts").read_text().split("{")[1].split()[:2]]
    assert on_disk == pytest.approx([x + 1, y + 1], abs=1e-3)
    convert_main([str(pts_folder), "--to", "labelme", "--out", str(tmp_path / "lm")])
    lm = json.loads((tmp_path / "lm" / (name.stem + ".json")).read_text())
    assert lm["shapes"][0]["points"][0] == pytest.approx([x + CORNER, y + CORNER], abs=1e-3)
    assert lm["shapes"][0]["label"] == "jaw 1" and lm["imageWidth"] > 0
    convert_main([str(pts_folder), "--to", "coco", "--out", str(tmp_path / "c.json")])
    coco = json.loads((tmp_path / "c.json").read_text())
    img_id = next(i["id"] for i in coco["images"] if i["file_name"] == name.name)
    ann = next(a for a in coco["annotations"] if a["image_id"] == img_id)
    assert ann["keypoints"][:2] == pytest.approx([x, y], abs=1e-3)
    convert_main([str(pts_folder), "--to", "cvat", "--out", str(tmp_path / "a.xml")])
    node = next(n for n in ET.parse(tmp_path / "a.xml").getroot().iter("image") if n.get("name") == name.name)
    first = next(node.iter("skeleton")).find("points")
    assert [float(v) for v in first.get("points").split(",")] == pytest.approx([x + CORNER, y + CORNER], abs=1e-3)


def test_bad_input_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annotations": [{"image_id": 5}]}')
    with pytest.raises(FormatError, match="bad.json"):
        read_annotations(bad)
    assert convert_main([str(bad), "--to", "pts", "--out", str(tmp_path / "o")]) == 2
    assert "bad.json" in capsys.readouterr().err
    (tmp_path / "x.xml").write_text("<annotations><image name='a.jpg'><skeleton><points label='nope' "
                                    "points='1,2'/></skeleton></image></annotations>")
    assert convert_main([str(tmp_path / "x.xml"), "--to", "pts", "--out", str(tmp_path / "o")]) == 2
    assert "unknown point label" in capsys.readouterr().err
    assert convert_main([str(tmp_path / "missing"), "--to", "coco", "--out", str(tmp_path / "o")]) == 2
