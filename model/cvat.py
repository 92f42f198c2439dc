"""What a CVAT server needs besides the points: the skeleton label of a face, as the label
constructor's JSON (Raw tab; paste it before uploading annotations) and as the `<meta>` block
CVAT's own "CVAT for images 1.1" export writes, which CVAT-side tools (datumaro) require.

The skeleton is one label, "face", with a sublabel per point named like the app's points
("jaw 1" .. "inner lips 8" for the 68-point layout) and the app's lines as its edges; the
skeleton editor draws it on a 100 x 100 canvas from the mean face below.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from html import escape

import numpy as np

from .layout import Layout

FACE_LABEL = "face"
FACE_COLOR = "#3cb4ff"
POINT_COLOR = "#ffbe3c"
# the mean 68-point face (iBUG order) on the skeleton editor's 100 x 100 canvas
MEAN_FACE_68 = (
    "10,24 10,34 11,45 14,55 18,65 24,73 32,80 40,86 50,87 60,86 68,80 76,73 82,65 86,55 89,45 90,34 "
    "90,24 18,16 23,11 29,10 37,11 43,14 57,14 63,11 71,10 77,11 82,16 50,22 50,29 50,36 50,43 42,47 "
    "46,49 50,50 54,49 58,47 26,23 30,21 35,21 40,24 35,25 30,25 60,24 65,21 70,21 74,23 70,25 65,25 "
    "35,60 40,58 46,57 50,58 54,57 60,58 65,60 60,66 54,68 50,69 46,68 40,66 37,61 46,60 50,61 54,60 "
    "63,61 54,63 50,64 46,63")


def canvas_points(layout: Layout) -> np.ndarray:
    """Where the skeleton editor draws each point (a circle for other point counts)."""
    if layout.num_points == 68:
        return np.array([[float(v) for v in p.split(",")] for p in MEAN_FACE_68.split()])
    a = np.linspace(0, 2 * np.pi, layout.num_points, endpoint=False)
    return np.stack([50 + 40 * np.cos(a), 50 + 40 * np.sin(a)], 1)


def skeleton_svg(layout: Layout) -> str:
    """The skeleton's drawing as CVAT stores it: an edge per line (node ids are 1-based point
    numbers), a node per point carrying its sublabel's name."""
    pts = canvas_points(layout)
    names = layout.point_names()
    lines = [f'<line x1="{pts[a, 0]:g}" y1="{pts[a, 1]:g}" x2="{pts[b, 0]:g}" y2="{pts[b, 1]:g}" '
             f'stroke="black" data-type="edge" data-node-from="{a + 1}" stroke-width="0.5" '
             f'data-node-to="{b + 1}"></line>' for a, b in layout.lines()]
    nodes = [f'<circle r="0.75" stroke="black" fill="#b3b3b3" cx="{x:g}" cy="{y:g}" stroke-width="0.1" '
             f'data-type="element node" data-element-id="{k + 1}" data-node-id="{k + 1}" '
             f'data-label-name="{escape(names[k])}"></circle>' for k, (x, y) in enumerate(pts)]
    return "".join(lines + nodes)


def cvat_labels(layout: Layout) -> list[dict]:
    """The label constructor's JSON (Project or Task -> Labels -> Raw) for faces of this layout."""
    sublabels = [{"name": n, "color": POINT_COLOR, "attributes": [], "type": "points"}
                 for n in layout.point_names()]
    return [{"name": FACE_LABEL, "color": FACE_COLOR, "type": "skeleton", "attributes": [],
             "sublabels": sublabels, "svg": skeleton_svg(layout)}]


def cvat_labels_json(layout: Layout) -> str:
    return json.dumps(cvat_labels(layout), indent=2) + "\n"


def _text(parent: ET.Element, tag: str, text: str = "") -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = text
    return node


def add_meta(root: ET.Element, layout: Layout, size: int, name: str = "DRR Studio export") -> None:
    """The `<meta>` block of CVAT's own export: a task with its size, frames and labels (the
    skeleton, then each point as a sublabel whose parent is the skeleton)."""
    now = datetime.now(timezone.utc).isoformat()
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    for tag, text in (("id", "0"), ("name", name), ("size", str(size)), ("mode", "annotation"),
                      ("overlap", "0"), ("bugtracker", ""), ("created", now), ("updated", now),
                      ("subset", "default"), ("start_frame", "0"), ("stop_frame", str(max(size - 1, 0))),
                      ("frame_filter", "")):
        _text(task, tag, text)
    labels = ET.SubElement(task, "labels")
    face = ET.SubElement(labels, "label")
    for tag, text in (("name", FACE_LABEL), ("color", FACE_COLOR), ("type", "skeleton")):
        _text(face, tag, text)
    ET.SubElement(face, "attributes")
    _text(face, "svg", skeleton_svg(layout))
    for point in layout.point_names():
        label = ET.SubElement(labels, "label")
        for tag, text in (("name", point), ("color", POINT_COLOR), ("type", "points")):
            _text(label, tag, text)
        ET.SubElement(label, "attributes")
        _text(label, "parent", FACE_LABEL)
    _text(meta, "dumped", now)
