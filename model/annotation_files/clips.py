"""A clip's annotations are one folder per clip in 300-VW's layout: CLIP/000001.pts for frame 1
(six digits, frames counted from 1), CLIP/000001_face2.pts for its second face, ..., and one side
file CLIP/drr_clip.json for the whole clip: the clip's name, frame count, fps and cuts, and per
frame each face's .pts, track (the face's identity through the clip), status, box and box source,
and whether it is a keyframe (a person's correction that model.tracking.propagate carries to the
frames around it); also the faces a person deleted from a frame on ("deleted", with the tracker's
last points of each) and those removed from single frames ("hidden"). Without the side file the
.pts are read as a person's annotations, each frame's k-th face as track k (a 300-VW folder, also
with its .pts under annot/)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..pts import PtsError, atomic_write_text, read_pts, write_pts
from .pictures import BOX_SOURCES, SIDECAR_VERSION, STATUSES, FaceRecord, _box, _indices, pts_name

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
    hidden: dict[int, set[int]] = field(default_factory=dict)  # track -> 0-based frames a person removed it from

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
    if any(clip.hidden.values()):
        data["hidden"] = [{"track": int(t), "frames": [int(f) + 1 for f in sorted(frames)]}
                          for t, frames in sorted(clip.hidden.items()) if frames]
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


def _read_hidden(entries: object, side: Path) -> tuple[dict[int, set[int]], list[str]]:
    """The side file's faces removed from single frames; an unusable entry is reported and skipped."""
    out: dict[int, set[int]] = {}
    problems: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            frames = {int(f) - 1 for f in entry["frames"]}
            if any(f < 0 for f in frames):
                raise ValueError("frames are counted from 1")
            out.setdefault(int(entry["track"]), set()).update(frames)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"{side}: a removed face's entry is unusable ({exc}); that face may show there again")
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
            clip.hidden, bad = _read_hidden(data.get("hidden", []), side)
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
