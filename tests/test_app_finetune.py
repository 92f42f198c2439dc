"""Model -> Fine-tune on corrected data, driven through the menu: a tiny run that finishes and
switches the model, a cancelled run that changes nothing."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402

import torch  # noqa: E402
from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import drr_studio._qt.finetune as ft  # noqa: E402
from drr_studio._qt.main_window import MainWindow  # noqa: E402
from model.checkpoint import save_checkpoint  # noqa: E402
from model.config import DRRConfig  # noqa: E402
from model.network import DRR  # noqa: E402
from model.predict import Predictor  # noqa: E402


def _tiny_checkpoint(path):
    torch.manual_seed(0)
    m = DRR(DRRConfig(input_size=64, num_candidates=4))
    m.set_shapes(torch.rand(4, 68, 2) * 30 + 17, torch.full((68, 2), 32.0), torch.full((68, 2), 8.0))
    save_checkpoint(path, m, {"note": "tiny test model"})
    return path


def annotated_folder(folder, sample_faces, copies: int):
    """Pictures with .pts (conftest.sample_faces, each `copies` times under other names)."""
    folder.mkdir()
    for c in range(copies):
        for f in sample_faces:
            shutil.copy(f, folder / f"{f.stem}_{c}.jpg")
            shutil.copy(f.with_suffix(".pts"), folder / f"{f.stem}_{c}.pts")
    return folder


def test_fine_tune_from_the_menu_then_cancel(qtbot, tmp_path, sample_faces, monkeypatch):
    folder = annotated_folder(tmp_path / "project", sample_faces, 2)
    before = {p.name: p.read_bytes() for p in folder.glob("*.pts")}
    start = _tiny_checkpoint(tmp_path / "start.pt")

    w = MainWindow([folder], settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                   factory=lambda c: Predictor.load(c, device="cpu"), checkpoint=start)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.predictor is not None and w.entry is not None, timeout=30000)
    assert w.predictor.path == start

    # the menu action opens the dialog; it counts the 6 annotated (corrected) faces
    seen = {}

    def fill_dialog():
        d = QApplication.activeModalWidget()
        d.epochs.setValue(2)
        d.held_out.setValue(34)
        seen["count"] = d.count.text()
        d.accept()

    switch_asked = []
    monkeypatch.setattr(ft, "ask_switch", lambda parent, result: switch_asked.append(result) or True)
    QTimer.singleShot(0, fill_dialog)
    w.fine_tune_action.trigger()
    assert seen["count"].startswith("6 faces: 4 to train on, 2 held out")
    tuner = w.fine_tuner
    qtbot.waitUntil(lambda: tuner.last_result is not None and not tuner.running, timeout=120000)
    result = tuner.last_result
    assert not result.cancelled and result.checkpoint is not None and result.checkpoint.exists()
    assert result.checkpoint.parent == folder / ft.MODELS_DIR
    assert result.old_error is not None and result.new_error is not None
    assert switch_asked == [result]
    qtbot.waitUntil(lambda: w.predictor.path == result.checkpoint, timeout=30000)
    assert result.checkpoint.stem in w.status_model.text()
    assert start.exists()  # the starting checkpoint is untouched
    qtbot.waitUntil(lambda: w.entry.predicted, timeout=30000)  # the new model ran on the image

    # a second run, cancelled: no new checkpoint, no leftovers, same active model; it trains in
    # a process of its own, so its thread count never reaches the app's
    tuner.last_result = None
    threads = torch.get_num_threads()
    worker = tuner.start(ft.FineTuneOptions(checkpoint=str(result.checkpoint), models_dir=str(folder / ft.MODELS_DIR),
                                            epochs=200, threads=1), ft.corrected_faces(w.document, {ft.Status.CORRECTED}))
    assert worker._process.pid not in (None, os.getpid())
    qtbot.waitUntil(lambda: tuner.progress is None or len(tuner.progress.losses) > 0, timeout=60000)
    tuner.cancel()
    qtbot.waitUntil(lambda: tuner.last_result is not None, timeout=60000)
    assert worker.isFinished() and tuner.last_result.cancelled
    assert sorted(p.name for p in (folder / ft.MODELS_DIR).iterdir()) == [result.checkpoint.name]
    assert w.predictor.path == result.checkpoint
    assert {p.name: p.read_bytes() for p in folder.glob("*.pts")} == before  # annotations intact
    assert torch.get_num_threads() == threads
    w.labeller.worker.stop()


def test_fine_tune_is_not_started_when_the_image_cannot_be_saved(qtbot, tmp_path, monkeypatch):
    from conftest_app import fake_factory, make_folder

    w = MainWindow([make_folder(tmp_path / "imgs", 1)], settings=QSettings(str(tmp_path / "s.ini"),
                   QSettings.Format.IniFormat), factory=fake_factory(None, None))
    qtbot.addWidget(w)
    problems = []
    monkeypatch.setattr(w.files, "autosave_current", lambda: False)
    monkeypatch.setattr(w, "show_problem", problems.append)
    started = []
    monkeypatch.setattr(ft.FineTuneWorker, "start", lambda self: started.append(self))
    tuner = w.fine_tuner
    assert tuner.start(ft.FineTuneOptions(checkpoint="x.pt", models_dir=str(tmp_path / "m")), []) is None
    assert problems and "not started" in problems[0] and not started
    w.labeller.worker.stop()


def test_fine_tune_dialog_warns_about_few_faces(qtbot, tmp_path, sample_faces):
    from drr_studio.document import Document

    folder = annotated_folder(tmp_path / "few", sample_faces, 2)
    for p in sorted(folder.glob("*.jpg"))[4:]:
        p.unlink()
    d = ft.FineTuneDialog(Document.from_paths([folder]), 68)
    qtbot.addWidget(d)
    assert d.count.text().startswith("4 faces")
    assert not d.warning.isHidden() and "only 3 faces to train on" in d.warning.text() and "1 held out" in d.warning.text()
    assert ft.few_faces_warning(40, 8) == ""
    assert "none held out" in ft.few_faces_warning(30, 0)
