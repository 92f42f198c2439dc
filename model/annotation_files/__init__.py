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

A clip's files (one folder per clip, 300-VW's layout, and its side file drr_clip.json) are in
`clips`, the lock that keeps a second app off a folder in `lock`; everything is imported from
here (`from model import annotation_files as files`).
"""

from .clips import (
    CLIP_FORMAT,
    CLIP_SIDECAR,
    ClipAnnotation,
    ClipFace,
    DeletedTrack,
    frame_stem,
    is_clip_folder,
    read_clip,
    write_clip,
    write_clip_frame,
    write_clip_sidecar,
)
from .lock import LOCK_FILE, lock_folder, unlock_folder
from .pictures import (
    BOX_SOURCES,
    HUMAN_STATUSES,
    LEARNED_FILE,
    ORIGINAL_SUFFIX,
    SIDECAR_SUFFIX,
    SIDECAR_VERSION,
    STATUSES,
    AnnotationFileError,
    FaceRecord,
    SideExtras,
    disk_stamp,
    face_name,
    face_pts_files,
    has_annotations,
    keep_originals,
    keep_outside_edits,
    legacy_pts_name,
    pts_name,
    read_extras,
    read_faces,
    read_sidecar,
    saved_status,
    sidecar_path,
    write_faces,
)

__all__ = [
    "BOX_SOURCES", "CLIP_FORMAT", "CLIP_SIDECAR", "HUMAN_STATUSES", "LEARNED_FILE", "LOCK_FILE", "ORIGINAL_SUFFIX", "SIDECAR_SUFFIX",
    "SIDECAR_VERSION", "STATUSES", "AnnotationFileError", "ClipAnnotation", "ClipFace", "DeletedTrack", "FaceRecord",
    "SideExtras", "disk_stamp", "face_name", "face_pts_files", "frame_stem", "has_annotations", "is_clip_folder",
    "keep_originals", "keep_outside_edits", "legacy_pts_name", "lock_folder", "pts_name", "read_clip", "read_extras", "read_faces",
    "read_sidecar", "saved_status", "sidecar_path", "unlock_folder", "write_clip", "write_clip_frame",
    "write_clip_sidecar", "write_faces",
]
