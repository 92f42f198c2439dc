"""drr-convert: annotations from one format to another (iBUG .pts folders, COCO keypoints,
labelme, CVAT for images 1.1), through model.formats.

    drr-convert labels/ --to coco --out coco.json        # pictures + .pts -> one COCO file
    drr-convert coco.json --images pictures/ --to pts --out labels/
    drr-convert predicted/ --images pictures/ --to coco --out coco.json   # drr-predict's --out folder
    drr-convert labelme_folder/ --to cvat --out annotations.xml
    drr-convert --cvat-labels face68.json    # the skeleton label for CVAT's label constructor (Raw)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..formats import FORMATS, FormatError, read_annotations, write_annotations


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
