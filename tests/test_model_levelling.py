"""Eye-levelled crops (DRRConfig.level_eyes) and the YuNet face detector with its eye points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import geometry
from model.config import DRRConfig
from model.data import FaceDataset, find_samples
from model.detect import Detection, detect_faces, scales_for
from model.images import read_image
from model.layout import layout_for
from model.network import DRR
from model.predict import Predictor, levelled_recrop
from model.train import TrainOptions, reference_shapes, train

IBUG68 = layout_for(68)


def _rotate(points: np.ndarray, deg: float, centre=(0.0, 0.0)) -> np.ndarray:
    t = np.deg2rad(deg)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (points - centre) @ r.T + centre


@pytest.fixture(scope="module")
def faces(shared_data):
    samples, problems = find_samples([shared_data / "afw"], 68)
    assert not problems
    return samples[:24]


def test_eye_angle_and_levelled_box_level_and_frame_the_shape(faces):
    """Whatever the roll of a real face, the crop of levelled_box at eye_angle has a level eye
    line and holds the shape with the same padding as an upright face's crop."""
    s = faces[0]
    for roll in (-35.0, -8.0, 0.0, 12.0, 40.0):
        pts = _rotate(s.points, roll, s.points.mean(0))
        angle = geometry.eye_angle(*IBUG68.eye_centres(pts))
        m = geometry.crop_matrix(geometry.levelled_box(pts, angle), 128, angle)
        c = geometry.apply(m, pts)
        assert abs(geometry.eye_angle(*IBUG68.eye_centres(c))) < 1e-6
        lo, hi = c.min(0), c.max(0)
        # the tight box of the levelled shape is centred and padded by 0.2 of its width
        assert np.allclose((lo + hi) / 2, 63.5, atol=1e-6)
        assert 127 / 1.4 - 1e-6 <= max(hi - lo) <= 128.0
    # a level face gets the ordinary tight box
    pts = _rotate(s.points, -geometry.eye_angle(*IBUG68.eye_centres(s.points)))
    assert np.allclose(geometry.levelled_box(pts, 0.0), geometry.box_of_points(pts))


def test_levelled_training_crops_have_level_eyes_up_to_the_jitter(faces):
    plain = FaceDataset(faces, 64, level_eyes=True)
    rolls = [abs(geometry.eye_angle(*IBUG68.eye_centres(plain.crop(i)[1]))) for i in range(len(faces))]
    assert max(rolls) < 1e-6
    jittered = FaceDataset(faces, 64, augment=True, level_eyes=True, roll_jitter=4.0, rotate_prob=0.0, seed=3)
    rolls = np.array([geometry.eye_angle(*IBUG68.eye_centres(jittered.crop(i % len(faces))[1])) for i in range(120)])
    assert 2.5 < rolls.std() < 6.0 and np.abs(rolls).max() <= 12.0 + 1e-6
    upright = FaceDataset(faces, 64)  # the faces themselves are rolled: levelling does something
    raw = [abs(geometry.eye_angle(*IBUG68.eye_centres(upright.crop(i)[1]))) for i in range(len(faces))]
    assert max(raw) > 3.0


def test_occlusion_and_blur_change_the_crop_not_the_points(faces):
    base = FaceDataset(faces, 64, augment=True, seed=5, colour=False, rotate_prob=0.0)
    aug = FaceDataset(faces, 64, augment=True, seed=5, colour=False, rotate_prob=0.0, occlude_prob=1.0, blur_prob=1.0)
    c0, p0, _ = base.crop(0)
    c1, p1, _ = aug.crop(0)
    assert np.allclose(p0, p1) and not np.array_equal(c0, c1)
    assert c1.dtype == np.uint8 and c1.shape == (64, 64, 3)


def test_levelled_candidates_differ_by_pose_not_roll(faces):
    shapes = reference_shapes(faces, 64, level_eyes=True)
    rolls = [abs(geometry.eye_angle(*IBUG68.eye_centres(p))) for p in shapes]
    assert max(rolls) < 1e-6
    assert max(abs(geometry.eye_angle(*IBUG68.eye_centres(p))) for p in reference_shapes(faces, 64)) > 3.0


def _level_predictor() -> Predictor:
    torch.manual_seed(0)
    model = DRR(DRRConfig(input_size=64, num_candidates=5, level_eyes=True))
    model.set_shapes(torch.rand(5, 68, 2) * 30 + 17, torch.full((68, 2), 32.0), torch.full((68, 2), 8.0))
    return Predictor(model, device="cpu", mirror_average=False, precision="fp32")


def test_levelled_model_runs_a_second_pass_levelled_by_its_first(faces):
    pred = _level_predictor()
    img = read_image(faces[0].image)
    box = geometry.box_of_points(faces[0].points)
    first = pred.first_pass(img, [box])[0]
    roll = geometry.eye_angle(*IBUG68.eye_centres(first.points))
    # a given box (training convention): the same box, rotated by the first pass's eye line
    r = pred.inference(img, [box])[0]
    assert np.allclose(r.box, box)
    assert np.allclose(r.crop_to_image, geometry.invert(geometry.crop_matrix(box, 64, roll)), atol=1e-9)
    # with recrop (a loose box): the levelled tight box of the first points
    r = pred.inference(img, [box], "person")[0]
    want_box, want_roll = levelled_recrop(box, 0.0, first.points, IBUG68)
    assert np.allclose(r.box, want_box) and want_roll == pytest.approx(roll)
    want = geometry.invert(geometry.crop_matrix(want_box, 64, want_roll))
    assert np.allclose(r.crop_to_image, want, atol=1e-9)
    # a given roll rotates the first pass; the second depends on the first pass only
    tilted = pred.first_pass(img, [box], [20.0])[0]
    assert not np.allclose(tilted.points, first.points)


def test_levelled_recrop_keeps_the_first_crop_for_collapsed_points():
    box = np.array([0.0, 0.0, 100.0, 100.0])
    collapsed = np.full((68, 2), 50.0) + np.random.default_rng(0).normal(0, 1, (68, 2))
    b, a = levelled_recrop(box, 7.0, collapsed, IBUG68)
    assert np.array_equal(b, box) and a == 7.0
    b, a = levelled_recrop(box, 7.0, np.full((68, 2), np.nan), IBUG68)
    assert np.array_equal(b, box) and a == 7.0


def test_short_levelled_training_validates_with_the_two_pass_protocol(shared_data, tmp_path, faces):
    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 6, "level_eyes": True},
                        epochs=1, batch_size=8, seed=0, roll_jitter=3.0, occlude_prob=0.3, blur_prob=0.3)
    res = train(opts, faces[:16], faces[16:20])
    assert np.isfinite(res.history[-1]["val_nme"])
    from model.checkpoint import load_checkpoint

    model, _ = load_checkpoint(res.last_path)
    assert model.cfg.level_eyes


# --- the detector ---------------------------------------------------------------------------


def test_yunet_finds_the_sample_face_with_eyes_in_place(shared_data):
    from model.predict import DEFAULT_CHECKPOINT

    img = read_image(DEFAULT_CHECKPOINT.parent / "astronaut.png")
    found = detect_faces(img)
    assert len(found) == 1, [d.score for d in found]  # her face, not the badge on her suit
    d = found[0]
    assert isinstance(d, Detection) and d.score > 0.8
    right, left = d.eyes
    assert right[0] < left[0] and abs(d.roll) < 15  # the subject's right eye is on the image's left
    x0, y0, x1, y1 = d.box
    assert x0 < right[0] < x1 and y0 < right[1] < y1


def test_yunet_finds_annotated_faces_and_their_eye_line(faces):
    errors = []
    for s in faces[:12]:
        found = detect_faces(read_image(s.image))
        assert found, f"{s.image}: no face found"
        from model.geometry import box_iou

        tb = geometry.box_of_points(s.points)
        d = max(found, key=lambda d: box_iou(d.box, tb))
        assert box_iou(d.box, tb) > 0.5, s.image
        errors.append(abs(d.roll - geometry.eye_angle(*IBUG68.eye_centres(s.points))))
    assert np.median(errors) < 4.0, errors


def test_yunet_finds_nothing_in_blank_or_noise_pictures():
    assert detect_faces(np.zeros((300, 400, 3), np.uint8)) == []
    assert detect_faces(np.full((64, 64, 3), 200, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detect_faces(noise) == []


def test_yunet_maps_boxes_back_from_reduced_and_enlarged_pictures(faces):
    """A face found in a large picture (detected on a reduced copy) or in a small one (on an
    enlarged copy) lands where it is in the picture itself."""
    import cv2

    s = faces[1]
    img = read_image(s.image)
    ref = detect_faces(img)[0]
    big = cv2.resize(img, None, fx=4.0, fy=4.0, interpolation=cv2.INTER_LINEAR)
    assert scales_for(big.shape)[0] < 1.0
    d = detect_faces(big)[0]
    assert np.allclose(d.points / 4.0, ref.points, atol=0.06 * (ref.raw_box[2] - ref.raw_box[0]))
    canvas = np.zeros((3000, 3200, 3), np.uint8)  # the face large and far from the centre
    canvas[1400:1400 + big.shape[0], 1600:1600 + big.shape[1]] = big
    d = detect_faces(canvas)[0]
    assert np.allclose(d.points, ref.points * 4.0 + [1600, 1400], atol=0.06 * 4 * (ref.raw_box[2] - ref.raw_box[0]))
    small = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    assert 2.0 in scales_for(small.shape)
    d = detect_faces(small)[0]
    assert np.allclose(d.points * 2.0, ref.points, atol=0.1 * (ref.raw_box[2] - ref.raw_box[0]))


def test_detector_refuses_a_non_rgb_array():
    with pytest.raises(ValueError, match="RGB"):
        detect_faces(np.zeros((32, 32), np.uint8))
