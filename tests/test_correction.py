"""model.correction: the assisted-correction update, learning and its file format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.correction import (
    CorrectionFileError,
    CorrectionModel,
    file_sha256,
    for_checkpoint,
    residual,
    stats_path,
)

# a 5-point face (MAFL layout: right eye, left eye, nose, mouth corners) whose eyes are level and
# one unit apart, so that the eye frame is the identity and residuals are image offsets
PRED5 = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.6], [0.1, 1.0], [0.9, 1.0]])


def random_gaussian(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    return rng.normal(0, 0.05, size=n), a @ a.T / n * 0.01 + 0.001 * np.eye(n)


def test_update_equals_brute_force_conditioning() -> None:
    mean, cov = random_gaussian(10)
    model = CorrectionModel(5, mean, cov, count=100, shrinkage=0.0)
    placed = {2: PRED5[2] + [0.07, -0.03], 4: PRED5[4] + [-0.02, 0.05]}
    got = model.update(PRED5, placed)
    # brute force through the precision matrix: E[x_U | x_O] = mu_U - P_UU^-1 P_UO (x_O - mu_O)
    obs = np.array([4, 5, 8, 9])
    free = np.setdiff1d(np.arange(10), obs)
    prec = np.linalg.inv(cov)
    x_o = np.concatenate([placed[2] - PRED5[2], placed[4] - PRED5[4]])
    r_u = mean[free] - np.linalg.solve(prec[np.ix_(free, free)], prec[np.ix_(free, obs)] @ (x_o - mean[obs]))
    want = PRED5.copy().reshape(-1)
    want[free] += r_u
    want = want.reshape(5, 2)
    want[2], want[4] = placed[2], placed[4]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_update_in_a_rotated_scaled_frame_is_the_same_update() -> None:
    """A face twice as large and rolled by 30 degrees moves the same way, rotated and scaled."""
    mean, cov = random_gaussian(10, seed=1)
    model = CorrectionModel(5, mean, cov, count=50, shrinkage=0.2)
    placed = {3: PRED5[3] + [0.05, 0.02]}
    base = model.update(PRED5, placed)
    t = np.radians(30)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    move = lambda p: 2.0 * p @ rot.T + [40.0, 7.0]  # noqa: E731
    turned = model.update(move(PRED5), {3: move(placed[3])})
    np.testing.assert_allclose(turned, move(base), atol=1e-9)


def test_placed_points_never_move_and_others_follow() -> None:
    rng = np.random.default_rng(3)
    pred = rng.normal(50, 10, size=(68, 2))
    pred[36:42] = [[30, 40]] * 6 + rng.normal(0, 1, (6, 2))
    pred[42:48] = [[70, 40]] * 6 + rng.normal(0, 1, (6, 2))
    # residuals where the whole jaw (0..16) shifts together
    n = 200
    res = rng.normal(0, 0.005, size=(n, 68, 2))
    res[:, :17, 0] += rng.normal(0, 0.05, size=(n, 1))
    truths = np.stack([pred + r * 40 for r in res])
    model = CorrectionModel.estimate(np.stack([pred] * n), truths, shrinkage=0.1)
    placed = {8: pred[8] + [4.0, 0.0], 30: pred[30] + [0.0, -1.0]}
    out = model.update(pred, placed)
    assert np.array_equal(out[8], placed[8]) and np.array_equal(out[30], placed[30])
    # the jaw's other points follow the chin's shift; the eyes barely move
    assert np.all(out[[0, 4, 12, 16], 0] - pred[[0, 4, 12, 16], 0] > 2.0)
    assert np.abs(out[36:48] - pred[36:48]).max() < 0.5


def test_no_statistics_is_plain_correction() -> None:
    model = CorrectionModel.empty(5)
    out = model.update(PRED5, {0: [0.3, 0.3]})
    assert np.array_equal(out[1:], PRED5[1:]) and np.array_equal(out[0], [0.3, 0.3])


def test_learning_moves_the_mean_towards_the_convention_and_replaces_by_key() -> None:
    mean, cov = random_gaussian(10, seed=2)
    model = CorrectionModel(5, np.zeros(10), cov, count=10, shrinkage=0.0)
    final = PRED5 + [0.0, 0.1]  # this person puts every point 0.1 lower
    for k in range(30):
        model.learn(PRED5, final, key=f"face{k}")
    m, _ = model.statistics()
    assert np.allclose(m[1::2], 0.1 * 30 / 40)
    model.learn(PRED5, final, key="face0")  # the same face again: no double count
    assert model.learned_count == 30
    model.reset_learned()
    assert model.learned_count == 0 and np.allclose(model.statistics()[0], 0.0)


def test_file_round_trip_and_bad_files(tmp_path) -> None:
    mean, cov = random_gaussian(10)
    model = CorrectionModel(5, mean, cov, count=20, shrinkage=0.25, source="test")
    model.learn(PRED5, PRED5 + 0.01, key="a.jpg#1")
    path = tmp_path / "s.correction.json"
    model.save(path)
    back = CorrectionModel.load(path, 5)
    assert back.count == 20 and back.shrinkage == 0.25 and list(back.learned) == ["a.jpg#1"]
    np.testing.assert_allclose(back.update(PRED5, {2: [0.6, 0.7]}), model.update(PRED5, {2: [0.6, 0.7]}), atol=1e-5)
    with pytest.raises(CorrectionFileError, match="made for 5 points"):
        CorrectionModel.load(path, 68)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CorrectionFileError, match="bad.json"):
        CorrectionModel.load(bad)
    d = json.loads(path.read_text())
    d["covariance"] = d["covariance"][:3]
    bad.write_text(json.dumps(d))
    with pytest.raises(CorrectionFileError, match="do not fit"):
        CorrectionModel.load(bad)


def test_statistics_for_another_checkpoint_are_refused(tmp_path) -> None:
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"weights one")
    mean, cov = random_gaussian(10)
    stats = CorrectionModel(5, mean, cov, count=20, model={"sha256": file_sha256(ckpt), "name": "m"})
    stats.save(stats_path(ckpt))
    got, why = for_checkpoint(ckpt, 5)
    assert why is None and got.active
    ckpt.write_bytes(b"weights two")  # a fine-tune or a new export: the statistics are stale
    got, why = for_checkpoint(ckpt, 5)
    assert not got.active and "another model" in why
    stats_path(ckpt).write_text("garbage")
    got, why = for_checkpoint(ckpt, 5)
    assert not got.active and "m.correction.json" in why


def test_residual_is_in_eye_units() -> None:
    big = PRED5 * 10
    r = residual(big, big + [1.0, 0.0])
    assert np.allclose(r[0::2], 0.1) and np.allclose(r[1::2], 0.0)


def test_refit_the_drr_way_holds_placed_points_and_reproduces_the_trace() -> None:
    """Predictor.refit from the trace's own S0 with nothing placed gives the same points (the
    crop is the same); placed points are held exactly."""
    from model.geometry import box_of_points
    from model.images import read_image
    from model.predict import Predictor
    from model.resources import SAMPLE, resource

    p = Predictor.load(mirror_average=False, precision="fp32")
    img = read_image(resource(SAMPLE))
    r = p.inference(img)[0]
    np.testing.assert_allclose(p.refit(img, r, r.steps[0], {}), r.points, atol=1e-3)
    placed = {8: r.points[8] + [6.0, 3.0], 30: r.points[30] - [2.0, 1.0]}
    out = p.refit(img, r, r.points, placed)
    assert np.array_equal(out[8], placed[8]) and np.array_equal(out[30], placed[30])
    assert np.abs(out - r.points).max() < 0.5 * float(np.ptp(box_of_points(r.points)))


def test_simulated_annotator_counts_and_its_command(tmp_path, sample_faces) -> None:
    """bench.annotator: plain correction moves exactly the points that are off; the command
    runs on a folder (the shipped sample's faces here) and writes corrections[tau][mode]."""
    import json
    import shutil

    from bench.annotator import curve, main, shifted_jaw, simulate
    from model.pts import read_pts

    truth = read_pts(sample_faces[0].with_suffix(".pts"))
    d = float(np.linalg.norm(truth[36] - truth[45]))
    pred = truth.copy()
    pred[[3, 30, 50]] += 0.2 * d  # three points off by 28% of the eye distance
    pred[10] += 0.03 * d  # one within tau
    count, final = simulate(pred, truth, 0.05)
    assert count == 3 and np.allclose(final[[3, 30, 50]], truth[[3, 30, 50]])
    nme = curve(pred, truth)  # after k clicks: 3 points off by 0.2 d on each axis, 2, 1, then point 10
    assert len(nme) == 11 and np.allclose(nme[:5], np.sqrt(2) * np.array([0.63, 0.43, 0.23, 0.03, 0.0]) / 68)
    moved = shifted_jaw(truth[None], 0.05)[0] - truth
    assert np.allclose(np.hypot(*moved[:17].T), 0.05 * d) and not moved[17:].any()
    folder = tmp_path / "faces"
    folder.mkdir()
    for f in sample_faces:
        shutil.copy(f, folder / f.name)
        shutil.copy(f.with_suffix(".pts"), folder / f.with_suffix(".pts").name)
    out = tmp_path / "a.json"
    assert main(["--data", str(folder), "--boxes", "truth", "--no-dlib", "--quiet", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert set(rep["corrections"]) == {"0.05", "0.07", "0.10"}
    assert set(rep["corrections"]["0.07"]) == {"plain", "assisted", "learning", "app"} and rep["faces"] == 3
    assert rep["corrections"]["0.07"]["app"] == rep["corrections"]["0.07"][rep["app_mode"]]
    assert set(rep["curve"]) == {"plain", "assisted", "learning", "app"}
    assert all(len(c) == 11 and c[0] >= c[-1] for c in rep["curve"].values())
    assert rep["trained_on_counted_faces"] is False  # a folder of its own, not the validation split


def test_correction_variants_keep_placed_points_and_condition_like_the_update() -> None:
    """bench.correction_variants (issue 34's experiments): each point's conditional covariance is
    the Schur complement; heatmap fusion never moves a placed point and, with flat heatmaps, stays
    at the Gaussian update (within a map pixel)."""
    from bench.correction_variants import conditional_covariances, fusion_hook
    from model.predict import FaceResult

    mean, cov = random_gaussian(10, seed=2)
    got = conditional_covariances(cov, [1, 3])
    obs, free = np.array([2, 3, 6, 7]), np.array([0, 1])
    want = cov[np.ix_(free, free)] - cov[np.ix_(free, obs)] @ np.linalg.solve(cov[np.ix_(obs, obs)], cov[np.ix_(obs, free)])
    np.testing.assert_allclose(got[0], want, rtol=1e-4)
    np.testing.assert_allclose(conditional_covariances(cov, [])[2], cov[4:6, 4:6])

    rng = np.random.default_rng(4)
    pred = rng.uniform(30, 60, size=(68, 2))
    pred[36:42], pred[42:48] = [35, 40], [55, 40]  # eyes 20 px apart
    _, big = random_gaussian(136, seed=5)
    model = CorrectionModel(68, np.zeros(136), big, count=100, shrinkage=0.1)
    size = 96  # a 96-px crop = the picture; conv8 at half resolution: 48 x 48, flat
    face = FaceResult(box=np.array([0, 0, 95, 95.0]), points=pred, s_hat=pred, s0=pred, steps=pred[None],
                      candidate_index=0, candidate_distances=np.zeros(1), candidates=pred[None],
                      heatmaps=np.full((68, 48, 48), 1 / 48**2, np.float32),
                      crop_to_image=np.array([[1.0, 0, 0], [0, 1.0, 0]]), sip_box_image=4.0)
    placed = {8: pred[8] + [3.0, 1.0]}
    start = model.update(pred, placed)
    out = fusion_hook(face, size, model, power=1.0, share=1.0)(start, placed)
    assert np.array_equal(out[8], placed[8])
    assert np.abs(out - start).max() < 2.0
