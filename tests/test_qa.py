"""Annotation QA: the face with a human mistake ranks first, with the point named; the model's
own doubt discounts a disagreement; drr-eval --qa writes the ranking; the corruptions of
bench.qa do what they say."""

from __future__ import annotations

import csv

import numpy as np

from bench.qa import corrupt, roc_auc
from model.layout import layout_for
from model.metrics import normaliser
from model.qa import point_scores, rank_faces, write_qa_csv

IBUG68 = layout_for(68)


def _faces(n=6, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 120, (68, 2))
    base[IBUG68.right_eye, 0], base[IBUG68.left_eye, 0] = 40.0, 100.0  # eyes 60 px apart
    base[list(IBUG68.right_eye) + list(IBUG68.left_eye), 1] = 50.0
    truth = np.stack([base + rng.normal(0, 0.5, base.shape) for _ in range(n)])
    pred = truth + rng.normal(0, 1.0, truth.shape)  # a model about 2% off everywhere
    return truth, pred


def test_the_face_with_a_mistake_ranks_first_and_names_the_point(tmp_path):
    truth, pred = _faces()
    annotated = truth.copy()
    annotated[3, 8] += [18.0, 0.0]  # the chin point 30% of the eye distance off
    ranked = rank_faces([f"f{i}" for i in range(6)], pred, annotated, IBUG68)
    assert ranked[0].name == "f3" and int(np.argmax(ranked[0].points)) == 8
    assert ranked[0].score > 20 and ranked[1].score < 10
    write_qa_csv(tmp_path / "qa.csv", ranked, IBUG68)
    rows = list(csv.reader((tmp_path / "qa.csv").open()))
    assert rows[1][1] == "f3" and rows[1][3] == "9" and rows[1][4] == "jaw 9" and "9:" in rows[1][6]


def test_the_models_doubt_discounts_a_disagreement():
    truth, pred = _faces(1)
    annotated = truth[0].copy()
    annotated[30] += [10.0, 0.0]
    sure, dist = point_scores(pred[0], annotated, IBUG68, mirror_gap=0.0)
    unsure, dist2 = point_scores(pred[0], annotated, IBUG68, mirror_gap=10.0)
    assert np.allclose(dist, dist2) and unsure[30] < 0.5 * sure[30]


def test_corruptions_are_what_they_say():
    truth, _ = _faces(40)
    bad, what = corrupt(truth, 0.5, np.random.default_rng(1))
    assert 10 <= len(what) <= 30 and set(what.values()) <= {"swap", "shift", "part"}
    iod = normaliser(truth, IBUG68)
    for i in range(len(truth)):
        moved = np.linalg.norm(bad[i] - truth[i], axis=-1) / iod[i]
        if i not in what:
            assert moved.max() == 0
        elif what[i] == "shift":
            assert (moved > 0).sum() == 1 and 0.15 <= moved.max() <= 0.30 + 1e-9
        elif what[i] == "part":
            assert (moved > 0).sum() >= 3 and np.allclose(moved[moved > 0], moved[moved > 0][0])
    assert roc_auc(np.array([3.0, 2.0, 1.0]), np.array([True, False, False])) == 1.0


def test_ranking_all_faces_at_once_scores_each_face_as_point_scores_does():
    truth, pred = _faces(7)
    gaps = [None, 0.0, 2.5, 10.0, None, 1.0, 4.0]
    ranked = rank_faces([str(i) for i in range(7)], pred, truth, IBUG68, gaps, per_point=False)
    for qa in ranked:
        i = int(qa.name)
        score, dist = point_scores(pred[i], truth[i], IBUG68, gaps[i])
        assert np.allclose(qa.points, score) and np.allclose(qa.distance, dist)
