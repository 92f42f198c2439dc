"""Fine-tuning the shipped model on a handful of corrected faces of a new kind (faces tilted by
60 degrees, beyond the +-30 degrees it was trained with) lowers its error on held-out faces of
that kind. The faces are real 300-W validation faces (never trained on), rotated with their
annotations; the CLI path (`drr-train --init`) is exercised too. (At 45 degrees the shipped
model is already about as good as on upright faces, and 20 faces did not improve it: the app
shows both errors and lets the user keep the current model.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.finetune import tilted_validation_faces
from model.cli.train import main as train_main
from model.data import find_samples
from model.finetune import FineTuneOptions, fine_tune, split_held_out
from model.predict import DEFAULT_CHECKPOINT

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tilted_faces(shared_data, tmp_path_factory):
    return tilted_validation_faces(shared_data, ROOT / "resources" / "val_split.txt", tmp_path_factory.mktemp("f") / "tilted")


def test_fine_tuning_lowers_held_out_error(tilted_faces, tmp_path):
    samples, problems = find_samples([tilted_faces], 68)
    assert not problems and len(samples) == 28
    opts = FineTuneOptions(checkpoint=str(DEFAULT_CHECKPOINT), models_dir=str(tmp_path / "models"),
                           held_out_fraction=0.3)  # the app's settings otherwise
    result = fine_tune(opts, samples)
    assert result.held_out_faces == 8 and result.train_faces == 20
    assert result.checkpoint is not None and result.checkpoint.exists()
    # a real improvement, not noise: at least 20% lower held-out error (seeds 0-2 give 40%,
    # python -m bench.finetune)
    assert result.new_error < 0.8 * result.old_error, (result.old_error, result.new_error)
    print("held-out inter-ocular NME before/after:", result.old_error, result.new_error)
    assert DEFAULT_CHECKPOINT.exists()  # the shipped model is never overwritten


def test_held_out_split_is_stable():
    from model.data import Sample

    faces = [Sample(Path(f"{i}.jpg"), np.zeros((68, 2)), f"face{i}") for i in range(40)]
    train1, held1 = split_held_out(faces, 0.1)
    train2, held2 = split_held_out(list(reversed(faces)), 0.1)
    assert len(held1) == 4 and {s.name for s in held1} == {s.name for s in held2}
    assert not {s.name for s in held1} & {s.name for s in train1} and len(train1) == 36


def test_cli_fine_tune_prints_before_and_after(tilted_faces, tmp_path, capsys):
    rc = train_main(["--init", str(DEFAULT_CHECKPOINT), "--data", str(tilted_faces), "--out", str(tmp_path / "m"),
                     "--epochs", "1", "--val-fraction", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "held-out inter-ocular NME" in out and "before" in out and "after" in out
    written = list((tmp_path / "m").glob("finetuned-*.pt"))
    assert len(written) == 1 and not list((tmp_path / "m").glob(".finetune-*"))


def test_fine_tune_keeps_the_checkpoint_training_objective():
    from model.finetune import training_objective

    blob = {"meta": {"options": {"regression_loss": "distance", "regression_weight": 1.0, "rotate_prob": 0.3,
                                 "lr": 1.5e-3, "max_minutes": 95.0}}}
    assert training_objective(blob) == {"regression_loss": "distance", "regression_weight": 1.0, "rotate_prob": 0.3}
    assert training_objective({"meta": {}}) == {} and training_objective({}) == {}
