"""The command-line tools as a user runs them: good folders, bad files, boxes files, checkpoints."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.cli.evaluate import main as eval_main
from model.cli.predict import main as predict_main
from model.config import DRRConfig
from model.network import DRR
from model.predict import Predictor
from model.pts import read_pts


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = DRR(DRRConfig(input_size=64, num_candidates=5))
    model.set_shapes(torch.rand(5, 68, 2) * 30 + 17, torch.full((68, 2), 32.0), torch.full((68, 2), 8.0))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, {"note": "random weights"})
    return path


@pytest.fixture()
def folder(tmp_path, sample_faces):
    """Three faces with their .pts (conftest.sample_faces), in a folder the tools never saw."""
    src = sample_faces
    d = tmp_path / "pictures"
    d.mkdir()
    for f in src:
        shutil.copy(f, d / f.name)
        shutil.copy(f.with_suffix(".pts"), d / f.with_suffix(".pts").name)
    return d, [f.name for f in src]


def test_predict_with_boxes_file_writes_one_pts_per_face(folder, tiny_checkpoint, tmp_path, capsys):
    d, names = folder
    boxes = {n: [100, 100, 280, 290] for n in names}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "out"
    rc = predict_main([str(d), "--out", str(out), "--boxes", str(tmp_path / "boxes.json"),
                       "--checkpoint", str(tiny_checkpoint), "--trace", "--draw"])
    assert rc == 0
    for n in names:
        pts = read_pts(out / n.replace(".jpg", ".pts"), expected_points=68)
        assert np.isfinite(pts).all()
        trace = np.load(out / n.replace(".jpg", ".trace.npz"))
        assert trace["steps"].shape == (9, 68, 2) and np.allclose(trace["steps"][-1], pts, atol=1e-3)
        assert trace["heatmaps"].shape == (68, 64, 64)
        # the drawing is the picture with the points on it: same size, changed at the points
        from model.images import read_image

        drawn, original = read_image(out / n.replace(".jpg", ".drawn.png")), read_image(d / n)
        assert drawn.shape == original.shape
        x, y = np.round(pts[30]).astype(int)
        assert np.abs(drawn[y, x].astype(int) - original[y, x].astype(int)).sum() > 30


def test_predict_without_boxes_uses_the_detector_and_reports_bad_files(folder, tiny_checkpoint, tmp_path, capsys):
    d, names = folder
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("not a picture")
    good = (d / names[0]).read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (d / "blank.png").write_bytes((d / names[0]).read_bytes()[:0] or b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "out"
    rc = predict_main([str(d), "--out", str(out), "--checkpoint", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert rc == 1  # problems were reported, the rest was done
    assert "empty.jpg: the file is empty" in err
    assert "text.png: not a readable image" in err
    assert "blank.png" in err
    assert "Traceback" not in err
    written = sorted(p.name for p in out.glob("*.pts"))
    assert len(written) >= 3  # the three real faces (the detector finds them in these crops)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_predict_refuses_bad_checkpoints(folder, tmp_path, capsys, tiny_checkpoint):
    d, _ = folder
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    assert predict_main([str(d), "--out", str(tmp_path / "o"), "--checkpoint", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "junk.pt: not a DRR Studio checkpoint" in err and len(err.strip().splitlines()) == 1
    # same format, other architecture: a one-line error naming the file
    blob = torch.load(tiny_checkpoint, weights_only=True)
    blob["config"]["width"] = 0.25
    other = tmp_path / "other.pt"
    torch.save(blob, other)
    with pytest.raises(CheckpointError, match="other.pt: weights do not match"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Predictor.load(tmp_path / "missing.pt")


def test_eval_reports_every_step_and_writes_json_and_ced(folder, tiny_checkpoint, tmp_path, capsys):
    d, names = folder
    (d / "broken.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    shutil.copy(d / names[0], d / "broken.jpg")
    rc = eval_main([str(d), "--checkpoint", str(tiny_checkpoint), "--json", str(tmp_path / "e.json"),
                    "--ced", str(tmp_path / "ced")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "broken.pts" in captured.err  # the bad annotation is named and skipped
    summary = json.loads((tmp_path / "e.json").read_text())
    assert summary["faces"] == 3
    steps = summary["inter-pupil"]["steps"]
    assert list(steps) == ["S_hat"] + [f"S{k}" for k in range(9)]
    assert all(np.isfinite(v) for v in steps.values())
    assert summary["inter-ocular"]["nme"] < summary["inter-pupil"]["nme"]  # D_ocular > D_pupil
    assert (tmp_path / "ced.png").stat().st_size > 1000
    assert "| S8 |" in captured.out


def test_eval_on_empty_folder_is_a_clear_error(tmp_path, tiny_checkpoint, capsys):
    (tmp_path / "nothing").mkdir()
    assert eval_main([str(tmp_path / "nothing"), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "no annotated pictures" in capsys.readouterr().err


def test_train_command_exports_a_small_fp16_file(folder, tmp_path, capsys):
    from model.checkpoint import read_checkpoint
    from model.cli.train import main as train_main

    d, _ = folder
    ship = tmp_path / "ship" / "model.pt"
    ship.parent.mkdir()
    rc = train_main(["--data", str(d), "--out", str(tmp_path / "run"), "--input-size", "64", "--candidates", "2",
                     "--epochs", "1", "--batch-size", "2", "--export", str(ship)])
    assert rc == 0, capsys.readouterr().err
    blob = read_checkpoint(ship)
    assert blob["meta"]["weights"] == "fp16" and "optimizer" not in blob
    assert ship.stat().st_size < (tmp_path / "run" / "last.pt").stat().st_size
    model, _ = load_checkpoint(ship)
    assert model.cfg.heatmap_stride == 2 and model.cfg.input_size == 64


def test_every_training_option_is_one_flag_made_from_its_dataclass_field():
    """TrainOptions and DRRConfig are the one definition: drr-train has a flag per field with a
    help text, and a given flag reaches the field unchanged."""
    from dataclasses import fields

    from model.cli.train import ARCH_PREFIX, parser
    from model.config import DRRConfig
    from model.options import given
    from model.train import TrainOptions

    ap = parser()
    dests = {a.dest for a in ap._actions}
    train_fields = [f.name for f in fields(TrainOptions) if "help" in f.metadata]
    arch_fields = [f.name for f in fields(DRRConfig) if "help" in f.metadata]
    assert set(train_fields) <= dests and {ARCH_PREFIX + n for n in arch_fields} <= dests
    assert {"ema", "balance", "threads", "precision", "roll_jitter", "occlude_prob"} <= set(train_fields)
    a = ap.parse_args(["--ema", "0.99", "--no-augment", "--lr", "0.002", "--dilations", "1", "2", "4",
                       "--level-eyes", "--candidates", "7", "--initial-shape", "mean"])
    opts = TrainOptions(**given(a, train_fields), overrides=given(a, arch_fields, ARCH_PREFIX))
    assert opts.ema == 0.99 and opts.augment is False and opts.lr == 0.002 and opts.epochs == TrainOptions.epochs
    assert opts.overrides == {"dilations": (1, 2, 4), "level_eyes": True, "num_candidates": 7, "init": "mean"}
    DRRConfig(**opts.overrides)  # a valid architecture


def test_fine_tune_honours_or_refuses_every_flag(monkeypatch, folder, tmp_path, capsys):
    import model.cli.train as cli

    seen = {}

    def fake_fine_tune(opts, samples, progress=None):
        seen["opts"] = opts
        raise ValueError("stopped by the test")

    monkeypatch.setattr(cli, "fine_tune", fake_fine_tune)
    d, _ = folder
    base = ["--init", "x.pt", "--data", str(d), "--out", str(tmp_path / "m")]
    assert cli.main(base + ["--threads", "1", "--ema", "0.9", "--balance", "0.5", "--precision", "bf16",
                            "--epochs", "3"]) == 2
    o = seen["opts"]
    assert (o.threads, o.ema, o.balance, o.precision, o.epochs) == (1, 0.9, 0.5, "bf16", 3)
    assert o.checkpoint == "x.pt" and o.models_dir == str(tmp_path / "m") and o.lr == 3e-4  # fine-tune default
    for refused in (["--width", "0.2"], ["--regression-weight", "5"], ["--rotate-prob", "0.5"], ["--resume"],
                    ["--level-eyes"], ["--export", "a.pt"]):
        seen.clear()
        assert cli.main(base + refused) == 2
        assert "cannot be used with --init" in capsys.readouterr().err and not seen


def test_eval_qa_writes_a_ranking(folder, tiny_checkpoint, tmp_path, capsys):
    import csv

    d, names = folder
    out = tmp_path / "qa.csv"
    assert eval_main([str(d), "--checkpoint", str(tiny_checkpoint), "--qa", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0][:3] == ["rank", "face", "score"] and len(rows) == 1 + len(names)
    assert [float(r[2]) for r in rows[1:]] == sorted((float(r[2]) for r in rows[1:]), reverse=True)
    assert rows[1][5] != ""  # the mirror gap is there: --qa averages the mirrored pass
    assert "most suspicious" in capsys.readouterr().out


def test_train_from_scratch_on_few_faces_adapts_the_candidates(folder, tmp_path, capsys):
    """Three faces (translations of one face) cannot make 50 k-means candidates: drr-train says
    so in one line and trains with as many as there are distinct shapes."""
    import re

    from model.cli.train import main as train_main

    d, _ = folder
    rc = train_main(["--data", str(d), "--out", str(tmp_path / "run"), "--input-size", "64", "--epochs", "1",
                     "--batch-size", "2", "--val-fraction", "0"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    said = re.search(r"drr-train: (\d) distinct training shapes for 50 candidate shapes", captured.out)
    assert said and "Traceback" not in captured.err, captured.out
    model, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    assert model.cfg.num_candidates == int(said.group(1)) <= 3
