"""A picture's annotation files: its faces' .pts, the side file, statuses (the package's
docstring says what is where)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry import box_of_points
from ..images import IMAGE_SUFFIXES
from ..pts import PtsError, atomic_write_text, read_pts, write_pts

SIDECAR_SUFFIX = ".drr.json"
LEARNED_FILE = "drr_corrections.json"  # a folder's assisted-correction lessons (model/correction.py's format)
SIDECAR_VERSION = 1
STATUSES = ("predicted", "corrected", "approved")
HUMAN_STATUSES = ("corrected", "approved")
BOX_SOURCES = ("detector", "annotation", "person")  # model.predict.BoxSource's values


@dataclass
class SideExtras:
    """A person's decisions about a picture that no .pts holds."""

    deleted: list[np.ndarray] = field(default_factory=list)  # boxes of model faces a person deleted
    boxes: list[tuple[np.ndarray, str]] = field(default_factory=list)  # (box, source) of faces without human points

    def __bool__(self) -> bool:
        return bool(self.deleted or self.boxes)


class AnnotationFileError(ValueError):
    """A side file that cannot be used; the message names the file and what is wrong."""


def pts_name(stem: str, k: int) -> str:
    """The .pts file name of face k (0-based) of the picture with this stem."""
    return f"{stem}.pts" if k == 0 else f"{stem}_face{k + 1}.pts"


def legacy_pts_name(stem: str, k: int) -> str:
    """drr-predict's former name for face k > 0 (read, never written)."""
    return f"{stem}.pts" if k == 0 else f"{stem}_{k + 1}.pts"


def face_name(name: str, k: int) -> str:
    """Face k of the picture called `name` in a list of faces."""
    return name if k == 0 else f"{name}#face{k + 1}"


def sidecar_path(folder: Path, stem: str) -> Path:
    return Path(folder) / (stem + SIDECAR_SUFFIX)


def face_pts_files(folder: Path, stem: str) -> list[Path]:
    """The existing .pts files of a picture's faces, in face order (NAME.pts, NAME_face2.pts, ...;
    NAME_2.pts, ... when the picture has no _faceN files)."""
    folder = Path(folder)
    out: list[Path] = []
    for naming in (pts_name, legacy_pts_name):
        out = []
        for k in itertools.count():
            p = folder / naming(stem, k)
            # NAME_2.pts beside a picture NAME_2.jpg is that picture's own file, not a second face
            if not p.is_file() or (k and naming is legacy_pts_name and _is_picture_stem(folder, p.stem)):
                break
            out.append(p)
        if len(out) > 1:
            return out
    return out


def _is_picture_stem(folder: Path, stem: str) -> bool:
    return any((folder / (stem + ext)).is_file() for ext in IMAGE_SUFFIXES)


def has_annotations(folder: Path, stem: str) -> bool:
    return sidecar_path(folder, stem).is_file() or (Path(folder) / pts_name(stem, 0)).is_file()


@dataclass
class FaceRecord:
    """One face as stored: what the side file and the .pts hold together."""

    points: np.ndarray  # (p, 2) 0-based
    status: str = "corrected"
    box: np.ndarray | None = None  # [x0, y0, x1, y1]; None: the points' tight box
    occluded: set[int] = field(default_factory=set)
    placed: set[int] | None = None  # None: not recorded (every point is then a person's)
    box_source: str = "annotation"  # where the box came from (model.predict.BoxSource)

    def face_box(self) -> np.ndarray:
        return self.box if self.box is not None else box_of_points(self.points)


def read_sidecar(path: Path) -> list[dict]:
    """The side file's per-face entries; AnnotationFileError names the file and the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        faces = data.get("faces", [])
        if not isinstance(faces, list) or not all(isinstance(m, dict) for m in faces):
            raise ValueError("'faces' must be a list of objects")
    except (OSError, ValueError, AttributeError) as exc:
        raise AnnotationFileError(f"{Path(path).name}: unreadable side file ({exc})") from None
    return faces


def saved_status(folder: Path, stem: str) -> str | None:
    """approved when the side file says every face is, corrected when there are annotations (or
    the side file cannot be read), None when there are none: without reading any points."""
    side = sidecar_path(folder, stem)
    if side.is_file():
        try:
            faces = read_sidecar(side)
        except AnnotationFileError:
            return "corrected"
        if not faces and not read_extras(folder, stem):
            return None
        return "approved" if faces and all(m.get("status") == "approved" for m in faces) else "corrected"
    return "corrected" if (Path(folder) / pts_name(stem, 0)).is_file() else None


def _box(value) -> np.ndarray | None:
    try:
        box = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return box if box.shape == (4,) and np.isfinite(box).all() else None


def read_extras(folder: Path, stem: str) -> SideExtras:
    """The deleted and drawn boxes of a picture's side file (empty when there is none or it is
    unreadable: read_faces reports that)."""
    side = sidecar_path(folder, stem)
    out = SideExtras()
    if not side.is_file():
        return out
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    if not isinstance(data, dict):
        return out
    for value in data.get("deleted", []) if isinstance(data.get("deleted"), list) else []:
        box = _box(value)
        if box is not None:
            out.deleted.append(box)
    for m in data.get("boxes", []) if isinstance(data.get("boxes"), list) else []:
        box = _box(m.get("box")) if isinstance(m, dict) else None
        if box is not None:
            source = str(m.get("box_source", "person"))
            out.boxes.append((box, source if source in BOX_SOURCES else "person"))
    return out


def _indices(values, n: int) -> set[int]:
    return {int(i) for i in values if 0 <= int(i) < n}


def read_faces(folder: Path, stem: str, num_points: int | None = None) -> tuple[list[FaceRecord], list[str], set[Path]]:
    """Every face of a picture: (records, problems, unreadable files). A malformed file is
    reported (its message names it) and skipped, never raised."""
    folder = Path(folder)
    problems: list[str] = []
    unreadable: set[Path] = set()
    side = sidecar_path(folder, stem)
    meta: list[dict] | None = None
    if side.is_file():
        try:
            meta = read_sidecar(side)
        except AnnotationFileError as exc:
            problems.append(f"{exc}; using the .pts only")
            unreadable.add(side)
    if meta is None:
        meta = [{"pts": p.name} for p in face_pts_files(folder, stem)]
    records: list[FaceRecord] = []
    for m in meta:
        path = folder / str(m.get("pts", ""))
        if not path.is_file():
            continue
        try:
            pts = read_pts(path, expected_points=num_points)
        except PtsError as exc:
            problems.append(str(exc))
            unreadable.add(path)
            continue
        status = m.get("status", "corrected")
        box = np.asarray(m["box"], dtype=np.float64) if isinstance(m.get("box"), list) else None
        if box is not None and (box.shape != (4,) or not np.isfinite(box).all()):
            box = None
        placed = _indices(m["placed"], len(pts)) if isinstance(m.get("placed"), list) else None
        # a box without its source, or no box: the tight box of the points, the training framing
        source = str(m.get("box_source", "annotation")) if box is not None else "annotation"
        records.append(FaceRecord(pts, status if status in STATUSES else "corrected", box,
                                  _indices(m.get("occluded", []), len(pts)), placed,
                                  source if source in BOX_SOURCES else "annotation"))
    return records, problems, unreadable


def disk_stamp(folder: Path, stem: str) -> dict[str, tuple[int, int]]:
    """(modification time, size) of each of a picture's annotation files as they are now: what
    the app read, to tell at save time whether another program changed them since."""
    out: dict[str, tuple[int, int]] = {}
    for p in [*face_pts_files(folder, stem), sidecar_path(folder, stem)]:
        try:
            st = p.stat()
        except OSError:
            continue
        out[p.name] = (st.st_mtime_ns, st.st_size)
    return out


def keep_outside_edits(folder: Path, stem: str, read: dict[str, tuple[int, int]]) -> list[Path]:
    """Before a save replaces a picture's files: each one another program wrote since they were
    read (`read`, from disk_stamp) is copied to NAME.theirs, so that nothing is overwritten
    silently. Returns the copies."""
    import shutil

    kept = []
    for name, stamp in disk_stamp(folder, stem).items():
        if read.get(name) != stamp:
            src = Path(folder) / name
            dst = src.with_name(name + ".theirs")
            tmp = dst.with_name("." + dst.name + ".tmp")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
            kept.append(dst)
    return kept


ORIGINAL_SUFFIX = ".orig"


def keep_originals(folder: Path, stem: str) -> list[Path]:
    """A picture's .pts with no side file beside them are another tool's, a person's annotation:
    the first time the app writes that picture's files, each is copied to NAME.pts.orig (never
    overwritten afterwards, never read as a face), so that no edit here (a deletion, a reset, a
    drag) loses the original. The copies made."""
    if sidecar_path(folder, stem).exists():
        return []
    kept = []
    for path in face_pts_files(folder, stem):
        original = path.with_name(path.name + ORIGINAL_SUFFIX)
        if not original.exists():
            shutil.copy2(path, original)
            kept.append(original)
    return kept


def write_faces(folder: Path, stem: str, image_name: str, records: list[FaceRecord],
                unreadable: set[Path] | frozenset[Path] = frozenset(), sidecar: bool = True,
                extras: SideExtras | None = None) -> tuple[list[Path], list[Path]]:
    """Write a picture's faces atomically: NAME.pts, NAME_face2.pts, ... and (with sidecar) the
    side file, with the deleted and drawn boxes of `extras`. A file in `unreadable` (malformed when
    read) is kept as NAME.pts.bak before being replaced; another tool's files are kept once as
    NAME.pts.orig (keep_originals); numbered files of faces that no longer exist are removed, so
    that training never reads a deleted face. Returns (written, backups: the .bak and .orig files
    made); OSError propagates."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    backups = keep_originals(folder, stem) if sidecar else []
    meta = []
    for k, rec in enumerate(records):
        path = folder / pts_name(stem, k)
        if path in unreadable and path.exists():
            backup = path.with_name(path.name + ".bak")
            os.replace(path, backup)
            backups.append(backup)
        write_pts(path, rec.points)
        written.append(path)
        entry = {"pts": path.name, "status": rec.status, "box": [round(float(v), 3) for v in rec.face_box()],
                 "occluded": sorted(rec.occluded)}
        if rec.placed is not None:
            entry["placed"] = sorted(rec.placed)
        if rec.box is not None:
            entry["box_source"] = rec.box_source
        meta.append(entry)
    for k in itertools.count(len(records)):
        stale = folder / pts_name(stem, k)
        if not stale.exists():
            break
        stale.unlink()
    side = sidecar_path(folder, stem)
    extras = extras or SideExtras()
    if sidecar and (records or extras or side.exists()):
        data: dict = {"version": SIDECAR_VERSION, "image": image_name, "faces": meta}
        if extras.deleted:
            data["deleted"] = [[round(float(v), 3) for v in b] for b in extras.deleted]
        if extras.boxes:
            data["boxes"] = [{"box": [round(float(v), 3) for v in b], "box_source": src} for b, src in extras.boxes]
        text = json.dumps(data, indent=1)
        atomic_write_text(side, text + "\n")
        written.append(side)
    return written, backups
