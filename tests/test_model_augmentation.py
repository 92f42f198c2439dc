"""Training augmentation styles (model.data): the recipe's draws and STAR's (issue 27, lever 2)."""

from __future__ import annotations

import numpy as np
import pytest

from model import geometry
from model.data import STAR_AUGMENTATION, FaceDataset, find_samples
from model.layout import layout_for

IBUG68 = layout_for(68)


@pytest.fixture(scope="module")
def faces(sample_faces):
    samples, problems = find_samples([sample_faces[0].parent], 68)
    assert len(samples) == 3 and not problems
    return samples


def _roll_and_flip(ds: FaceDataset, i: int) -> tuple[float, bool]:
    """The crop's roll in degrees and whether it was mirrored, read back from its matrix."""
    _, _, m = ds.crop(i)
    flipped = np.linalg.det(m[:2, :2]) < 0
    a = m[:2, :2] @ np.diag([-1.0, 1.0]) if flipped else m[:2, :2]
    return float(np.degrees(np.arctan2(a[1, 0], a[0, 0]))), bool(flipped)


def test_star_draws_have_the_published_spreads(faces):
    ds = FaceDataset(faces, 64, augment=True, seed=1, style="star")
    draws = [_roll_and_flip(ds, i % len(faces)) for i in range(300)]
    rolls = np.array([r for r, _ in draws])
    flips = np.array([f for _, f in draws])
    sigma = STAR_AUGMENTATION["rotate_sigma"]
    assert 0.8 * sigma < rolls.std() < 1.2 * sigma and np.abs(rolls).max() <= 3 * sigma + 1e-6
    assert 0.4 < flips.mean() < 0.6
    # the recipe's draws roll a share of the crops by multiples of 5 degrees, never beyond 30
    drr = FaceDataset(faces, 64, augment=True, seed=1, rotate_prob=0.3)
    rolls = np.array([_roll_and_flip(drr, i % len(faces))[0] for i in range(100)])
    assert np.abs(rolls).max() <= 30 + 1e-6


def test_star_points_follow_the_crop(faces):
    """Whatever the draw, the points are the picture's points under the crop's matrix (mirrored
    in name too when the crop is), and the texture draws leave a uint8 crop of the right size."""
    ds = FaceDataset(faces, 64, augment=True, seed=2, style="star")
    mirror = IBUG68.mirror_array()
    for k in range(40):
        i = k % len(faces)
        crop, pts, m = ds.crop(i)
        expected = geometry.apply(m, faces[i].points)
        if np.linalg.det(m[:2, :2]) < 0:
            expected = expected[mirror]
        assert np.allclose(pts, expected, atol=1e-4)
        assert crop.dtype == np.uint8 and crop.shape == (64, 64, 3)


def test_star_texture_draws_change_pixels_at_their_rates(faces):
    ds = FaceDataset(faces, 64, augment=True, seed=3, style="star")
    crop = ds.crop_at(0, geometry.box_of_points(faces[0].points))[0]
    changed = [not np.array_equal(ds._star_texture(crop), crop) for _ in range(400)]
    p_none = np.prod([1 - STAR_AUGMENTATION[k] for k in ("occlude", "blur", "gamma", "grey")])
    # a tiny blur kernel (under 2 px) changes nothing, so slightly fewer crops change than drawn
    assert 0.75 * (1 - p_none) < np.mean(changed) <= 1 - p_none + 0.08


def test_an_unknown_style_is_refused_plainly(faces):
    with pytest.raises(ValueError, match="augmentation style 'strong'"):
        FaceDataset(faces, 64, augment=True, style="strong")
