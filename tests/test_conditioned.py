"""model.conditioned (issue 34, lever 2): DRR's steps conditioned on the annotator's points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.conditioned import ConditionedSteps, StepsConfig, conditioned_update, refine, steps_path
from model.correction import CorrectionModel

CFG = StepsConfig(num_points=68, channels=4, input_size=32, steps=3, hidden=8)


def trained_a_little(seed: int = 0) -> ConditionedSteps:
    """Steps with large random weights: every free point moves a lot."""
    torch.manual_seed(seed)
    steps = ConditionedSteps(CFG)
    with torch.no_grad():
        for r in steps.regressors:
            r.weight.normal_(0, 0.05)
            r.bias.normal_(0, 0.5)
    return steps.eval()


def test_placed_points_never_move_and_the_others_do() -> None:
    steps = trained_a_little()
    maps = torch.rand(2, 4, 32, 32)
    start = torch.rand(2, 68, 2) * 32
    placed = torch.zeros(2, 68, dtype=torch.bool)
    placed[0, [3, 30, 57]] = True
    placed[1, :10] = True
    shapes = steps(maps, start, placed)
    assert len(shapes) == CFG.steps + 1
    for s in shapes:
        assert torch.equal(s[placed], start[placed])
    assert (shapes[-1][~placed] - start[~placed]).abs().max() > 0.1


def test_refine_in_picture_pixels_holds_placed_points_exactly() -> None:
    steps = trained_a_little(1)
    maps = torch.rand(4, 32, 32).half()
    to_crop = np.array([[0.25, 0.0, -10.0], [0.0, 0.25, -5.0]])  # picture -> crop
    rng = np.random.default_rng(0)
    start = rng.uniform(40, 150, size=(68, 2))
    placed = {8: np.array([91.3, 140.7]), 36: np.array([60.1, 70.2])}
    out = refine(steps, maps, to_crop, start, placed)
    assert np.array_equal(out[8], placed[8]) and np.array_equal(out[36], placed[36])
    assert out.shape == (68, 2) and np.isfinite(out).all()


def test_nothing_placed_leaves_the_prediction_as_it_was() -> None:
    stats = CorrectionModel.from_residuals(np.random.default_rng(2).normal(0, 0.05, size=(50, 136)))
    pred = np.random.default_rng(3).uniform(40, 150, size=(68, 2))
    out = conditioned_update(stats, trained_a_little(), torch.rand(4, 32, 32).half(),
                             np.array([[0.25, 0.0, -10.0], [0.0, 0.25, -5.0]]), pred, {})
    assert np.array_equal(out, pred)


def test_untrained_steps_start_near_the_identity() -> None:
    """Fresh steps (small weights) barely move anything: training starts from the Gaussian update."""
    torch.manual_seed(0)
    steps = ConditionedSteps(CFG).eval()
    start = torch.rand(1, 68, 2) * 32
    out = steps(torch.rand(1, 4, 32, 32), start, torch.zeros(1, 68, dtype=torch.bool))[-1]
    assert (out - start).abs().max() < 0.5


def test_file_round_trip_and_refusal_of_another_model(tmp_path) -> None:
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"weights one")
    steps = trained_a_little()
    steps.save(steps_path(ckpt), ckpt, "a test")
    assert steps_path(ckpt).name == "m.steps.pt"
    back = ConditionedSteps.load(steps_path(ckpt), ckpt)
    maps, start = torch.rand(1, 4, 32, 32), torch.rand(1, 68, 2) * 32
    placed = torch.zeros(1, 68, dtype=torch.bool)
    placed[0, 5] = True
    assert torch.equal(back(maps, start, placed)[-1], steps(maps, start, placed)[-1])
    ckpt.write_bytes(b"weights two")
    with pytest.raises(ValueError, match="trained on another model's features .*m.pt"):
        ConditionedSteps.load(steps_path(ckpt), ckpt)
    bad = tmp_path / "bad.steps.pt"
    bad.write_text("garbage")
    with pytest.raises(ValueError, match="bad.steps.pt: cannot read"):
        ConditionedSteps.load(bad)


def test_training_draws_place_points_on_the_truth_and_a_short_run_trains() -> None:
    """model.cli.conditioned: every draw's placed points sit on the truth (crop pixels); the
    steps train for an epoch on cached maps and still hold placed points."""
    from model.cli.conditioned import Faces, make_draws, train_steps

    rng = np.random.default_rng(4)
    truth = rng.uniform(60, 140, size=(3, 68, 2))
    truth[:, 36:42] = [70, 80] + rng.normal(0, 1, (3, 6, 2))
    truth[:, 42:48] = [130, 80] + rng.normal(0, 1, (3, 6, 2))
    preds = truth + rng.normal(0, 2, size=truth.shape)
    to_crop = np.tile(np.array([[0.2, 0.0, -8.0], [0.0, 0.2, -8.0]]), (3, 1, 1))
    faces = Faces(torch.rand(3, 4, 32, 32).half(), to_crop, preds, truth)
    stats = CorrectionModel.estimate(preds, truth, 0.3)
    draws = make_draws(faces, stats, per_face=6, seed=0, noise=0.5)
    assert len(draws["face"]) == 18 and draws["mask"].any()
    placed = draws["mask"]
    assert torch.allclose(draws["start"][placed], draws["truth"][placed], atol=1e-4)
    steps = train_steps(faces, draws, CFG, epochs=1, batch=8, log=lambda _: None)
    out = steps(faces.maps[draws["face"]], draws["start"], placed)[-1]
    assert not steps.training and torch.equal(out[placed], draws["start"][placed])


def test_crossfit_folds_split_the_training_faces_in_two_without_the_validation_faces(tmp_path) -> None:
    from bench.conditioned_crossfit import folds, link_fold
    from model.data import Sample

    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    samples = []
    for k in range(9):
        (data / f"f{k}.png").write_bytes(b"x")
        (data / f"f{k}.pts").write_text("x")
        samples.append(Sample(data / f"f{k}.png", np.zeros((68, 2)), f"set/f{k}"))
    fold_a, fold_b = folds(samples[::-1], {"set/f0", "set/f5"})
    names_a, names_b = [s.name for s in fold_a], [s.name for s in fold_b]
    assert names_a == ["set/f1", "set/f3", "set/f6", "set/f8"]  # alternately, in name order
    assert names_b == ["set/f2", "set/f4", "set/f7"]
    link_fold(fold_b, tmp_path / "data", tmp_path / "foldB")
    linked = sorted(p.relative_to(tmp_path / "foldB").as_posix() for p in (tmp_path / "foldB").rglob("*"))
    assert linked == ["set", "set/f2.png", "set/f2.pts", "set/f4.png", "set/f4.pts", "set/f7.png", "set/f7.pts"]
