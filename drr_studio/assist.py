"""Assisted correction in the app: after a drag, the face's other unplaced points follow.

Qt-free, like the document and the session. The statistics come from `model.correction`: the
prior made for the model in use (`NAME.correction.json` beside the checkpoint, refused when made
for another model) plus what this folder's finished faces taught, kept beside the folder's
annotations in `drr_corrections.json` so that reopening the folder keeps the lessons.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from psygnal import Signal

from model.annotation_files import LEARNED_FILE  # noqa: E402 - re-exported for the app
from model.correction import CorrectionFileError, CorrectionModel, file_sha256, for_checkpoint

from .document import Face


class Assistant:
    """The correction model of the session: `follow()` after an edit, `learn()` from a finished
    face. Announces a change of what it knows with `changed` (for the status bar)."""

    changed = Signal(str)  # a one-line description: "assisted correction: learned from 12 faces"

    def __init__(self, num_points: int = 68) -> None:
        self.enabled = True
        self.prior = CorrectionModel.empty(num_points)
        self.model = CorrectionModel.empty(num_points)
        self.folder_file: Path | None = None
        # the model the lessons are residuals of (its weights' sha256): a lesson learned with
        # another model is stale (its residual is against that model's prediction), never used
        self.model_sha: str | None = None
        self.set_aside = 0  # lessons learned with another model, not used
        self.lessons_sha: str | None = None  # the model the lessons in use were learned with
        self.prior_problem: str | None = None  # why the model's statistics are not used
        self.folder_problem: str | None = None  # why the folder's lessons are not used or saved

    # --- what it knows ---------------------------------------------------------------------
    def set_checkpoint(self, checkpoint: Path | None, num_points: int) -> None:
        """The model in use changed: its own statistics; the folder's lessons stay on top only
        when they were learned with these same weights (a fine-tune or another model makes
        them stale: they are dropped, and the finished faces teach again as they are saved)."""
        sha = file_sha256(checkpoint) if checkpoint is not None and Path(checkpoint).is_file() else None
        stale = bool(self.model.learned) and self.lessons_sha is not None and sha is not None and self.lessons_sha != sha
        learned = dict(self.model.learned) if self.model.num_points == num_points and not stale else {}
        if stale:
            self.set_aside += len(self.model.learned)
        self.model_sha = sha
        if sha is not None and learned:
            self.lessons_sha = sha
        if checkpoint is None:
            self.prior, self.prior_problem = CorrectionModel.empty(num_points), None
        else:
            self.prior, self.prior_problem = for_checkpoint(checkpoint, num_points)
        self.model = self.prior.copy()
        self.model.add_lessons(learned)
        self.changed.emit(self.describe())

    def open_folder(self, folder: Path | None) -> None:
        """Read the lessons of the folder whose annotations live in `folder` (None: no folder)."""
        self.folder_file = folder / LEARNED_FILE if folder is not None else None
        self.model.reset_learned()
        self.folder_problem = None
        self.set_aside, self.lessons_sha = 0, None
        if self.folder_file is not None and self.folder_file.is_file():
            try:
                lessons = CorrectionModel.load(self.folder_file, self.prior.num_points)
                theirs = lessons.model.get("sha256")
                if theirs and self.model_sha and theirs != self.model_sha:
                    self.set_aside = len(lessons.learned)  # stale: learned against another model's points
                else:
                    self.model.add_lessons(lessons.learned)
                    self.lessons_sha = theirs or self.model_sha
            except CorrectionFileError as exc:
                self.folder_problem = f"{exc}; the folder's lessons are not used (the file is left as it is)"
                self.folder_file = None  # never overwrite a file we could not read
        self.changed.emit(self.describe())

    def move_folder(self, folder: Path | None) -> None:
        """The annotations now go elsewhere: the lessons go with them."""
        self.folder_file = folder / LEARNED_FILE if folder is not None else None
        self.folder_problem = None
        self.save()

    def describe(self) -> str:
        if not self.enabled:
            return "assisted correction off"
        aside = f" ({self.set_aside} learned with another model set aside)" if self.set_aside else ""
        if not self.model.active:
            return "assisted correction: no statistics for this model (only the dragged points move)" + aside
        n = self.model.learned_count
        return f"assisted correction: learned from {n} face{'s' if n != 1 else ''}{aside}"

    # --- the update --------------------------------------------------------------------------
    def follow(self, face: Face, points: np.ndarray, placed: set[int]) -> np.ndarray:
        """The face's points after a person placed `placed` at `points`: placed points stay, the
        others follow the model's prediction updated by them. Unchanged when off or when the face
        has no prediction to start from."""
        prediction = getattr(face.result, "points", None)
        if not self.enabled or prediction is None or len(prediction) != len(points) or not self.model.active:
            return points
        return self.model.update(np.asarray(prediction, float), {k: points[k] for k in placed})

    # --- learning ----------------------------------------------------------------------------
    def learn(self, key: str, face: Face) -> bool:
        """A finished face (approved, or saved as corrected) teaches the statistics, as the
        simulated annotator's learning does with every face it finishes: one approved unchanged
        says the model was right there. A face whose every point is a person's (read from another
        tool's file) did not start from the prediction and teaches nothing."""
        prediction = getattr(face.result, "points", None)
        if (not self.enabled or prediction is None or face.points is None or not face.human
                or len(prediction) != len(face.points) or len(face.placed) == len(face.points)):
            return False
        if self.lessons_sha is not None and self.model_sha is not None and self.lessons_sha != self.model_sha:
            self.set_aside += len(self.model.learned)  # lessons of another model: not mixed with this one's
            self.model.reset_learned()
        self.model.learn(np.asarray(prediction, float), face.points, key)
        self.lessons_sha = self.model_sha
        return True

    def learn_faces(self, faces: list[tuple[str, Face]]) -> bool:
        """Finished faces (key, face) teach the statistics; when any did, the folder's lessons
        are written and the change announced. Returns whether any did."""
        taught = [self.learn(key, face) for key, face in faces]
        if any(taught):
            self.save()
            self.changed.emit(self.describe())
        return any(taught)

    def forget(self, keys: list[str]) -> bool:
        """Faces that are no longer finished (reset to the model's points, deleted) teach
        nothing: their lessons go, and the folder's file is rewritten. Returns whether any went."""
        gone = [k for k in keys if self.model.learned.pop(k, None) is not None]
        if gone:
            self.save()
            self.changed.emit(self.describe())
        return bool(gone)

    def save(self) -> None:
        """Write the folder's lessons (atomically); an error is kept in `folder_problem`, never raised."""
        if self.folder_file is None:
            return
        lessons = CorrectionModel.empty(self.prior.num_points)
        lessons.learned = dict(self.model.learned)
        lessons.source = "faces finished in this folder (DRR Studio)"
        if self.model_sha:
            lessons.model = {"sha256": self.model_sha}
        try:
            lessons.save(self.folder_file)
        except OSError as exc:
            self.folder_problem = f"{self.folder_file}: cannot save the learned corrections ({exc.strerror or exc})"

    def reset_learned(self) -> None:
        self.model.reset_learned()
        self.set_aside = 0
        if self.folder_file is not None and self.folder_file.exists():
            try:
                self.folder_file.unlink()
            except OSError as exc:
                self.folder_problem = f"{self.folder_file}: cannot remove ({exc.strerror or exc})"
        self.changed.emit(self.describe())

    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        self.changed.emit(self.describe())
