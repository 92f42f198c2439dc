"""The app on the real model library (model.predict): FaceResult fields, heatmap overlay,
refinement steps, and the sample opening with points. Uses the shipped checkpoint when it
exists, else a randomly initialised network (same trace format, meaningless points)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

import model.predict as predict  # noqa: E402
from drr_studio._qt.app import SAMPLE  # noqa: E402
from drr_studio._qt.main_window import MainWindow  # noqa: E402


def _factory(checkpoint):
    if checkpoint is None and predict.DEFAULT_CHECKPOINT.exists():
        return predict.Predictor.load(None, device="cpu")
    if checkpoint is not None:
        return predict.Predictor.load(checkpoint, device="cpu")
    from model.config import DRRConfig
    from model.network import DRR

    return predict.Predictor(DRR(DRRConfig()), device="cpu")


@pytest.fixture
def window(qtbot, tmp_path):
    def make(paths):
        w = MainWindow(paths, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                       factory=_factory)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    made: list[MainWindow] = []
    yield make
    for w in made:
        w.labeller.worker.stop()


def test_sample_opens_with_points_and_trace(qtbot, window):
    w = window([SAMPLE])
    qtbot.waitUntil(lambda: w.entry is not None and w.entry.predicted, timeout=60000)
    assert w.entry.faces, "the detector should find the astronaut's face"
    face = w.entry.faces[0]
    r = face.result
    k = w.predictor.config.steps
    assert face.points.shape == (68, 2) and r.steps.shape == (k + 1, 68, 2)
    for name in ("Heatmaps", "Initialisation", "Refinement"):
        w.docks[name].show()
    w.canvas.set_active(0)
    w.refine_panel.slider.setValue(k + 1)
    assert f"S{k}" in w.refine_panel.label.text()
    # the heatmap's transform puts the argmax pixel of a map where s_hat says it is
    heat = np.asarray(r.heatmaps[30])
    v, u = np.unravel_index(int(heat.argmax()), heat.shape)
    scale = w.predictor.config.input_size / heat.shape[-1]
    w.heat_panel.choose_landmark(30)
    t = w.canvas.research.heat_item.transform()
    x, y = t.map(u + 0.5, v + 0.5)
    assert scale > 0 and np.allclose([x, y], r.s_hat[30], atol=1.0 * scale + 1e-6), (x, y, r.s_hat[30])


def test_annotated_real_faces_get_the_model_trace(qtbot, window, tmp_path, shared_data):
    names = sorted(p.stem for p in (shared_data / "afw").glob("*.pts"))[:2]
    paths = [shared_data / "afw" / f"{n}.jpg" for n in names]
    w = window(paths)
    qtbot.waitUntil(lambda: w.entry is not None and w.entry.predicted, timeout=60000)
    face = w.entry.faces[0]
    assert face.status.value == "corrected"  # a .pts on disk is a human annotation
    assert face.annotation is not None and face.result is not None
    np.testing.assert_array_equal(face.points, face.annotation)  # the model did not overwrite it
    w.docks["Refinement"].show()
    w.research.update_overlays()
    err = w.refine_panel.err_curve.getData()[1]
    assert err is not None and len(err) == w.predictor.config.steps + 2
    assert "error to annotation (%)" in [label.text for _, label in w.refine_panel.legend.items]
    assert not w.document.dirty_entries()  # nothing to write into the research data folder


def test_mirror_averaging_is_a_model_menu_switch(qtbot, window):
    w = window([SAMPLE])
    qtbot.waitUntil(lambda: w.entry is not None and w.entry.predicted, timeout=60000)
    assert w.mirror_action.isChecked() and w.predictor.mirror_average  # the default: better points
    assert "mirror-averaged" in w.status_model.text()
    assert ("bf16" in w.status_model.text()) == (w.predictor.precision == "bf16")
    averaged = w.entry.faces[0].points.copy()
    first = w.predictor
    w.mirror_action.trigger()  # off: the model is loaded again and the untouched face predicted again
    qtbot.waitUntil(lambda: w.predictor is not first and w.entry.predicted, timeout=60000)
    assert not w.predictor.mirror_average and "mirror-averaged" not in w.status_model.text()
    plain = w.entry.faces[0].points
    assert np.abs(plain - averaged).max() > 0.01
    np.testing.assert_allclose(plain, w.entry.faces[0].result.steps[-1])
    assert w.settings.value("model/mirror_average", type=bool) is False


def test_shipped_model_doubts_a_half_face_but_not_the_clear_faces(shared_data):
    """lfpw image_0601: dlib's HOG missed the annotated face and found a box around one eye;
    YuNet finds the face and also the second woman, half out of the frame on the right. The
    model's two mirror passes agree on the first and disagree on the half face, so the app
    draws that one as a face to check. The sample's clear face is not flagged."""
    from model.geometry import box_iou, box_of_points
    from model.images import read_image
    from model.pts import read_pts

    picture = shared_data / "lfpw_train" / "image_0601.jpg"
    p = predict.Predictor.load(None, device="cpu", mirror_average=True)
    found = p.inference(read_image(picture))
    assert len(found) == 2, [r.box for r in found]
    truth = box_of_points(read_pts(picture.with_suffix(".pts")))
    annotated, half = sorted(found, key=lambda r: -box_iou(r.box, truth))
    assert box_iou(annotated.box, truth) > 0.6 and not annotated.needs_review, annotated.uncertainty
    assert half.box[2] > 0.95 * 384 and half.needs_review, half.uncertainty
    clear = p.inference(read_image(SAMPLE))
    assert len(clear) == 1 and not clear[0].needs_review, clear[0].uncertainty


def test_every_app_path_gives_a_detector_face_the_same_points(qtbot, window):
    """The passes follow the box's source (model.predict's one policy), so a face YuNet found
    gets the same points at first, after Re-run, after a model switch, after the mirror toggle
    off and on again and after its trace is computed again for a panel."""
    w = window([SAMPLE])
    qtbot.waitUntil(lambda: w.entry is not None and w.entry.predicted, timeout=60000)
    face = w.entry.faces[0]
    assert face.source == "detector"
    first = face.points.copy()

    def again(action, changes_model=False):
        before = w.predictor
        action()
        qtbot.waitUntil(lambda: (w.predictor is not before or not changes_model) and w.entry.predicted
                        and face.result is not None, timeout=60000)
        np.testing.assert_allclose(face.points, first, atol=1e-3)

    again(w.editor.rerun_current)
    again(lambda: w.files.load_checkpoint(predict.DEFAULT_CHECKPOINT), changes_model=True)
    before = w.predictor
    w.mirror_action.trigger()  # off: other points; then on again
    qtbot.waitUntil(lambda: w.predictor is not before and w.entry.predicted and face.result is not None,
                    timeout=60000)
    assert not w.predictor.mirror_average
    w.mirror_action.trigger()
    qtbot.waitUntil(lambda: w.predictor.mirror_average and w.entry.predicted and face.result is not None,
                    timeout=60000)
    np.testing.assert_allclose(face.points, first, atol=1e-3)
    w.document.trim_traces(set())
    assert face.result.heatmaps is None
    w.labeller.refresh_trace(w.entry)
    qtbot.waitUntil(lambda: face.result is not None and face.result.heatmaps is not None, timeout=60000)
    np.testing.assert_allclose(face.result.points, first, atol=1e-3)


def test_the_fake_and_the_real_predictor_share_one_protocol():
    import inspect

    from conftest_app import FakePredictor

    from model.predict import LandmarkPredictor, Predictor

    real = predict.Predictor.load(None, device="cpu")
    assert isinstance(real, LandmarkPredictor) and isinstance(FakePredictor(), LandmarkPredictor)
    want = list(inspect.signature(LandmarkPredictor.inference).parameters)
    for cls in (Predictor, FakePredictor):
        assert list(inspect.signature(cls.inference).parameters) == want, cls
