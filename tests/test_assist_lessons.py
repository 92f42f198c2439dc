"""A folder's lessons are residuals against one model's predictions: with other weights (a
fine-tune, another checkpoint) they are stale and never used (issue 34: never stale statistics)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drr_studio.assist import LEARNED_FILE, Assistant
from drr_studio.document import Face, Status


@dataclass
class Result:
    points: np.ndarray


def finished_face() -> Face:
    rng = np.random.default_rng(0)
    pred = rng.uniform(50, 150, (68, 2))
    return Face(box=np.array([40.0, 40, 160, 160]), points=pred + 2.0, status=Status.APPROVED, placed={8},
                result=Result(pred))


def checkpoint(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_lessons_are_used_only_with_the_weights_they_were_learned_with(tmp_path):
    a = checkpoint(tmp_path / "a.pt", b"weights a")
    b = checkpoint(tmp_path / "b.pt", b"weights b (fine-tuned)")
    first = Assistant()
    first.set_checkpoint(a, 68)
    first.open_folder(tmp_path)
    assert first.learn_faces([("p.png", finished_face())]) and (tmp_path / LEARNED_FILE).is_file()

    same = Assistant()
    same.set_checkpoint(a, 68)
    same.open_folder(tmp_path)
    assert same.model.learned_count == 1 and same.set_aside == 0

    other = Assistant()
    other.set_checkpoint(b, 68)
    other.open_folder(tmp_path)
    assert other.model.learned_count == 0 and other.set_aside == 1
    assert "set aside" in other.describe()

    # the folder opened before the model is known (the app's order), then the model arrives
    late = Assistant()
    late.open_folder(tmp_path)
    assert late.model.learned_count == 1
    late.set_checkpoint(b, 68)
    assert late.model.learned_count == 0 and late.set_aside == 1
    # a model switch from the lessons' model to another drops them too; back with the same weights keeps
    same.set_checkpoint(a, 68)
    assert same.model.learned_count == 1
    same.set_checkpoint(b, 68)
    assert same.model.learned_count == 0
