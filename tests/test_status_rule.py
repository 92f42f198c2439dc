"""The one rule for a picture's status (drr_studio.document.picture_status), over every
combination of its faces: model only, placed points, approved, deleted, flagged, mixed."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from drr_studio.document import (
    BAD_FILE_STATUS,
    ERROR_STATUS,
    NO_FACE_STATUS,
    Face,
    ImageEntry,
    Status,
    picture_status,
    status_text,
)

BOX = np.array([0.0, 0.0, 10.0, 10.0])
KINDS = {
    "pending": dict(status=Status.PENDING, points=None),
    "model": dict(status=Status.PREDICTED),
    "flagged": dict(status=Status.PREDICTED),  # the model doubts it: still the model's
    "placed": dict(status=Status.CORRECTED, placed={3}),
    "approved": dict(status=Status.APPROVED),
}


def face(kind: str) -> Face:
    args = dict(KINDS[kind])
    points = args.pop("points", np.zeros((68, 2)))
    return Face(box=BOX.copy(), points=points, **args)


def expected(kinds: tuple[str, ...], deleted: bool) -> tuple[str, str]:
    """The rule written out independently: approved only when every face is; a person's work
    makes it corrected (saying how far), and so does a face a person deleted; then the model's states."""
    human = [k for k in kinds if k in ("placed", "approved")]
    if kinds and len(human) == len(kinds) and all(k == "approved" for k in kinds):
        return "approved", "approved"
    if human or (deleted and kinds):  # a face deleted beside the model's faces is a person's work too
        if len(human) == len(kinds):
            return "corrected", "corrected"
        word = "approved" if human and all(k == "approved" for k in human) else "corrected"
        return "corrected", f"{word} {len(human)} of {len(kinds)}"
    if not kinds:
        return ("corrected", "faces deleted") if deleted else (NO_FACE_STATUS, NO_FACE_STATUS)
    if "pending" in kinds:
        return "not predicted", "not predicted"
    return "predicted", "predicted"


@pytest.mark.parametrize("deleted", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_every_combination_of_faces(n, deleted):
    for kinds in itertools.combinations_with_replacement(KINDS, n):
        entry = ImageEntry(Path("p.png"), faces=[face(k) for k in kinds], loaded=True, predicted=True,
                           deleted=[BOX.copy()] if deleted else [])
        assert (picture_status(entry), status_text(entry)) == expected(kinds, deleted), kinds


def test_problems_and_saved_statuses():
    bad = ImageEntry(Path("p.png"), error="cannot decode", loaded=True)
    assert picture_status(bad) == ERROR_STATUS
    unreadable = ImageEntry(Path("p.png"), faces=[face("model")], unreadable={Path("p.pts")}, loaded=True)
    assert picture_status(unreadable) == BAD_FILE_STATUS
    unreadable.faces.append(face("placed"))  # a person's face wins over the bad file
    assert picture_status(unreadable) == Status.CORRECTED.value
    peeked = ImageEntry(Path("p.png"), saved_status="approved")  # before its annotations are read
    assert picture_status(peeked) == "approved"
    assert picture_status(ImageEntry(Path("p.png"))) == Status.PENDING.value
