"""Issue 34: the shipped statistics' build (training faces' residuals, scale calibrated on held-out
faces), their file, and the refusal of a mismatched model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from model.correction import CorrectionFileError, CorrectionModel, for_checkpoint, residual, stats_path


def test_from_residuals_is_estimate() -> None:
    rng = np.random.default_rng(0)
    preds = rng.normal(50, 10, size=(30, 68, 2))
    truth = preds + rng.normal(0, 1, size=preds.shape)
    a = CorrectionModel.estimate(preds, truth, 0.2)
    b = CorrectionModel.from_residuals(np.stack([residual(p, t) for p, t in zip(preds, truth)]), 0.2)
    assert a.num_points == b.num_points == 68 and a.count == b.count == 30
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.covariance, b.covariance)


def test_build_from_training_faces_round_trips_and_refuses_another_model(tmp_path, sample_faces) -> None:
    """model.cli.correction's build: residuals of the training faces, covariance scaled by the
    held-out faces' mean square over theirs; the file round-trips (calibration included), the
    app takes it for its model and refuses it, plainly, for any other; so does bench.annotator."""
    from bench.annotator import check_made_for
    from model.cli.correction import build, pre_label, residuals
    from model.data import find_samples
    from model.predict import Predictor
    from model.resources import HELDOUT_WEIGHTS, resource

    target = tmp_path / "m.pt"
    shutil.copy(resource(HELDOUT_WEIGHTS), target)
    faces, _ = find_samples([sample_faces[0].parent], 68)
    faces = sorted(faces, key=lambda s: s.name)
    train, val = faces[:2], faces[2:]
    stats = build(resource(HELDOUT_WEIGHTS), target, train, val, shrinkage=0.1, progress=False)
    predictor = Predictor.load(resource(HELDOUT_WEIGHTS), mirror_average=True)
    r_train, _ = residuals(predictor, train, False)
    r_val, _ = residuals(predictor, val, False)
    scale = np.mean(r_val**2) / np.mean(r_train**2)
    assert stats.count == 2 and stats.shrinkage == 0.1 and stats.calibration["faces"] == 1
    assert stats.calibration["scale"] == pytest.approx(scale)
    np.testing.assert_allclose(stats.covariance, np.cov(r_train, rowvar=False, bias=True) * scale, atol=1e-12)
    stats.save(stats_path(target))
    got, why = for_checkpoint(target, 68)
    assert why is None and got.calibration == pytest.approx(stats.calibration) and got.count == 2
    pred = pre_label(predictor, val, progress=False)[0][0]
    placed = {30: pred[30] + 3.0}
    np.testing.assert_allclose(got.update(pred, placed), stats.update(pred, placed), atol=1e-4)
    check_made_for(got, target)  # its own model: no complaint
    other = tmp_path / "other.pt"
    other.write_bytes(target.read_bytes() + b"\0")  # a fine-tune, a new export: another model
    shutil.copy(stats_path(target), stats_path(other))
    got, why = for_checkpoint(other, 68)
    assert not got.active and "made for another model (m.pt)" in why
    with pytest.raises(CorrectionFileError, match="made for m.pt .* not for other.pt"):
        check_made_for(CorrectionModel.load(stats_path(other)), other)


def test_build_refuses_a_model_without_held_out_faces(tmp_path, sample_faces) -> None:
    from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from model.cli.correction import build
    from model.data import find_samples
    from model.resources import HELDOUT_WEIGHTS, resource

    model, blob = load_checkpoint(resource(HELDOUT_WEIGHTS))
    every = tmp_path / "all.pt"
    save_checkpoint(every, model, {**blob.get("meta", {}), "val_faces": 0})
    faces, _ = find_samples([sample_faces[0].parent], 68)
    with pytest.raises(CheckpointError, match="without a validation split"):
        build(every, every, faces[:2], faces[2:], progress=False)


def test_the_shipped_statistics_come_from_the_held_out_twin() -> None:
    """The held-out twin (the shipped recipe trained without the validation faces) ships with
    its own statistics; the shipped model's are stamped for it and, when it is another file (the
    all-faces model), were built from the twin's residuals (python -m model.cli.correction)."""
    from model.checkpoint import load_checkpoint
    from model.data import read_name_list
    from model.resources import DEFAULT_WEIGHTS, HELDOUT_WEIGHTS, VAL_SPLIT, resource

    heldout, shipped = resource(HELDOUT_WEIGHTS), resource(DEFAULT_WEIGHTS)
    _, blob = load_checkpoint(heldout)
    names = read_name_list(resource(VAL_SPLIT))
    assert blob["meta"]["val_faces"] == len(names), "the twin must have been trained without every validation face"
    for weights in (heldout, shipped):
        stats, why = for_checkpoint(weights, 68)
        assert why is None and stats.count > 0, why
    stats, _ = for_checkpoint(shipped, 68)
    assert HELDOUT_WEIGHTS in stats.source or shipped.read_bytes() == heldout.read_bytes()
