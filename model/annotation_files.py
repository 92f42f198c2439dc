"""A picture's annotation files, in one place (as labelme keeps its LabelFile apart from shapes).

A picture NAME.ext has, in its annotation folder (beside it, or an output folder):
- `NAME.pts` for its first face and `NAME_face2.pts`, `NAME_face3.pts`, ... for the others: iBUG
  .pts, 1-based on disk, nothing app-specific in them. `NAME_2.pts`, ... (what drr-predict wrote
  before) are read too, never written.
- `NAME.drr.json`, the side file: per face its .pts name, status (predicted, corrected,
  approved), face box [x0, y0, x1, y1] (0-based picture pixels) and where it came from
  (box_source: detector, annotation, person), occluded points and the points a person placed
  (assisted correction). Without it, a .pts counts as a person's annotation. The side file also
  keeps what a person did that has no .pts (`SideExtras`): the boxes of model faces they deleted
  ("deleted": no prediction brings those back) and boxes they drew whose points are still the
  model's ("boxes": a model switch or Re-run never replaces a person's box).

A folder of annotations also holds `drr_corrections.json`, what the faces finished there taught
the assisted correction (model/correction.py's format).

In a list of faces (training samples, lessons, the fine-tune), face k of a picture is named
`face_name(NAME, k)`: the picture's name for the first face, `NAME#face2`, ... for the others.

The app's document, model.formats' iBUG folders, drr-predict, drr-train (model.data) and the
fine-tune all read and write through this module.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .geometry import box_of_points
from .images import IMAGE_SUFFIXES
from .pts import PtsError, atomic_write_text, read_pts, write_pts

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


def write_faces(folder: Path, stem: str, image_name: str, records: list[FaceRecord],
                unreadable: set[Path] | frozenset[Path] = frozenset(), sidecar: bool = True,
                extras: SideExtras | None = None) -> tuple[list[Path], list[Path]]:
    """Write a picture's faces atomically: NAME.pts, NAME_face2.pts, ... and (with sidecar) the
    side file, with the deleted and drawn boxes of `extras`. A file in `unreadable` (malformed when read) is kept as NAME.pts.bak before being
    replaced; numbered files of faces that no longer exist are removed, so that training never
    reads a deleted face. Returns (written, backups); OSError propagates."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    backups: list[Path] = []
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


LOCK_FILE = ".drr-studio.lock"  # which running app edits a folder's annotations


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def lock_folder(folder: Path) -> str | None:
    """Claim a folder of annotations for this process. Returns a warning naming the other app
    when one that still runs holds it (both would save the same files); a lock left by a process
    that is gone (a crash, kill -9) is taken over silently. Never raises: a folder where the lock
    cannot be written (read-only) just goes unlocked."""
    import socket

    path = Path(folder) / LOCK_FILE
    host = socket.gethostname()
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
        pid, their_host = int(held.get("pid", 0)), str(held.get("host", ""))
    except (OSError, ValueError, AttributeError, TypeError):
        pid, their_host = 0, ""
    if pid and pid != os.getpid() and (their_host != host or _process_alive(pid)):
        where = "" if their_host == host else f" on {their_host}"
        return (f"Another DRR Studio (process {pid}{where}) has {folder} open: edits saved by both "
                f"would overwrite each other. Close one of them (or delete {path} if it is stale).")
    try:
        atomic_write_text(path, json.dumps({"pid": os.getpid(), "host": host}) + "\n")
    except OSError:
        pass
    return None


def unlock_folder(folder: Path) -> None:
    """Give up this process's claim on a folder (leaves another process's lock alone)."""
    path = Path(folder) / LOCK_FILE
    try:
        if int(json.loads(path.read_text(encoding="utf-8")).get("pid", 0)) == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError, TypeError):
        pass


# --- clips (video) --------------------------------------------------------------------------------
# A clip's annotations are one folder per clip in 300-VW's layout: CLIP/000001.pts for frame 1
# (six digits, frames counted from 1), CLIP/000001_face2.pts for its second face, ..., and one side
# file CLIP/drr_clip.json for the whole clip: the clip's name, frame count, fps and cuts, and per
# frame each face's .pts, track (the face's identity through the clip), status, box and box source,
# and whether it is a keyframe (a person's correction that model.tracking.propagate carries to the
# frames around it). Without the side file the .pts are read as a person's annotations, each
# frame's k-th face as track k (a 300-VW folder, also with its .pts under annot/).

CLIP_SIDECAR = "drr_clip.json"
CLIP_FORMAT = "drr-clip"


def frame_stem(index: int) -> str:
    """The file stem of frame `index` (0-based): 000001 for the first frame."""
    return f"{index + 1:06d}"


@dataclass
class ClipFace:
    """One face on one frame of a clip."""

    track: int  # the face's identity through the clip, 1, 2, ...
    record: FaceRecord
    keyframe: bool = False  # a person corrected it: propagation pulls the frames around it here


@dataclass
class DeletedTrack:
    """A face a person deleted from a frame on, and the tracker's last points of it: a clip
    reopened before tracking ended goes on tracking it, hidden, so it does not come back."""

    start: int  # 0-based: the first frame it is hidden on
    frame: int | None = None  # 0-based frame of `points`
    points: np.ndarray | None = None


@dataclass
class ClipAnnotation:
    video: str  # the clip's file name
    frame_count: int
    fps: float
    frames: dict[int, list[ClipFace]] = field(default_factory=dict)  # 0-based frame -> faces
    cuts: list[int] = field(default_factory=list)  # 0-based frames that start a new shot
    tracked: int | None = None  # frames the tracker has been through, when it stopped early (None: all)
    deleted: dict[int, DeletedTrack] = field(default_factory=dict)  # track -> deleted from a frame on

    def tracks(self) -> list[int]:
        return sorted({f.track for faces in self.frames.values() for f in faces})

    def track(self, track: int) -> dict[int, ClipFace]:
        """frame -> the face with this identity."""
        return {i: f for i, faces in self.frames.items() for f in faces if f.track == track}

    def keyframes(self, track: int | None = None) -> list[int]:
        return sorted({i for i, faces in self.frames.items() for f in faces
                       if f.keyframe and (track is None or f.track == track)})


def write_clip_frame(folder: Path, index: int, faces: list[ClipFace]) -> list[Path]:
    """A frame's .pts files (000001.pts, 000001_face2.pts, ... in the list's order), atomically;
    numbered files of faces no longer there are removed. The side file is write_clip_sidecar's."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = frame_stem(index)
    written = []
    for k, face in enumerate(faces):
        written.append(folder / pts_name(stem, k))
        write_pts(written[-1], face.record.points)
    for k in itertools.count(len(faces)):
        stale = folder / pts_name(stem, k)
        if not stale.exists():
            break
        stale.unlink()
    return written


def _clip_entry(stem: str, k: int, face: ClipFace) -> dict:
    rec = face.record
    entry = {"pts": pts_name(stem, k), "track": int(face.track), "status": rec.status,
             "box": [round(float(v), 3) for v in rec.face_box()], "box_source": rec.box_source}
    if face.keyframe:
        entry["keyframe"] = True
    if rec.occluded:
        entry["occluded"] = sorted(rec.occluded)
    if rec.placed is not None:
        entry["placed"] = sorted(rec.placed)
    return entry


def write_clip_sidecar(folder: Path, clip: ClipAnnotation) -> Path:
    """The clip's side file (atomically), for the faces in `clip.frames` as their .pts are named."""
    faces = {frame_stem(i): [_clip_entry(frame_stem(i), k, f) for k, f in enumerate(clip.frames[i])]
             for i in sorted(clip.frames) if clip.frames[i]}
    data = {"format": CLIP_FORMAT, "version": SIDECAR_VERSION, "video": clip.video,
            "frames": int(clip.frame_count), "fps": round(float(clip.fps), 4),
            "cuts": [i + 1 for i in sorted(clip.cuts)], "faces": faces}
    if clip.tracked is not None and clip.tracked < clip.frame_count:
        data["tracked"] = int(clip.tracked)
    if clip.deleted:
        data["deleted"] = [_deleted_entry(t, d) for t, d in sorted(clip.deleted.items())]
    path = Path(folder) / CLIP_SIDECAR
    atomic_write_text(path, json.dumps(data, separators=(",", ":")) + "\n")  # compact: one entry per frame
    return path


def _deleted_entry(track: int, d: DeletedTrack) -> dict:
    entry = {"track": int(track), "from": int(d.start) + 1}
    if d.points is not None and d.frame is not None:
        entry.update(frame=int(d.frame) + 1, points=[[round(float(x), 3), round(float(y), 3)] for x, y in d.points])
    return entry


def _read_deleted(entries: object, side: Path) -> tuple[dict[int, DeletedTrack], list[str]]:
    """The side file's deleted faces; an unusable entry is reported (naming the file) and skipped."""
    out: dict[int, DeletedTrack] = {}
    problems: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            points = entry.get("points")
            pts = np.asarray(points, dtype=np.float64) if points is not None else None
            if pts is not None and (pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all()):
                raise ValueError("points are not (x, y) pairs")
            frame = int(entry["frame"]) - 1 if pts is not None else None
            out[int(entry["track"])] = DeletedTrack(int(entry["from"]) - 1, frame, pts)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"{side}: a deleted face's entry is unusable ({exc}); that face may come back")
    return out, problems


def write_clip(folder: Path, clip: ClipAnnotation) -> list[Path]:
    """Every frame's .pts and the side file."""
    written = []
    for i in sorted(clip.frames):
        written += write_clip_frame(folder, i, clip.frames[i])
    return written + [write_clip_sidecar(folder, clip)]


def _frame_index(stem: str) -> tuple[int, int] | None:
    """(0-based frame, 0-based face) of a clip .pts stem (000012, 000012_face2), else None."""
    head, _, face = stem.partition("_face")
    if len(head) != 6 or not head.isdigit() or int(head) < 1 or (face and not face.isdigit()):
        return None
    return int(head) - 1, int(face) - 1 if face else 0


def is_clip_folder(folder: Path) -> bool:
    """A folder of 300-VW style frame annotations (000001.pts, ...) or with a clip side file."""
    folder = Path(folder)
    if (folder / CLIP_SIDECAR).is_file():
        return True
    where = folder / "annot" if (folder / "annot").is_dir() else folder
    return any(_frame_index(p.stem) is not None for p in where.glob("*.pts"))


def _clip_face(folder: Path, entry: dict, num_points: int | None) -> ClipFace:
    """One side-file entry as a face; PtsError or ValueError (naming the file) when unusable."""
    points = read_pts(folder / str(entry.get("pts", "")), expected_points=num_points)
    box = _box(entry["box"]) if isinstance(entry.get("box"), list) else None
    status = entry.get("status", "corrected")
    source = str(entry.get("box_source", "annotation"))
    placed = _indices(entry["placed"], len(points)) if isinstance(entry.get("placed"), list) else None
    record = FaceRecord(points, status if status in STATUSES else "corrected", box,
                        _indices(entry.get("occluded", []), len(points)), placed,
                        source if source in BOX_SOURCES else "annotation")
    return ClipFace(int(entry.get("track", 1)), record, bool(entry.get("keyframe", False)))


def read_clip(folder: Path, num_points: int | None = None) -> tuple[ClipAnnotation, list[str]]:
    """A clip folder: (annotations, problems). A malformed .pts is reported (named) and skipped;
    an unreadable side file is reported and the .pts read without it. Never raises for content."""
    folder = Path(folder)
    problems: list[str] = []
    side = folder / CLIP_SIDECAR
    if side.is_file():
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("faces", {}), dict):
                raise ValueError("not a clip side file")
            clip = ClipAnnotation(str(data.get("video", "")), int(data.get("frames", 0)), float(data.get("fps", 25.0)),
                                  cuts=[int(c) - 1 for c in data.get("cuts", [])],
                                  tracked=int(data["tracked"]) if "tracked" in data else None)
            clip.deleted, bad = _read_deleted(data.get("deleted", []), side)
            problems += bad
            for stem, entries in data.get("faces", {}).items():
                where = _frame_index(stem)
                if where is None or not isinstance(entries, list):
                    problems.append(f"{side}: frame {stem!r} is not a frame number; skipped")
                    continue
                for entry in entries:
                    try:
                        clip.frames.setdefault(where[0], []).append(_clip_face(folder, entry, num_points))
                    except (PtsError, ValueError, TypeError, KeyError, AttributeError) as exc:
                        problems.append(str(exc) if isinstance(exc, PtsError) else f"{side}: frame {stem}: {exc}")
            return clip, problems
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            problems.append(f"{side}: unreadable clip side file ({exc}); using the .pts only")
    where = folder / "annot" if (folder / "annot").is_dir() and not any(folder.glob("0*.pts")) else folder
    clip = ClipAnnotation("", 0, 25.0)
    for path in sorted(where.glob("*.pts")):
        index = _frame_index(path.stem)
        if index is None:
            continue
        try:
            points = read_pts(path, expected_points=num_points)
        except PtsError as exc:
            problems.append(str(exc))
            continue
        clip.frames.setdefault(index[0], []).append(ClipFace(index[1] + 1, FaceRecord(points)))
    for faces in clip.frames.values():
        faces.sort(key=lambda f: f.track)
    clip.frame_count = max(clip.frames, default=-1) + 1
    return clip, problems
