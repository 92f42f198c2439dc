"""drr-convert: annotations from one format to another (iBUG .pts folders, COCO keypoints,
labelme, CVAT for images 1.1), through model.formats.

    drr-convert labels/ --to coco --out coco.json        # pictures + .pts -> one COCO file
    drr-convert coco.json --images pictures/ --to pts --out labels/
    drr-convert predicted/ --images pictures/ --to coco --out coco.json   # drr-predict's --out folder
    drr-convert labelme_folder/ --to cvat --out annotations.xml
    drr-convert --cvat-labels face68.json    # the skeleton label for CVAT's label constructor (Raw)
    drr-convert labels/talk/ --to cvat --out talk.xml     # a clip folder (000001.pts, ...) -> CVAT for video
    drr-convert talk.xml --to pts --out labels/talk/       # and back; coco too (one image per frame)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from .. import annotation_files as files
from ..formats import (
    FORMATS,
    FormatError,
    clip_from_coco,
    clip_from_cvat_video,
    clip_to_coco,
    clip_to_cvat_video,
    read_annotations,
    write_annotations,
)
from ..images import list_images
from ..pts import atomic_write_text


def read_clip_source(source: Path) -> files.ClipAnnotation | None:
    """The clip in a clip folder, a clip COCO file (with "videos") or a CVAT for video file (with
    tracks); None when the source is not a clip. FormatError names the file."""
    try:
        if source.is_dir():
            # frame-numbered .pts beside pictures are pictures' annotations (frames saved as images)
            if not files.is_clip_folder(source) or (not (source / files.CLIP_SIDECAR).is_file() and list_images(source)):
                return None
            clip, problems = files.read_clip(source)
            if problems:
                raise FormatError("; ".join(problems))
            return clip
        text = source.read_text(encoding="utf-8")
        if source.suffix.lower() == ".json" and '"videos"' in text:
            return clip_from_coco(json.loads(text), source)
        if source.suffix.lower() == ".xml" and "<track" in text:
            return clip_from_cvat_video(source)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{source}: cannot read ({exc})") from None
    return None


def write_clip_as(clip: files.ClipAnnotation, fmt: str, out: Path) -> list[Path]:
    """pts: the clip folder `out`; coco / cvat: one file (.json / .xml), or one in the folder `out`."""
    if fmt == "pts":
        return files.write_clip(out, clip)
    if fmt not in ("coco", "cvat"):
        raise FormatError(f"a clip converts to pts, coco or cvat (for video), not {fmt}")
    if out.suffix.lower() not in (".json", ".xml"):
        out = out / ("coco_keypoints.json" if fmt == "coco" else "annotations.xml")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(clip_to_coco(clip)) if fmt == "coco" else clip_to_cvat_video(clip))
    return [out]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="drr-convert", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, nargs="?",
                    help="a folder (pictures + .pts, or labelme .json), a COCO .json or a CVAT .xml")
    ap.add_argument("--to", choices=FORMATS)
    ap.add_argument("--out", type=Path, help="folder, or a .json / .xml file for coco / cvat")
    ap.add_argument("--cvat-labels", type=Path, metavar="FILE",
                    help="write the 68-point face skeleton label for CVAT's label constructor (Raw tab) and stop")
    ap.add_argument("--images", type=Path, help="where the pictures are: of a COCO or CVAT file (default: its folder) or of a .pts folder "
                    "written by drr-predict --out (default: beside the .pts)")
    a = ap.parse_args(argv)
    if a.cvat_labels is not None:
        from ..cvat import cvat_labels_json
        from ..layout import layout_for

        a.cvat_labels.write_text(cvat_labels_json(layout_for(68)), encoding="utf-8")
        print(f"drr-convert: the face skeleton label for CVAT in {a.cvat_labels}")
        return 0
    if a.source is None or a.to is None or a.out is None:
        ap.error("give SOURCE, --to and --out (or --cvat-labels FILE)")
    if not a.source.exists():
        print(f"drr-convert: {a.source}: not found", file=sys.stderr)
        return 2
    try:
        clip = read_clip_source(a.source)
        if clip is not None:
            written = write_clip_as(clip, a.to, a.out)
            faces = sum(len(f) for f in clip.frames.values())
            print(f"drr-convert: {faces} faces on {len(clip.frames)} frames of a clip -> {a.to}: "
                  f"{len(written)} file(s) in {written[0].parent if written else a.out}")
            return 0
        with tqdm(total=1, desc="reading", unit="file", disable=None) as bar:
            images = read_annotations(a.source, a.images)
            bar.update(1)
        if not images:
            print(f"drr-convert: {a.source}: no annotated faces found", file=sys.stderr)
            return 2
        written = write_annotations(list(tqdm(images, desc="writing", unit="picture", disable=None)), a.to, a.out)
    except (FormatError, OSError) as exc:
        print(f"drr-convert: {exc}", file=sys.stderr)
        return 2
    faces = sum(len(im.faces) for im in images)
    print(f"drr-convert: {faces} faces of {len(images)} pictures -> {a.to}: {len(written)} file(s) in "
          f"{written[0].parent if written else a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
