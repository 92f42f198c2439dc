"""Writing a snapshot of the document's faces (Document.export_snapshot) elsewhere: another
tool's format, or the folder drr-train reads. Generators yielding (done, total, name) per
picture, so that a worker thread can report progress and cancel between pictures; each returns
the number of faces. Qt-free, and nothing shared with the document: they run on a copy."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from model import annotation_files as files


def write_export(images: list[Any], fmt: str, out: Path) -> Iterator[tuple[int, int, str]]:
    """Write a snapshot (Document.export_snapshot) in another tool's format: a generator
    yielding (done, total, name) per picture, so that a worker can report and cancel; returns the
    number of faces."""
    from model.formats import write_annotations

    for n, im in enumerate(images):
        yield n + 1, len(images), im.path.name
    write_annotations(images, fmt, out)
    return sum(len(im.faces) for im in images)


def write_training(images: list[Any], root: Path | None, folder: Path) -> Iterator[tuple[int, int, str]]:
    """Write a snapshot as the folder drr-train reads: each picture (its original bytes) with
    NAME.pts, NAME_face2.pts, ... (model.annotation_files); pictures of sub-folders are named
    sub__NAME. A generator yielding (done, total, name); returns the number of faces."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, im in enumerate(images):
        rel = im.path.name if root is None else str(im.path.relative_to(root))
        stem = Path(rel).with_suffix("").as_posix().replace("/", "__")
        img_out = folder / (stem + im.path.suffix.lower())
        tmp = img_out.with_name("." + img_out.name + ".tmp")
        shutil.copyfile(im.path, tmp)  # original bytes: no re-encoding loss
        os.replace(tmp, img_out)
        records = [files.FaceRecord(f.points, f.status, f.face_box, set(f.occluded)) for f in im.faces]
        files.write_faces(folder, stem, img_out.name, records, sidecar=False)
        yield n + 1, len(images), img_out.name
    return sum(len(im.faces) for im in images)
