"""Annotation formats: iBUG .pts folders (with DRR Studio's side files), COCO keypoints, labelme
JSON and CVAT for images 1.1 XML, read and written through one in-memory form.

Coordinate conventions (in memory: 0-based, the centre of the top-left pixel at (0, 0)):
- iBUG .pts: 1-based, that centre at (1, 1) (model/pts.py);
- COCO keypoints: 0-based pixel indices, the same as in memory (detectron2 and mmpose add 0.5
  themselves when they need pixel corners);
- labelme and CVAT: pixel-corner coordinates from their canvases, that centre at (0.5, 0.5).
Occluded points: COCO v = 1 (labelled, not visible) against 2 (visible); labelme
`flags.occluded`; CVAT `occluded="1"` on a skeleton's point; the side file's `occluded` list.
Faces of one picture stay grouped: one COCO annotation, one labelme group_id, one CVAT skeleton.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import annotation_files as files
from .cvat import FACE_LABEL, add_meta
from .images import list_images
from .layout import Layout, layout_for
from .pts import PtsError, atomic_write_text

FORMATS = ("pts", "coco", "labelme", "cvat")
CORNER = 0.5  # labelme and CVAT: pixel-corner coordinates
FACE_SIGMA = 0.025  # COCOeval's per-point sigma for face landmarks (COCO-WholeBody's face value)


class FormatError(ValueError):
    """A file that cannot be converted; the message names it and what is wrong."""


@dataclass
class FaceAnnotation:
    points: np.ndarray  # (p, 2) 0-based pixel centres
    occluded: set[int] = field(default_factory=set)
    status: str = "corrected"  # corrected or approved (kept by the iBUG folders' side files)
    face_box: np.ndarray | None = None  # [x0, y0, x1, y1] when one was drawn or detected

    @property
    def box(self) -> list[float]:
        lo, hi = self.points.min(0), self.points.max(0)
        return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]  # x, y, w, h


@dataclass
class AnnotatedImage:
    path: Path  # the picture (its name is what the formats store)
    faces: list[FaceAnnotation]
    size: tuple[int, int] | None = None  # (width, height) when known


def _image_size(path: Path) -> tuple[int, int] | None:
    """From the header (model.images.header_size): a huge picture is never decoded for its size."""
    from .images import header_size

    size = header_size(path)
    if size is not None:
        return size
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if img is None else (int(img.shape[1]), int(img.shape[0]))


# --- iBUG .pts folders --------------------------------------------------------------------------


def read_pts_folder(folder: Path, images: Path | None = None) -> Iterator[AnnotatedImage]:
    """Pictures with NAME.pts (NAME_face2.pts, ...; drr-predict's older NAME_2.pts too) and their
    side files' status, box and occluded points. With `images`, the pictures are there (the
    same sub-folders) and the .pts in `folder`, as drr-predict --out writes them."""
    pictures = images if images is not None else folder
    for img in list_images(pictures):
        where = folder / img.parent.relative_to(pictures)
        records, problems, _ = files.read_faces(where, img.stem)
        if problems:
            raise FormatError("; ".join(f"{where}: {p}" if not p.startswith(str(where)) else p for p in problems))
        faces = [FaceAnnotation(r.points, set(r.occluded), r.status if r.status in files.HUMAN_STATUSES else "corrected",
                                r.box) for r in records]
        if faces:
            yield AnnotatedImage(img, faces)


def write_pts_folder(images: list[AnnotatedImage], out: Path) -> list[Path]:
    """One NAME.pts per face (NAME_face2.pts, ...) and a side file with each face's status, box
    and occluded points (model.annotation_files)."""
    written = []
    for im in images:
        records = [files.FaceRecord(f.points, f.status, f.face_box, set(f.occluded)) for f in im.faces]
        written += files.write_faces(out, im.path.stem, im.path.name, records)[0]
    return written


# --- COCO keypoints -----------------------------------------------------------------------------


def coco_category(layout: Layout) -> dict:
    return {"id": 1, "name": "face", "supercategory": "person", "keypoints": layout.point_names(),
            "skeleton": [[a + 1, b + 1] for a, b in layout.lines()]}  # COCO's skeleton is 1-based


def to_coco(images: list[AnnotatedImage]) -> dict:
    p = len(images[0].faces[0].points) if images and images[0].faces else 68
    out = {"info": {"description": "DRR Studio export"}, "images": [], "annotations": [],
           "categories": [coco_category(layout_for(p))]}
    for i, im in enumerate(images, start=1):
        w, h = im.size or _image_size(im.path) or (0, 0)
        out["images"].append({"id": i, "file_name": im.path.name, "width": w, "height": h})
        for face in im.faces:
            kps = []
            for k, (x, y) in enumerate(face.points):
                kps += [round(float(x), 4), round(float(y), 4), 1 if k in face.occluded else 2]
            x, y, bw, bh = face.box
            out["annotations"].append({"id": len(out["annotations"]) + 1, "image_id": i, "category_id": 1,
                                       "keypoints": kps, "num_keypoints": len(face.points), "bbox": face.box,
                                       "area": bw * bh, "iscrowd": 0})
    return out


def from_coco(data: dict, image_root: Path, source: Path) -> list[AnnotatedImage]:
    try:
        by_id = {im["id"]: im for im in data["images"]}
        faces: dict[int, list[FaceAnnotation]] = {i: [] for i in by_id}
        for a in data["annotations"]:
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            faces[a["image_id"]].append(FaceAnnotation(kp[:, :2].copy(), {int(i) for i in np.flatnonzero(kp[:, 2] == 1)}))
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{source}: not a COCO keypoints file ({exc.__class__.__name__}: {exc})") from None
    return [AnnotatedImage(image_root / by_id[i]["file_name"], f, (by_id[i].get("width"), by_id[i].get("height")))
            for i, f in faces.items() if f]


# --- labelme ------------------------------------------------------------------------------------


def to_labelme(im: AnnotatedImage, json_dir: Path | None = None) -> dict:
    """labelme's JSON for one picture; imagePath is relative to the folder the JSON is written
    to (json_dir), as labelme resolves it, so that labelme opens the picture from there."""
    w, h = im.size or _image_size(im.path) or (0, 0)
    image_path = im.path.name
    if json_dir is not None:
        image_path = Path(os.path.relpath(Path(im.path).resolve(), Path(json_dir).resolve())).as_posix()
    names = layout_for(len(im.faces[0].points)).point_names() if im.faces else []
    shapes = []
    for g, face in enumerate(im.faces):
        for k, (x, y) in enumerate(face.points):
            shapes.append({"label": names[k], "points": [[float(x) + CORNER, float(y) + CORNER]], "group_id": g,
                           "shape_type": "point", "flags": {"occluded": k in face.occluded}, "description": ""})
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": h, "imageWidth": w}


def from_labelme(data: dict, json_path: Path) -> AnnotatedImage:
    try:
        groups: dict[int, dict[int, tuple[np.ndarray, bool]]] = {}
        n = 68  # the point names of model/layout.py's 68-point scheme
        names = {name: i for i, name in enumerate(layout_for(n).point_names())}
        for s in data["shapes"]:
            if s.get("shape_type", "point") != "point":
                continue
            k = names.get(s["label"])
            if k is None:
                raise FormatError(f"{json_path}: unknown point label {s['label']!r}")
            g = int(s.get("group_id") or 0)
            groups.setdefault(g, {})[k] = (np.asarray(s["points"][0], dtype=np.float64) - CORNER,
                                           bool((s.get("flags") or {}).get("occluded", False)))
        image = json_path.parent / data["imagePath"]
        size = (data.get("imageWidth"), data.get("imageHeight"))
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{json_path}: not a labelme file ({exc.__class__.__name__}: {exc})") from None
    faces = []
    for g in sorted(groups):
        pts = groups[g]
        if len(pts) != n:
            raise FormatError(f"{json_path}: face group {g} has {len(pts)} of the {n} points")
        faces.append(FaceAnnotation(np.stack([pts[k][0] for k in range(n)]), {k for k in range(n) if pts[k][1]}))
    return AnnotatedImage(image, faces, size)


# --- CVAT for images 1.1 ------------------------------------------------------------------------


def to_cvat(images: list[AnnotatedImage]) -> str:
    """CVAT for images 1.1, as CVAT's own export writes it: the `<meta>` block with the task and
    its skeleton label (model/cvat.py), then each picture's faces as skeletons."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    layout = layout_for(next((len(f.points) for im in images for f in im.faces), 68))
    names = layout.point_names()
    add_meta(root, layout, len(images))
    for i, im in enumerate(images):
        w, h = im.size or _image_size(im.path) or (0, 0)
        node = ET.SubElement(root, "image", id=str(i), name=im.path.name, width=str(w), height=str(h))
        for g, face in enumerate(im.faces):
            sk = ET.SubElement(node, "skeleton", label="face", source="manual", z_order="0", group_id=str(g))
            for k, (x, y) in enumerate(face.points):
                ET.SubElement(sk, "points", label=names[k], source="manual", outside="0",
                              occluded="1" if k in face.occluded else "0",
                              points=f"{float(x) + CORNER:.4f},{float(y) + CORNER:.4f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def from_cvat(xml_path: Path, image_root: Path) -> list[AnnotatedImage]:
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise FormatError(f"{xml_path}: not readable XML ({exc})") from None
    names = {name: i for i, name in enumerate(layout_for(68).point_names())}
    out = []
    for node in root.iter("image"):
        faces = []
        for sk in node.iter("skeleton"):
            pts, occl = {}, set()
            for p in sk.iter("points"):
                k = names.get(p.get("label"))
                if k is None:
                    raise FormatError(f"{xml_path}: unknown point label {p.get('label')!r}")
                x, y = (float(v) for v in p.get("points", "").split(";")[0].split(","))
                pts[k] = np.array([x - CORNER, y - CORNER])
                if p.get("occluded") == "1":
                    occl.add(k)
            if len(pts) != len(names):
                raise FormatError(f"{xml_path}: a face in {node.get('name')} has {len(pts)} of {len(names)} points")
            faces.append(FaceAnnotation(np.stack([pts[k] for k in range(len(names))]), occl))
        if faces:
            out.append(AnnotatedImage(image_root / node.get("name", ""), faces,
                                      (int(node.get("width", 0)), int(node.get("height", 0)))))
    return out


# --- front doors ------------------------------------------------------------------------------


def read_annotations(src: Path, images: Path | None = None) -> list[AnnotatedImage]:
    """A folder of pictures with .pts, a folder of labelme .json, a COCO .json or a CVAT .xml.
    images: where the pictures are (default: a COCO or CVAT file's folder, a .pts folder itself)."""
    src = Path(src)
    root = Path(images) if images else (src if src.is_dir() else src.parent)
    try:
        if src.is_dir():
            labelme = [p for p in sorted(src.rglob("*.json"))
                       if not p.name.endswith(files.SIDECAR_SUFFIX) and p.name != files.LEARNED_FILE]
            if labelme and not any(src.rglob("*.pts")):
                return [from_labelme(json.loads(p.read_text(encoding="utf-8")), p) for p in labelme]
            if images is None and any(src.rglob("*.pts")) and not list_images(src):
                raise FormatError(f"{src}: .pts files but no pictures beside them: give --images FOLDER, "
                                  "where the pictures are (drr-predict --out writes only the .pts)")
            return list(read_pts_folder(src, Path(images) if images else None))
        if src.suffix.lower() == ".xml":
            return from_cvat(src, root)
        if src.suffix.lower() == ".json":
            data = json.loads(src.read_text(encoding="utf-8"))
            if isinstance(data, dict) and "annotations" in data:
                return from_coco(data, root, src)
            return [from_labelme(data, src)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{src}: cannot read ({exc})") from None
    except PtsError as exc:
        raise FormatError(str(exc)) from None
    raise FormatError(f"{src}: not a folder, .json or .xml")


def write_annotations(images: list[AnnotatedImage], fmt: str, out: Path) -> list[Path]:
    """pts and labelme: a folder; coco and cvat: one file (.json / .xml) or a folder for it."""
    out = Path(out)
    if fmt == "pts":
        return write_pts_folder(images, out)
    if fmt == "labelme":
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for im in images:
            paths.append(out / (im.path.stem + ".json"))
            atomic_write_text(paths[-1], json.dumps(to_labelme(im, out), indent=1))
        return paths
    if fmt in ("coco", "cvat"):
        if out.suffix.lower() not in (".json", ".xml"):
            out.mkdir(parents=True, exist_ok=True)
            out = out / ("coco_keypoints.json" if fmt == "coco" else "annotations.xml")
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(to_coco(images)) if fmt == "coco" else to_cvat(images))
        return [out]
    raise FormatError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


# --- clips: COCO with one image per frame -----------------------------------------------------


def clip_to_coco(clip: files.ClipAnnotation, size: tuple[int, int] | None = None) -> dict:
    """A clip's faces as COCO keypoints, one image per frame that has faces, as COCO-VID and TAO
    lay out video: images carry video_id and frame_id (0-based) and, for people reading the
    file, frame_number (1-based, the .pts file's); annotations carry track_id (the face's
    identity) and the side file's status and keyframe flag."""
    faces = [f for fs in clip.frames.values() for f in fs]
    p = len(faces[0].record.points) if faces else 68
    w, h = size or (0, 0)
    stem = Path(clip.video).stem or "clip"
    out = {"info": {"description": "DRR Studio export (clip)"},
           "videos": [{"id": 1, "name": clip.video, "frames": clip.frame_count, "fps": clip.fps, "width": w, "height": h}],
           "images": [], "annotations": [], "categories": [coco_category(layout_for(p))]}
    for i in sorted(clip.frames):
        if not clip.frames[i]:
            continue
        image_id = len(out["images"]) + 1
        out["images"].append({"id": image_id, "file_name": f"{stem}/{files.frame_stem(i)}.png", "video_id": 1,
                              "frame_id": i, "frame_number": i + 1, "width": w, "height": h})
        for face in clip.frames[i]:
            ann = FaceAnnotation(face.record.points, set(face.record.occluded))
            kps = []
            for k, (x, y) in enumerate(ann.points):
                kps += [round(float(x), 4), round(float(y), 4), 1 if k in ann.occluded else 2]
            out["annotations"].append({"id": len(out["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                                       "track_id": face.track, "keypoints": kps, "num_keypoints": len(ann.points),
                                       "bbox": ann.box, "area": ann.box[2] * ann.box[3], "iscrowd": 0,
                                       "status": face.record.status, "keyframe": face.keyframe})
    return out


def clip_from_coco(data: dict, source: Path) -> files.ClipAnnotation:
    """clip_to_coco's file read back (frames by frame_id, faces by track_id)."""
    try:
        video = (data.get("videos") or [{}])[0]
        clip = files.ClipAnnotation(str(video.get("name", "")), int(video.get("frames", 0)), float(video.get("fps", 25.0)))
        frame_of = {im["id"]: int(im["frame_id"]) for im in data["images"]}
        for a in data["annotations"]:
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            status = a.get("status", "corrected")
            record = files.FaceRecord(kp[:, :2].copy(), status if status in files.STATUSES else "corrected",
                                      occluded={int(i) for i in np.flatnonzero(kp[:, 2] == 1)})
            face = files.ClipFace(int(a.get("track_id", 1)), record, bool(a.get("keyframe", False)))
            clip.frames.setdefault(frame_of[a["image_id"]], []).append(face)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise FormatError(f"{source}: not a clip COCO file ({exc.__class__.__name__}: {exc})") from None
    for fs in clip.frames.values():
        fs.sort(key=lambda f: f.track)
    clip.frame_count = max(clip.frame_count, max(clip.frames, default=-1) + 1)
    return clip


# --- clips: CVAT for video 1.1 ------------------------------------------------------------------


def clip_to_cvat_video(clip: files.ClipAnnotation, size: tuple[int, int] | None = None) -> str:
    """A clip as CVAT for video 1.1: one skeleton track per face (its `track`), a shape on every
    frame the face has points; a shape marked outside where the face leaves (a gap, or its end).
    The meta block is CVAT's own, for an interpolation (video) task.

    Keyframes: a person's keyframe is a skeleton with keyframe="1", a frame of the tracker's one
    with keyframe="0". The skeleton's points are keyframe="1" on every frame: CVAT's importer
    keeps a skeleton track's shape only when some of its points are keyframes (it drops the
    others and interpolates over them), so this keeps the tracker's points in CVAT."""
    faces = [f for fs in clip.frames.values() for f in fs]
    layout = layout_for(len(faces[0].record.points) if faces else 68)
    names = layout.point_names()
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    add_meta(root, layout, clip.frame_count, clip.video or "DRR Studio clip")
    task = root.find("meta/task")
    task.find("mode").text = "interpolation"  # a video task: tracks, not per-image shapes
    if size:
        original = ET.SubElement(task, "original_size")
        ET.SubElement(original, "width").text = str(size[0])
        ET.SubElement(original, "height").text = str(size[1])
    for i, track in enumerate(clip.tracks()):
        node = ET.SubElement(root, "track", id=str(i), label=FACE_LABEL, source="manual")
        by_frame = clip.track(track)
        for f in sorted(by_frame):
            _cvat_skeleton(node, f, by_frame[f].record, names, outside=False, keyframe=by_frame[f].keyframe)
            if f + 1 not in by_frame and f + 1 < clip.frame_count:  # the face leaves here
                _cvat_skeleton(node, f + 1, by_frame[f].record, names, outside=True, keyframe=True)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _cvat_skeleton(track: ET.Element, frame: int, record: files.FaceRecord, names: list[str], outside: bool,
                   keyframe: bool) -> None:
    sk = ET.SubElement(track, "skeleton", frame=str(frame), keyframe="1" if keyframe else "0",
                       outside="1" if outside else "0",
                       occluded="0", z_order="0")
    for k, (x, y) in enumerate(record.points):
        ET.SubElement(sk, "points", label=names[k], keyframe="1", outside="1" if outside else "0",
                      occluded="1" if k in record.occluded else "0",
                      points=f"{float(x) + CORNER:.4f},{float(y) + CORNER:.4f}")


def clip_from_cvat_video(xml_path: Path) -> files.ClipAnnotation:
    """CVAT for video 1.1 back to a clip: every skeleton of a face track that is not outside
    (keyframes and the shapes CVAT interpolated alike). A skeleton with keyframe="1" is a
    keyframe (status corrected) when its track also has shapes with keyframe="0"
    (clip_to_cvat_video's tracker frames, or CVAT's interpolated ones: status predicted); a track
    whose every shape is a keyframe (an older export, or CVAT's own after importing one) is read
    without keyframes, every shape as a person's points (status corrected)."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise FormatError(f"{xml_path}: not readable XML ({exc})") from None
    index = {name: i for i, name in enumerate(layout_for(68).point_names())}
    name = root.findtext("meta/task/name") or ""
    size = int(root.findtext("meta/task/size") or 0)
    clip = files.ClipAnnotation(name, size, 25.0)
    for t, track in enumerate(root.iter("track"), start=1):
        inside = [sk for sk in track.iter("skeleton") if sk.get("outside") != "1"]
        keyed = any(sk.get("keyframe") == "0" for sk in inside)
        for sk in inside:
            pts, occluded = {}, set()
            for p in sk.iter("points"):
                k = index.get(p.get("label"))
                if k is None:
                    raise FormatError(f"{xml_path}: unknown point label {p.get('label')!r}")
                try:
                    x, y = (float(v) for v in p.get("points", "").split(";")[0].split(","))
                except ValueError:
                    raise FormatError(f"{xml_path}: point {p.get('label')!r} has no coordinates") from None
                pts[k] = (x - CORNER, y - CORNER)
                if p.get("occluded") == "1" or p.get("outside") == "1":
                    occluded.add(k)
            if len(pts) != len(index):
                raise FormatError(f"{xml_path}: track {track.get('id')} frame {sk.get('frame')} has {len(pts)} of "
                                  f"{len(index)} points")
            key = keyed and sk.get("keyframe") == "1"
            status = "predicted" if keyed and not key else "corrected"
            record = files.FaceRecord(np.array([pts[k] for k in range(len(index))]), status, occluded=occluded)
            clip.frames.setdefault(int(sk.get("frame", 0)), []).append(files.ClipFace(t, record, key))
    clip.frame_count = max(clip.frame_count, max(clip.frames, default=-1) + 1)
    return clip
