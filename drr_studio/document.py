"""The annotation document: images, faces, points, review status and provenance.

Plain Python and numpy, no Qt: the views render it and the undo commands change it through
`Face.state()` / `Face.restore()`, so everything here is testable without a display.

On disk (through model.annotation_files, the one module for a picture's files) an image
`NAME.ext` gets `NAME.pts` for its first face (iBUG format, untouched by anything app-specific),
`NAME_face2.pts`, ... for further faces, and a side file `NAME.drr.json` with provenance
(corrected / approved), face boxes, occluded and placed points.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from model import annotation_files as files
from model.detect import MIN_MATCH_IOU
from model.geometry import box_iou, box_of_points
from model.images import list_images

from .faces import (
    BAD_FILE_STATUS,
    ERROR_STATUS,
    HUMAN,
    NO_FACE_STATUS,
    Face,
    FaceState,
    ImageEntry,
    Status,
    carry_faces,
    picture_status,
    status_text,
)

SIDECAR_SUFFIX = files.SIDECAR_SUFFIX
AUTOSAVE_MS = 800  # an edit (a picture's or a clip's) is on disk this long after it
# the faces' records live in drr_studio/faces.py; importing them from here keeps working
__all__ = [
    "AUTOSAVE_MS",
    "BAD_FILE_STATUS",
    "Document",
    "ERROR_STATUS",
    "Face",
    "FaceState",
    "HUMAN",
    "ImageEntry",
    "NO_FACE_STATUS",
    "SIDECAR_SUFFIX",
    "SaveError",
    "Status",
    "carry_faces",
    "picture_status",
    "status_text",
]


class SaveError(OSError):
    """Writing annotations failed; the message names the file and the reason."""


class Document:
    """An ordered set of images with their faces, and where their annotations live.

    Evented (psygnal): every method that changes a picture announces it with `entry_changed`
    (the entry), so the session and the views follow without anyone remembering to refresh;
    code outside changes pictures only through these methods."""

    entry_changed = Signal(object)  # an ImageEntry's faces, points, status, error or dirty flag changed

    def __init__(self, images: list[Path], root: Path | None = None, output_dir: Path | None = None) -> None:
        self.entries = [ImageEntry(p if isinstance(p, Path) else Path(p)) for p in images]
        self._index = {id(e): i for i, e in enumerate(self.entries)}
        self._by_path: dict[Path, list[int]] | None = None
        self._traced: set[ImageEntry] = set()  # pictures whose faces may hold conv8 maps (trim_traces)
        self.root = root
        self.output_dir = output_dir
        self.backups: list[Path] = []  # malformed files the last save() moved aside as NAME.bak
        self.outside_edits: list[Path] = []  # files another program changed, kept by the last save() as NAME.theirs

    @classmethod
    def from_paths(cls, paths: list[Path]) -> Document:
        """A folder opens every picture under it; otherwise the given files, in order."""
        if len(paths) == 1 and paths[0].is_dir():
            return cls(list_images(paths[0]), root=paths[0])
        return cls([Path(p) for p in paths])

    def __len__(self) -> int:
        return len(self.entries)

    def index_of(self, entry: ImageEntry) -> int:
        """The entry's position (-1: not in this document), in constant time."""
        i = self._index.get(id(entry), -1)
        if 0 <= i < len(self.entries) and self.entries[i] is entry:
            return i
        self._index = {id(e): k for k, e in enumerate(self.entries)}  # the list was replaced
        return self._index.get(id(entry), -1)

    def indices_of_path(self, path: Path) -> list[int]:
        """The entries of this picture file (usually one), in constant time."""
        if self._by_path is not None:
            hit = [i for i in self._by_path.get(path, []) if i < len(self.entries) and self.entries[i].path == path]
            if hit:
                return hit
        self._by_path = {}  # first use, or the list was replaced
        for i, e in enumerate(self.entries):
            self._by_path.setdefault(e.path, []).append(i)
        return list(self._by_path.get(path, []))

    def _changed(self, entry: ImageEntry) -> None:
        self.entry_changed.emit(entry)

    # --- edits (the session's edit methods and the undo commands come through here) -------------
    def set_face_state(self, entry: ImageEntry, face: Face, state: FaceState) -> bool:
        """A face to a FaceState: an edit, so the picture has unsaved changes. Returns whether
        the box changed (the model must run again on it)."""
        moved = not np.array_equal(face.box, state.box)
        face.restore(state)
        entry.dirty = True  # undoing back to what is on disk still re-saves: always correct
        self._changed(entry)
        return moved

    def insert_face(self, entry: ImageEntry, face: Face, index: int | None = None) -> None:
        """Add a face (drawn, copied, or a deletion undone: its box is no longer deleted)."""
        entry.faces.insert(len(entry.faces) if index is None else min(index, len(entry.faces)), face)
        entry.deleted = [b for b in entry.deleted if not np.array_equal(b, face.box)]
        entry.dirty = True
        self._changed(entry)

    def delete_face(self, entry: ImageEntry, face: Face, remember: bool = True) -> None:
        """Remove a face; its box is recorded (and saved) so that no prediction brings it back.
        remember False: an addition taken back (a drawn or copied face undone), not a deletion,
        so nothing is recorded (a box recorded there would keep the detector's face away)."""
        if face in entry.faces:
            entry.faces.remove(face)
            if remember:
                entry.deleted.append(face.box.copy())
        entry.dirty = True
        self._changed(entry)

    def mark_dirty(self, entry: ImageEntry) -> None:
        """Save this picture again (File -> Save re-writes what a person did)."""
        if not entry.dirty:
            entry.dirty = True
            self._changed(entry)

    def set_error(self, entry: ImageEntry, message: str | None) -> None:
        if entry.error != message:
            entry.error = message
            self._changed(entry)

    def set_size(self, entry: ImageEntry, size: tuple[int, int]) -> None:
        """The picture was decoded: its size can change its status (a failed picture that now reads)."""
        if entry.size != size:
            entry.size = size
            self._changed(entry)

    def set_output_dir(self, folder: Path | None) -> None:
        """Annotations go to another folder from now on: every picture a person worked on is
        saved there too."""
        self.output_dir = folder
        for e in self.entries:
            if e.loaded:  # what is on disk in the new folder is what later saves compare with
                e.disk_stamp = files.disk_stamp(self.target_dir(e), e.path.stem)
            if any(f.human for f in e.faces) or e.deleted:
                self.mark_dirty(e)

    def unpredict(self, entry: ImageEntry, faces: list[Face]) -> None:
        """These faces' traces are stale (their box changed, Re-run): the model runs again; a
        person's points and boxes stay."""
        for f in faces:
            f.result = None
        entry.predicted = False
        self._changed(entry)

    # --- where files go -------------------------------------------------------------------
    def target_dir(self, entry: ImageEntry) -> Path:
        if self.output_dir is None:
            return entry.path.parent
        if self.root is not None:
            try:
                return self.output_dir / entry.path.parent.relative_to(self.root)
            except ValueError:
                pass
        return self.output_dir

    def annotation_folder(self) -> Path | None:
        """The folder the whole document's annotations go to (the output folder, else the folder
        opened, else the first picture's): where folder-wide files such as the learned
        corrections live."""
        if self.output_dir is not None:
            return self.output_dir
        if self.root is not None:
            return self.root
        return self.entries[0].path.parent if self.entries else None

    def picture_key(self, entry: ImageEntry) -> str:
        """A picture's name within the document: its path from the root (the same wherever the
        folder is moved)."""
        if self.root is not None:
            try:
                return entry.path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return entry.path.name

    def face_key(self, entry: ImageEntry, face: Face) -> str:
        """A face's name within the document (model.annotation_files.face_name)."""
        return files.face_name(self.picture_key(entry), entry.faces.index(face))

    def sidecar_path(self, entry: ImageEntry, directory: Path | None = None) -> Path:
        return files.sidecar_path(directory or self.target_dir(entry), entry.path.stem)

    def pts_path(self, entry: ImageEntry, k: int, directory: Path | None = None) -> Path:
        return (directory or self.target_dir(entry)) / files.pts_name(entry.path.stem, k)

    # --- loading --------------------------------------------------------------------------
    def load_annotations(self, entry: ImageEntry, num_points: int | None = None) -> list[str]:
        """Read existing .pts (and the side file) as human annotations. Returns problems found;
        a malformed file is reported and skipped, and it is never overwritten unless the user
        edits and saves that face."""
        if entry.loaded:
            return []
        entry.loaded = True
        entry.disk_stamp = files.disk_stamp(self.target_dir(entry), entry.path.stem)
        problems: list[str] = []
        dirs = [self.target_dir(entry)]
        if entry.path.parent not in dirs:
            dirs.append(entry.path.parent)  # annotations beside the image still count
        for d in dirs:
            if files.has_annotations(d, entry.path.stem):
                records, problems, entry.unreadable = files.read_faces(d, entry.path.stem, num_points)
                extras = files.read_extras(d, entry.path.stem)
                entry.faces = [self._face_of(r) for r in records]
                entry.faces += [Face(box=box.copy(), source=source) for box, source in extras.boxes]
                entry.deleted = [b.copy() for b in extras.deleted]
                break
        if problems:
            entry.error = "; ".join(problems)
        if entry.faces or problems or entry.deleted:
            self._changed(entry)
        return problems

    # --- other writers: another program (or a colleague) changes a picture's files ------------
    def changed_on_disk(self, entry: ImageEntry) -> bool:
        """Another program wrote this picture's annotation files since they were read or saved."""
        if not entry.loaded or entry.disk_stamp is None:
            return False
        return files.disk_stamp(self.target_dir(entry), entry.path.stem) != entry.disk_stamp

    def reload(self, entry: ImageEntry, num_points: int | None = None) -> list[str]:
        """Read the picture's files again: its faces become what is on disk (the model runs again
        on them). For a picture with no unsaved edits here."""
        entry.loaded, entry.faces, entry.deleted, entry.unreadable = False, [], [], set()
        entry.predicted, entry.dirty, entry.error = False, False, None
        problems = self.load_annotations(entry, num_points)
        self._changed(entry)
        return problems

    def take_theirs(self, entry: ImageEntry, num_points: int | None = None) -> list[Path]:
        """Another program's version wins over this picture's edits here, and nothing is lost:
        ours is saved first, then kept as NAME.pts.mine (NAME.drr.json.mine) while theirs goes
        back in place and is read. Returns the .mine files."""
        self.mark_dirty(entry)
        self.save(entry)
        mine = []
        for theirs in self.outside_edits:
            current = theirs.with_name(theirs.name.removesuffix(".theirs"))
            kept = current.with_name(current.name + ".mine")
            if current.exists():
                os.replace(current, kept)
                mine.append(kept)
            os.replace(theirs, current)
        self.reload(entry, num_points)
        return mine

    @staticmethod
    def _face_of(r: files.FaceRecord) -> Face:
        # a file on disk is never treated as disposable: a "predicted" status reads as corrected
        status = Status(r.status) if r.status in files.HUMAN_STATUSES else Status.CORRECTED
        placed = r.placed if r.placed is not None else set(range(len(r.points)))
        return Face(box=r.face_box().copy(), points=r.points.copy(), status=status, occluded=set(r.occluded),
                    annotation=r.points, placed=placed, source=r.box_source)

    # --- predictions ----------------------------------------------------------------------
    def apply_prediction(self, entry: ImageEntry, uids: list[int] | None, versions: list[int] | None,
                         results: list[Any]) -> list[Face]:
        """Merge model results. With uids, result i belongs to face uids[i] (dropped when that
        face is gone or its box changed since); without, the results are detected faces.
        Human-edited points are never replaced: such faces only get the new trace."""
        changed: list[Face] = []
        if uids is None:
            if entry.faces:  # faces appeared while detecting (drawn by hand): keep them
                return changed
            for r in results:
                box = np.asarray(r.box, dtype=np.float64)
                if any(box_iou(box, gone) >= MIN_MATCH_IOU for gone in entry.deleted):
                    continue  # a person deleted this face: it stays deleted
                face = Face(box=np.asarray(r.box, dtype=np.float64).copy(), source=getattr(r, "box_source", "detector"),
                            roll=float(getattr(r, "roll", 0.0)))
                entry.faces.append(face)
            uids = [f.uid for f in entry.faces]
            versions = [0] * len(uids)
        for uid, ver, r in zip(uids, versions or [], results):
            face = entry.face_by_uid(uid)
            if face is None or face.box_version != ver:
                continue
            face.result = r
            if not face.human:
                face.points = np.asarray(r.points, dtype=np.float64).copy()
                face.status = Status.PREDICTED
            changed.append(face)
        entry.predicted = all(f.result is not None for f in entry.faces)
        self._traced.add(entry)
        self._changed(entry)
        return changed

    def trim_traces(self, keep: set[Path]) -> int:
        """Drop the conv8 maps (about 1.1 MB a face, most of a trace) of every picture not in
        keep; points, status, provenance and the rest of the trace stay. A panel that needs
        the maps of a trimmed face asks for them again (PreLabeller.refresh_trace). Returns the
        number of faces trimmed."""
        n = 0
        traced, self._traced = self._traced, set()
        for entry in traced:  # only the pictures predicted since the last trim: O(those), not O(folder)
            if entry.path in keep:
                self._traced.add(entry)
                continue
            for f in entry.faces:
                r = f.result
                if r is not None and getattr(r, "heatmaps", None) is not None and dataclasses.is_dataclass(r):
                    f.result = dataclasses.replace(r, heatmaps=None)
                    n += 1
        return n

    def forget_predictions(self) -> None:
        """A new model: every trace is stale; untouched faces go back to 'not predicted'."""
        for entry in self.entries:
            stale = entry.predicted or any(f.result is not None or not f.human for f in entry.faces)
            entry.predicted = False
            for f in entry.faces:
                f.result = None
                if not f.human:
                    f.status = Status.PENDING
            if stale:  # a folder just opened has nothing to forget: no event per picture
                self._changed(entry)

    # --- saving ---------------------------------------------------------------------------
    def save(self, entry: ImageEntry) -> list[Path]:
        """Write what a person did to one image, atomically: their faces' points, the boxes they
        drew (points still the model's) and the faces they deleted. The model's points are not
        written (they are reproducible), so a prediction can never replace a file on disk."""
        self.backups, self.outside_edits = [], []
        if not entry.dirty:
            return []
        d = self.target_dir(entry)
        human = [f for f in entry.faces if f.human and f.points is not None]
        records = [files.FaceRecord(f.points, f.status.value, f.box, set(f.occluded), set(f.placed), f.source)
                   for f in human]
        drawn = [(f.box, f.source) for f in entry.faces if f not in human and f.source == "person"]
        extras = files.SideExtras([b.copy() for b in entry.deleted], drawn)
        try:
            if entry.disk_stamp is not None:
                self.outside_edits = files.keep_outside_edits(d, entry.path.stem, entry.disk_stamp)
            written, self.backups = files.write_faces(d, entry.path.stem, entry.path.name, records, entry.unreadable,
                                                      extras=extras)
            entry.disk_stamp = files.disk_stamp(d, entry.path.stem)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            where = exc.filename or d
            raise SaveError(f"Cannot save {entry.path.name}: {where}: {reason}") from None
        entry.unreadable -= {b.with_name(b.name.removesuffix(".bak")) for b in self.backups}
        for face in human:
            face.annotation = face.points.copy()
        entry.dirty = False
        if self.backups and not entry.unreadable:
            entry.error = None  # the malformed annotation is replaced by the saved one
        self._changed(entry)
        return written

    def peek_statuses(self) -> None:
        """The saved status of every picture (approved when all its faces were, else
        corrected) from its side file or .pts, without reading the points: the image list
        shows a reopened folder's progress at once. A malformed side file counts as corrected
        here; reading it properly (load_annotations) reports it."""
        listings: dict[str, set[str]] = {}  # one directory listing per folder, not two stats per picture

        def listing(d: str) -> set[str]:
            if d not in listings:
                try:
                    listings[d] = set(os.listdir(d))
                except OSError:
                    listings[d] = set()
            return listings[d]

        for entry in self.entries:
            if entry.loaded:
                continue
            stem = entry.path.stem
            beside = os.path.dirname(str(entry.path))  # strings: a Path per picture costs seconds at 100,000
            dirs = [beside] if self.output_dir is None else list(dict.fromkeys([str(self.target_dir(entry)), beside]))
            for d in dirs:
                names = listing(d)
                if stem + SIDECAR_SUFFIX not in names and files.pts_name(stem, 0) not in names:
                    continue
                status = files.saved_status(Path(d), stem)
                if status is not None:
                    entry.saved_status = status
                    break

    def counts(self) -> dict[str, int]:
        """How many pictures have each status."""
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.status] = out.get(e.status, 0) + 1
        return out

    def dirty_entries(self) -> list[ImageEntry]:
        return [e for e in self.entries if e.dirty]

    # --- export ---------------------------------------------------------------------------
    def export_snapshot(self, approved_only: bool = False) -> list[Any]:
        """A copy of every corrected (or only approved) face, as model.formats.AnnotatedImage,
        made on the thread that owns the document: the export then writes the copy in a worker
        thread while the GUI goes on changing the document (nothing shared)."""
        from model.formats import AnnotatedImage, FaceAnnotation

        wanted = (Status.APPROVED,) if approved_only else HUMAN
        for e in self.entries:
            self.load_annotations(e)
        out = []
        for e in self.entries:
            faces = [FaceAnnotation(np.array(f.points, dtype=np.float64), set(f.occluded), f.status.value,
                                    np.array(f.box, dtype=np.float64))
                     for f in e.faces if f.status in wanted and f.points is not None]
            if faces:
                out.append(AnnotatedImage(e.path, faces, e.size))
        return out

    def export_as(self, fmt: str, out: Path, approved_only: bool = False) -> Iterator[tuple[int, int, str]]:
        """Every corrected (or only approved) face in another tool's format (model.formats)."""
        from .exports import write_export

        return (yield from write_export(self.export_snapshot(approved_only), fmt, out))

    def import_annotations(self, images: list[Any]) -> tuple[int, list[str]]:
        """Faces from another tool (model.formats.AnnotatedImage, matched by picture name) as
        corrected faces (approved where the file says so, as DRR Studio's side files do). A picture whose faces a person already edited here is left alone.
        Returns (faces imported, names left alone or not in this folder)."""
        by_name = {e.path.name: e for e in self.entries}
        count, skipped = 0, []
        for im in images:
            e = by_name.get(im.path.name)
            if e is None:
                skipped.append(f"{im.path.name} (not in this folder)")
                continue
            self.load_annotations(e)
            if any(f.human for f in e.faces):
                skipped.append(f"{im.path.name} (already corrected here)")
                continue
            e.faces = [Face(box=np.asarray(f.face_box if f.face_box is not None else box_of_points(f.points), float),
                            points=f.points.copy(),
                            status=Status.APPROVED if f.status == Status.APPROVED.value else Status.CORRECTED,
                            occluded=set(f.occluded), placed=set(range(len(f.points)))) for f in im.faces]
            e.dirty, e.predicted = True, False
            count += len(im.faces)
            self._changed(e)
        return count, skipped

    def export_training(self, folder: Path, approved_only: bool = False) -> Iterator[tuple[int, int, str]]:
        """Every reviewed face as a training folder (drr_studio.exports.write_training)."""
        from .exports import write_training

        return (yield from write_training(self.export_snapshot(approved_only), self.root, folder))

