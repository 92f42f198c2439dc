"""The desk without papercuts (issue 35): each behaviour an annotator met, under pytest-qt."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import test_app_window as window_tests  # noqa: E402
from conftest_app import make_folder  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from test_app_window import wait_predicted  # noqa: E402

open_window, questions = window_tests.open_window, window_tests.questions  # the window tests' fixtures


def test_without_a_display_the_app_says_so_and_exits_1():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    run = subprocess.run([sys.executable, "-c", "import sys; from drr_studio._qt.app import main; "
                          "sys.exit(main([]))"], env=env, capture_output=True, text=True, timeout=120)
    if not sys.platform.startswith("linux"):
        return
    assert run.returncode == 1, run.stderr
    assert "no display found" in run.stderr and "xcb" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def drag_point(qtbot, w, k: int, steps=(3, 6, 9)):
    """Press on point k of the first face and move right; returns the press position. The
    caller releases (release(w, at))."""
    x, y = w.entry.faces[0].points[k]
    vp = w.canvas.viewport()
    a = w.canvas.view_to_widget(x, y).toPoint()
    QTest.mouseMove(vp, a)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for dx in steps:
        QTest.mouseMove(vp, a + QPoint(dx, 0))
        qtbot.wait(5)
    return a + QPoint(steps[-1], 0)


def release(w, at) -> None:
    QTest.mouseRelease(w.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def test_the_magnifier_sits_in_a_corner_away_from_the_face_being_aligned(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    w.canvas.zoom_to(w.entry.faces[0].box)  # the face fills most of the view, as when aligning
    qtbot.wait(20)
    for k in (0, 16, 30, 48):  # jaw left and right, nose, mouth corner
        at = drag_point(qtbot, w, k)
        mag = w.canvas.magnifier
        assert mag.isVisible()
        rect = mag.geometry().adjusted(-4, -4, 4, 4)
        assert not rect.contains(at), k  # never under the cursor
        shown = w.canvas.points_on_widget(w.entry.faces[0].points)
        covered = [i for i, (x, y) in enumerate(shown) if rect.contains(QPoint(round(x), round(y)))]
        assert covered == [], (k, covered)  # nor over the face's points
        vp = w.canvas.viewport().rect()
        assert vp.contains(mag.geometry())  # inside the view, in a corner
        near = [abs(mag.x() - 8) < 2 or abs(mag.geometry().right() + 1 + 8 - vp.width()) < 2,
                abs(mag.y() - 8) < 2 or abs(mag.geometry().bottom() + 1 + 8 - vp.height()) < 2]
        assert all(near), mag.geometry()
        release(w, at)
        assert not mag.isVisible()


def test_the_magnifier_corner_is_the_free_one_farthest_from_the_cursor():
    import numpy as np

    from drr_studio._qt.magnifier import corner_for

    assert corner_for((800, 600), (50, 50), None) == (800 - 162 - 8, 600 - 162 - 8)
    assert corner_for((800, 600), (750, 550), None) == (8, 8)
    # the points fill the bottom right: the top right is the free corner opposite the cursor
    pts = np.array([[700.0, 500.0], [650.0, 480.0]])
    assert corner_for((800, 600), (60, 500), pts) == (800 - 162 - 8, 8)
    # it stays where it is while that corner covers nothing (no jumping during a drag)
    assert corner_for((800, 600), (400, 300), None, current=(8, 8)) == (8, 8)


def test_a_persons_points_are_drawn_larger_and_bolder_than_the_models(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    face.placed = {8, 30}
    w.canvas.refresh_face(0)
    spots = w.canvas._face_items[0].points.data
    placed, model = spots[8], spots[0]
    assert placed["symbol"] == "d" and model["symbol"] == "o"
    # a diamond of width d covers d*d/2, a dot pi*d*d/4: the diamond must cover more
    assert placed["size"] ** 2 / 2 > 1.2 * 3.1416 * model["size"] ** 2 / 4
    assert placed["pen"].widthF() > model["pen"].widthF() and placed["pen"].color().alpha() == 255
    assert placed["brush"].color().alpha() == 255


def test_research_overlays_start_off_on_each_launch(qtbot, open_window, tmp_path):
    folder = make_folder(tmp_path / "imgs", 1)
    w = open_window([folder])
    wait_predicted(qtbot, w)
    for name in ("Heatmaps", "Refinement", "Initialisation"):
        w.docks[name].show()
    w.refine_panel.enabled.setChecked(True)
    w.close()  # saves the layout with the research docks open
    again = open_window([folder])
    wait_predicted(qtbot, again)
    assert not any(again.docks[n].isVisible() for n in ("Heatmaps", "Refinement", "Initialisation"))
    assert not again.refine_panel.enabled.isChecked()
    assert again.docks["Images"].isVisible()
    assert again.canvas.hidden_face == -1 and not again.canvas.research.heat_item.isVisible()


def test_the_heatmap_is_clearly_visible_at_its_default_opacity(qtbot, open_window, tmp_path):
    import numpy as np

    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    w.canvas.zoom_to(w.entry.faces[0].box)
    w.docks["Heatmaps"].show()
    w.docks["Heatmaps"].raise_()
    w.heat_panel.show_box.setChecked(False)
    qtbot.wait(50)
    without = w.canvas.grab().toImage()
    w.heat_panel.show_box.setChecked(True)
    qtbot.waitUntil(lambda: w.canvas.research.heat_item.isVisible(), timeout=3000)
    qtbot.wait(50)
    with_heat = w.canvas.grab().toImage()

    def pixels(img):
        ptr = img.convertToFormat(img.Format.Format_RGB888)
        return np.array(ptr.constBits(), np.uint8)[: ptr.sizeInBytes()].reshape(ptr.height(), ptr.bytesPerLine())

    diff = np.abs(pixels(with_heat).astype(int) - pixels(without).astype(int))
    assert w.heat_panel.opacity.value() >= 80
    assert np.percentile(diff, 99.5) > 80  # around the points the picture is clearly coloured


def test_file_dialogs_remember_their_folder_per_purpose(qtbot, open_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    pictures = make_folder(tmp_path / "imgs", 1)
    ckpts, out = tmp_path / "ckpts", tmp_path / "out"
    ckpts.mkdir()
    out.mkdir()
    opened: list[tuple[str, str]] = []
    answers = {"Load checkpoint": str(ckpts / "mine.pt"), "Export training folder (image + .pts)": str(out),
               "Open folder": str(pictures)}

    def dialog(kind):
        def ask(parent, title, folder, *rest):
            opened.append((title, folder))
            answer = answers.get(title, "")
            return answer if kind == "dir" else (answer, "")
        return ask

    monkeypatch.setattr(QFileDialog, "getOpenFileName", dialog("file"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", dialog("dir"))
    w = open_window([pictures])
    wait_predicted(qtbot, w)
    monkeypatch.setattr(w.files, "run_export", lambda *a, **k: None)
    w.files.choose_checkpoint()
    assert opened[-1][1] != str(pictures)  # never the picture folder
    w.files.choose_checkpoint()
    assert opened[-1] == ("Load checkpoint", str(ckpts))  # where the last checkpoint came from
    w.files.export_training()
    assert opened[-1][1] == str(pictures.resolve())  # first export: beside the pictures
    w.files.export_training()
    assert opened[-1][1] == str(out)
    w.files.choose_folder()
    assert opened[-1][1] == str(pictures.resolve())
    w.files.choose_checkpoint()
    assert opened[-1][1] == str(ckpts)  # each purpose its own folder
    # and in a new session too (QSettings)
    again = open_window([pictures])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", dialog("file"))
    answers["Load checkpoint"] = ""
    again.files.choose_checkpoint()
    assert opened[-1][1] == str(ckpts)


def test_model_default_model_goes_back_to_the_shipped_model(qtbot, open_window, tmp_path, monkeypatch):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    loaded = []
    real = w.labeller.load_model
    monkeypatch.setattr(w.labeller, "load_model", lambda path: (loaded.append(path), real(path)))
    w.files.load_checkpoint(tmp_path / "other.pt")
    action = next(a for a in w.model_menu.actions() if a.text() == "Default model")
    action.trigger()
    assert loaded == [tmp_path / "other.pt", None]  # None: the shipped checkpoint
    qtbot.waitUntil(lambda: "loading" not in w.status_model.text(), timeout=5000)


def test_a_long_import_report_is_shown_whole(qtbot, open_window, tmp_path):
    import numpy as np
    from conftest_app import template68

    from model.formats import AnnotatedImage, FaceAnnotation, write_annotations

    folder = make_folder(tmp_path / "imgs", 1)
    names = ["img00.png"] + [f"a_rather_long_picture_name_from_elsewhere_{i:03d}.png" for i in range(12)]
    pts = template68() * 100 + 50
    images = [AnnotatedImage(folder / n, [FaceAnnotation(pts.copy())], (320, 240)) for n in names]
    coco = write_annotations(images, "coco", tmp_path / "out" / "coco.json")[0]
    w = open_window([folder])
    w.resize(1280, 820)  # the window's first size
    wait_predicted(qtbot, w)
    assert w.files.import_from(coco) == 1
    report = w.message_bar.label.text()
    assert w.message_bar.isVisible() and w.message_bar.label.wordWrap()
    assert all(n in report for n in names[1:]) and "12 picture(s) left alone" in report
    message = w.statusBar().currentMessage()
    room = w.statusBar().width() - sum(x.width() for x in (w.status_busy, w.status_pos, w.status_assist,
                                                               w.status_model) if x.isVisible())
    assert w.statusBar().fontMetrics().horizontalAdvance(message) < room, message  # not cut off
    assert np.isfinite(w.entry.faces[0].points).all()


def test_hover_text_goes_with_the_picture_it_named(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 2)])
    wait_predicted(qtbot, w)
    x, y = w.entry.faces[0].points[30]
    w.canvas._hover(w.canvas.vb.mapViewToScene(QPointF(x, y)))
    assert w.status_pos.text().startswith("face 1, point 31")
    w.go_to(1)
    assert w.status_pos.text() == ""


def test_the_image_list_shows_each_pictures_face_count(qtbot, open_window, tmp_path):
    from conftest_app import FakePredictor

    w = open_window([make_folder(tmp_path / "imgs", 2)], predictor=FakePredictor(faces=2))
    wait_predicted(qtbot, w)
    assert "2 faces   [predicted]" in w.image_panel.row_text(0)
    w.entry.faces.pop()
    w.image_panel.update_entry(0, w.entry)
    assert "1 face   [predicted]" in w.image_panel.row_text(0)


def test_updating_a_row_of_a_long_image_list_does_not_walk_the_list(qtbot):
    """10,000 pictures: each row update was O(n) (the count under the list read every row),
    10^8 reads while a folder opened; now O(1), and the counts stay right."""
    import time
    from pathlib import Path

    from drr_studio._qt.image_list import ImageListPanel
    from drr_studio.document import ImageEntry, Status

    panel = ImageListPanel()
    qtbot.addWidget(panel)
    entries = [ImageEntry(Path(f"/pictures/p{i:05d}.png")) for i in range(10_000)]
    panel.set_entries(entries)
    panel.filter.setCurrentText(Status.PENDING.value)
    start = time.perf_counter()
    for i, e in enumerate(entries):
        e.predicted = True  # no face found: a status of its own
        panel.update_entry(i, e)
    took = time.perf_counter() - start
    assert took < 5.0, took  # quadratic: minutes
    assert panel.count.text() == "0 of 10000 images"
    panel.filter.setCurrentText("all")
    assert panel.count.text() == "10000 of 10000 images"


def test_opening_10000_tiny_pictures_is_not_quadratic(qtbot, open_window, tmp_path):
    """Every picture is announced when the model loads (its predictions forgotten): each
    announcement used to walk all pictures twice (the list's count, the unsaved-edits check),
    100 s for 10,000 pictures; now about a second."""
    import time

    import cv2
    import numpy as np

    folder = tmp_path / "tiny"
    folder.mkdir()
    png = cv2.imencode(".png", np.full((8, 8, 3), 128, np.uint8))[1].tobytes()
    for i in range(10_000):
        (folder / f"p{i:05d}.png").write_bytes(png)
    start = time.perf_counter()
    w = open_window([folder])
    qtbot.waitUntil(lambda: w.predictor is not None and w.current == 0, timeout=60_000)
    w.session.touch_all()
    took = time.perf_counter() - start
    assert w.image_panel.count.text() == "10000 of 10000 images" and not w.session.dirty
    assert took < 20, took
    w.document.entries[5000].dirty = True
    w.session.touch(5000)
    assert w.session.dirty


def test_the_refinement_plot_is_in_percent_of_the_eye_distance(qtbot, open_window, tmp_path):
    import numpy as np

    from drr_studio.document import Status
    from model.layout import layout_for
    from model.metrics import normaliser

    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    face = w.entry.faces[0]
    face.points = face.result.points + [3.0, 4.0]  # a person moved every point 5 px
    face.status = Status.CORRECTED
    w.docks["Refinement"].show()
    w.canvas.set_active(0)
    w.research.update_overlays()
    eye = float(normaliser(face.points[None], layout_for(68))[0])
    err = w.refine_panel.err_curve.getData()[1]
    assert err[-1] == np.float64(err[-1]) and abs(err[-1] - 500.0 / eye) < 1e-6  # S_K is 5 px off
    assert [label.text for _, label in w.refine_panel.legend.items] == ["mean displacement (%)",
                                                                         "error to annotation (%)"]
    assert w.refine_panel.plot.getAxis("left").labelText == "% of the eye distance"
    w.refine_panel.slider.setValue(w.refine_panel.slider.maximum())
    assert w.refine_panel.label.text().endswith(f"error to annotation {500.0 / eye:.2f}% of the eye distance")
    w.refine_panel.slider.setValue(0)
    assert "S-hat" in w.refine_panel.label.text()  # Ŝ named in words: its hat is tiny at this size
    style = w.refine_panel.plot.getAxis("bottom").style  # the hat clear of the axis line, larger
    assert style["tickTextOffset"][1] >= 6 and style["tickFont"].pointSizeF() > w.refine_panel.font().pointSizeF()


def test_one_mirror_averaging_default_everywhere(qtbot, open_window, tmp_path, monkeypatch):
    import inspect

    from drr_studio._qt.prelabeller import PreLabeller
    from model.cli import predict as cli
    from model.options import MIRROR_AVERAGE
    from model.predict import CheckpointError, Predictor

    for fn in (Predictor.__init__, Predictor.load, PreLabeller.__init__):
        assert inspect.signature(fn).parameters["mirror_average"].default is MIRROR_AVERAGE, fn
    asked = []

    def load(checkpoint=None, device=None, mirror_average=MIRROR_AVERAGE, precision="auto"):
        asked.append(mirror_average)
        raise CheckpointError("stop here")

    monkeypatch.setattr(cli.Predictor, "load", load)
    assert cli.main(["x.png", "--out", str(tmp_path)]) == 2
    assert cli.main(["x.png", "--out", str(tmp_path), "--no-mirror-average"]) == 2
    assert asked == [MIRROR_AVERAGE, False]
    w = open_window([make_folder(tmp_path / "imgs", 1)])  # fresh settings
    wait_predicted(qtbot, w)
    assert w.mirror_action.isChecked() is MIRROR_AVERAGE and w.mirror_action.isEnabled()
    assert w.labeller.worker.mirror_average is MIRROR_AVERAGE


def test_the_mirror_menu_is_unticked_and_disabled_for_a_model_that_cannot_mirror(qtbot, open_window, tmp_path):
    from conftest_app import FakePredictor

    from model.layout import can_mirror, layout_for

    fake = FakePredictor()
    fake.layout = layout_for(7)  # no left/right order
    assert not can_mirror(fake.layout)
    w = open_window([make_folder(tmp_path / "imgs", 1)], predictor=fake)
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=5000)
    assert not w.mirror_action.isChecked() and not w.mirror_action.isEnabled()
    assert w.settings.value("model/mirror_average", None) in (None, True, "true")  # the choice is kept
    fit = FakePredictor()
    w.labeller.worker._factory = lambda c: fit
    w.files.load_checkpoint(tmp_path / "mirrors.pt")
    qtbot.waitUntil(lambda: w.predictor is fit, timeout=5000)
    assert w.mirror_action.isChecked() and w.mirror_action.isEnabled()


def test_the_fine_tune_time_estimate_leaves_out_the_start(qtbot):
    """A 400-epoch run (2 batches an epoch, 0.19 s a step) after 12 s of start-up: at epoch 3
    it said 29.1 min left; the pace since the first step says 2.5."""
    from drr_studio._qt.finetune import FineTuneProgress, minutes_left

    assert minutes_left(None, 5.0, 1, 800) is None and minutes_left((12.0, 1), 12.0, 1, 800) is None
    left = minutes_left((12.0, 1), 12.0 + 5 * 0.19, 6, 800)
    assert abs(left - 794 * 0.19 / 60) < 1e-9
    dialog = FineTuneProgress()
    qtbot.addWidget(dialog)
    dialog.update_progress({"event": "step", "epoch": 1, "epochs": 400, "batch": 1, "batches": 2, "loss": 1.0})
    assert "estimating" in dialog.label.text()
    dialog.first = (dialog.first[0] - 0.95, 1)  # five steps of 0.19 s since the first one
    dialog.update_progress({"event": "step", "epoch": 3, "epochs": 400, "batch": 2, "batches": 2, "loss": 0.9})
    assert "at most 2.5 min left" in dialog.label.text(), dialog.label.text()


def test_fine_tune_defaults_follow_the_number_of_faces():
    import math

    from model.finetune import TARGET_STEPS, suggested_schedule

    for faces in (5, 13, 40, 200, 2000):
        epochs, lr = suggested_schedule(faces, 8)
        steps = epochs * math.ceil(faces / 8)
        assert 20 <= epochs <= 300 and (steps >= TARGET_STEPS or epochs == 300), (faces, epochs)
        assert lr == 3e-4
    assert suggested_schedule(13)[0] > suggested_schedule(400)[0]


def test_early_stopping_stops_after_the_patience_and_passes_cancel_through():
    from model.finetune import EarlyStop

    seen, asked = [], [False]
    watch = EarlyStop(3, seen.append, lambda: asked[0])
    for epoch, err in enumerate([5.0, 4.0, 3.5, 3.6, 3.7], 1):
        watch.progress({"event": "epoch", "epoch": epoch, "val_nme": err})
        assert not watch.should_stop()
    watch.progress({"event": "epoch", "epoch": 6, "val_nme": 3.55})
    assert watch.should_stop() and watch.best_epoch == 3
    assert {"event": "early_stop", "epoch": 6, "best_epoch": 3} in seen
    never = EarlyStop(0, None, lambda: asked[0])
    for epoch in range(1, 30):
        never.progress({"event": "epoch", "epoch": epoch, "val_nme": 9.0})
    assert not never.should_stop()
    asked[0] = True
    assert never.should_stop()  # the user's Cancel


def test_the_held_out_split_does_not_change_when_the_folder_moves(qtbot, tmp_path, sample_faces):
    import shutil
    from pathlib import Path

    from test_app_finetune import annotated_folder

    from drr_studio._qt.finetune import FineTuneDialog, corrected_faces
    from drr_studio.document import Document, Status
    from model.finetune import split_held_out

    folder = annotated_folder(tmp_path / "here", sample_faces, 4)
    names = [s.name for s in corrected_faces(Document.from_paths([folder]), {Status.CORRECTED}, 68)]
    assert names and not any(n.startswith("/") or str(tmp_path) in n for n in names)
    (tmp_path / "elsewhere").mkdir()
    moved = Path(shutil.move(str(folder), str(tmp_path / "elsewhere" / "there")))
    again = corrected_faces(Document.from_paths([moved]), {Status.CORRECTED}, 68)
    assert [s.name for s in again] == names
    held = [s.name for s in split_held_out(again, 0.25)[1]]
    first = corrected_faces(Document.from_paths([moved]), {Status.CORRECTED}, 68)
    assert [s.name for s in split_held_out(first, 0.25)[1]] == held
    dialog = FineTuneDialog(Document.from_paths([moved]), 68)
    qtbot.addWidget(dialog)
    from model.finetune import suggested_schedule

    train = len(again) - round(0.1 * len(again))
    assert (dialog.epochs.value(), dialog.lr.value()) == suggested_schedule(train)
    assert dialog.early.isChecked() and dialog.options(tmp_path / "a.pt", tmp_path / "m").patience > 0


def test_a_fine_tune_with_early_stopping_keeps_its_best_epoch_and_scores_each_face(tmp_path, sample_faces):
    from test_app_finetune import _tiny_checkpoint, annotated_folder

    from drr_studio._qt.finetune import corrected_faces, per_face_lines
    from drr_studio.document import Document, Status
    from model.finetune import FineTuneOptions, fine_tune

    folder = annotated_folder(tmp_path / "p", sample_faces, 4)
    samples = corrected_faces(Document.from_paths([folder]), {Status.CORRECTED}, 68)
    opts = FineTuneOptions(checkpoint=str(_tiny_checkpoint(tmp_path / "start.pt")), models_dir=str(tmp_path / "m"),
                           held_out_fraction=0.25, epochs=4, patience=1, threads=1, device="cpu")
    events = []
    result = fine_tune(opts, samples, events.append)
    assert not result.cancelled and result.checkpoint is not None and result.best_epoch is not None
    held = [e for e in result.history if "val_nme" in e]
    assert min(held, key=lambda e: e["val_nme"])["epoch"] == result.best_epoch
    assert result.stopped_early == any(e.get("event") == "early_stop" for e in events)
    assert len(result.face_names) == len(result.old_face_errors) == len(result.new_face_errors) == result.held_out_faces
    assert abs(sum(result.new_face_errors) / len(result.new_face_errors) - result.new_error_pupil) < 1e-6
    lines = per_face_lines(result)
    assert all(name in lines for name in result.face_names) and "->" in lines


def test_menu_tips_quote_no_measured_figures(qtbot, open_window, tmp_path):
    """Figures go stale with every model; they belong in bench results and the docs."""
    import re

    w = open_window([make_folder(tmp_path / "imgs", 1)])
    tips = [a.statusTip() + a.toolTip() for a in w.findChildren(type(w.mirror_action))]
    assert tips and not [t for t in tips if re.search(r"\d+\.\d+ ?(%|->|→)", t)]


def test_the_status_bar_gives_a_dragged_point_where_it_is_now(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    w.canvas.zoom_to(w.entry.faces[0].box)
    qtbot.wait(20)
    at = drag_point(qtbot, w, 8, steps=(10, 20, 30))
    release(w, at)
    x, y = w.entry.faces[0].points[8]
    assert w.status_pos.text().startswith("face 1, point 9:")
    assert w.status_pos.text().endswith(f"({x:.1f}, {y:.1f})")  # not where the point was before the drag
    w.canvas._hover(w.canvas.vb.mapViewToScene(QPointF(x, y)))  # the mouse rests on it
    window_tests.key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo: the point goes back
    bx, by = w.entry.faces[0].points[8]
    assert (bx, by) != (x, y) and not w.status_pos.text().endswith(f"({x:.1f}, {y:.1f})")


def test_delete_says_what_it_did_after_the_autosave_and_ctrl_s_says_when_nothing_is_to_save(
        qtbot, open_window, tmp_path):
    from drr_studio.document import AUTOSAVE_MS

    w = open_window([make_folder(tmp_path / "imgs", 1)])
    wait_predicted(qtbot, w)
    QTest.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # only the model's points
    assert w.statusBar().currentMessage().startswith("Nothing to save on ")
    QTest.keyClick(w, Qt.Key.Key_Tab)
    QTest.keyClick(w, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: not w.entry.dirty, timeout=AUTOSAVE_MS + 3000)  # the autosave wrote the deletion
    assert w.statusBar().currentMessage().startswith("Face deleted")  # its hint still in view
    QTest.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # a deletion is a person's work
    assert w.statusBar().currentMessage().startswith("Saved ")


def test_fit_picture_takes_in_a_face_running_past_the_pictures_edge(qtbot):
    import numpy as np

    from drr_studio._qt.canvas import Canvas
    from drr_studio.document import Face, Status

    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(600, 400)
    points = np.stack([np.linspace(150, 250, 68), np.linspace(150, 330, 68)], 1)  # the chin 30 px below
    canvas.set_faces([Face(box=np.array([140.0, 140.0, 260.0, 320.0]), points=points, status=Status.PREDICTED)], None)
    canvas.set_image(np.zeros((300, 400, 3), np.uint8))
    (x0, x1), (y0, y1) = canvas.vb.viewRange()
    assert x0 <= -0.5 and x1 >= 399.5 and y0 <= -0.5  # the whole picture
    assert y1 >= 330  # and the face's lowest point


def test_a_new_picture_is_fitted_without_the_faces_of_the_one_left(qtbot, open_window, tmp_path):
    w = open_window([make_folder(tmp_path / "imgs", 2)])
    wait_predicted(qtbot, w)
    w.entry.faces[0].points[:, 1] += 5000  # a face of the first picture far below it (drawn, not saved)
    w.canvas.set_faces(w.entry.faces, w.layout)
    w.go_to(1)
    h = w.current_image().display.shape[0] * w.current_image().scale
    assert w.canvas.vb.viewRange()[1][1] < 1.2 * h  # the second picture alone
