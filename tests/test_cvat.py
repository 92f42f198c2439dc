"""CVAT for images 1.1 as CVAT's own export writes it: the <meta> block with the face skeleton
(68 named sublabels, the app's lines as edges) that CVAT-side tools require, and the label
constructor's JSON a CVAT task needs before the upload (drr-convert --cvat-labels)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from model.cvat import FACE_LABEL, cvat_labels
from model.formats import AnnotatedImage, FaceAnnotation, read_annotations, write_annotations
from model.layout import layout_for
from model.resources import SAMPLE, resource


def _export(tmp_path: Path, faces: int = 2) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    pts = rng.uniform(50, 450, (68, 2))
    images = tmp_path / "images"
    images.mkdir()
    todo = []
    for i in range(faces):
        picture = images / f"face{i}.png"
        shutil.copy(resource(SAMPLE), picture)
        todo.append(AnnotatedImage(picture, [FaceAnnotation(pts + i, occluded={5})], (512, 512)))
    return write_annotations(todo, "cvat", tmp_path / "annotations.xml")[0], pts


def test_the_cvat_export_carries_cvats_meta_block_with_the_face_skeleton(tmp_path):
    xml, pts = _export(tmp_path)
    root = ET.parse(xml).getroot()
    task = root.find("meta/task")
    assert task is not None and task.findtext("size") == "2" and task.findtext("mode") == "annotation"
    labels = task.findall("labels/label")
    layout = layout_for(68)
    skeleton, points = labels[0], labels[1:]
    assert skeleton.findtext("name") == FACE_LABEL and skeleton.findtext("type") == "skeleton"
    assert [p.findtext("name") for p in points] == layout.point_names() and len(set(layout.point_names())) == 68
    assert {p.findtext("parent") for p in points} == {FACE_LABEL} and {p.findtext("type") for p in points} == {"points"}
    svg = ET.fromstring("<svg>" + skeleton.findtext("svg") + "</svg>")
    edges = [(int(e.get("data-node-from")), int(e.get("data-node-to"))) for e in svg.iter("line")]
    assert edges == [(a + 1, b + 1) for a, b in layout.lines()]
    assert [c.get("data-label-name") for c in svg.iter("circle")] == layout.point_names()
    # the annotations name those sublabels, and come back
    sk = root.find("image/skeleton")
    assert sk.get("label") == FACE_LABEL and [p.get("label") for p in sk.iter("points")] == layout.point_names()
    back = read_annotations(xml)
    np.testing.assert_allclose(back[0].faces[0].points, pts, atol=1e-3)
    assert back[0].faces[0].occluded == {5}


def test_the_label_constructor_json_matches_the_export(tmp_path):
    from model.cli.convert import main

    out = tmp_path / "face68.json"
    assert main(["--cvat-labels", str(out)]) == 0
    labels = json.loads(out.read_text())
    assert labels == cvat_labels(layout_for(68))
    (face,) = labels
    assert face["type"] == "skeleton" and [s["name"] for s in face["sublabels"]] == layout_for(68).point_names()
    xml, _ = _export(tmp_path)
    svg = ET.parse(xml).getroot().find("meta/task/labels/label").findtext("svg")
    assert svg == face["svg"]


def test_datumaro_reads_the_cvat_export(tmp_path):
    """datumaro refused the export without <meta> ("CVAT XML file should have <meta> tag")."""
    # datumaro is in the test extras: a missing one fails here rather than hiding the check
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset

    _export(tmp_path, faces=3)
    ds = Dataset.import_from(str(tmp_path), "cvat")
    names = ds.categories()[AnnotationType.label]
    assert len(ds) == 3
    for item in ds:
        pts = [a for a in item.annotations if a.type == AnnotationType.points]
        assert [names[a.label].name for a in pts] == layout_for(68).point_names()
