"""End to end on real faces: a tiny model trained briefly gets better, checkpoints resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint
from model.data import FaceDataset, find_samples
from model.losses import drr_loss
from model.train import TrainOptions, build_model, pick_device, train, validate


def _faces(shared_data, n_train=48, n_val=12):
    samples, problems = find_samples([shared_data / "lfpw_train"], 68)
    assert not problems
    samples = samples[: n_train + n_val]
    return samples[:n_train], samples[n_train:]


def _fixed_batch_loss(model, faces):
    ds = FaceDataset(faces, 64)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.stack([ds[i][1] for i in range(len(ds))])
    model.eval()
    with torch.no_grad():
        return drr_loss(model(x), y, 64, 1.0, 20.0)[1]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_short_training_lowers_loss_and_error(shared_data, tmp_path, precision):
    """A few dozen steps on 32 real faces: the loss and the NME of the final shape fall on the
    faces it trains on (too short to generalise; the long run's held-out figures are in the
    README), and the checkpoint and log are complete; in fp32 and under bf16 autocast."""
    train_s, val_s = _faces(shared_data, 32, 8)
    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 8},
                        epochs=6, batch_size=8, lr=3e-3, regression_weight=20.0, seed=0, augment=False,
                        regressor_lr_mult=1.0, precision=precision)  # slow regressor rate: long runs
    torch.manual_seed(0)
    before_model, _ = build_model(opts, train_s)
    loss0 = _fixed_batch_loss(before_model, train_s[:16])
    nme0 = validate(before_model, FaceDataset(train_s, 64), pick_device("cpu"))["nme"]
    result = train(opts, train_s, val_s)
    assert not result.stopped and len(result.history) == 6
    model, blob = load_checkpoint(result.last_path)
    loss1 = _fixed_batch_loss(model, train_s[:16])
    nme1 = validate(model, FaceDataset(train_s, 64), pick_device("cpu"))["nme"]
    assert loss1["loss"] < loss0["loss"] and loss1["reg_last"] < 0.8 * loss0["reg_last"], (loss0, loss1)
    assert nme1 < 0.95 * nme0, (nme0, nme1)
    assert all(np.isfinite(h["val_nme"]) for h in result.history)
    assert blob["meta"]["train_faces"] == len(train_s) and model.cfg.input_size == 64
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 7))


def test_stop_flag_and_resume(shared_data, tmp_path):
    train_s, val_s = _faces(shared_data, 16, 4)
    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 4},
                        epochs=3, batch_size=8, seed=1)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # stop during the first epoch

    r1 = train(opts, train_s, val_s, should_stop=stop)
    assert r1.stopped and len(r1.history) == 1 and r1.best_path.exists()
    opts.resume = True
    r2 = train(opts, train_s, val_s)
    assert [h["epoch"] for h in r2.history] == [1, 2, 3]


def test_resume_takes_the_architecture_from_the_checkpoint(shared_data, tmp_path):
    """--resume without the run's architecture options (here another input size) continues the
    checkpoint's network with a warning, instead of failing with a size mismatch (bench.faults)."""
    train_s, val_s = _faces(shared_data, 8, 2)
    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 4},
                        epochs=1, batch_size=4, seed=1)
    train(opts, train_s, val_s)
    later = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 96, "num_candidates": 4},
                         epochs=2, batch_size=4, seed=1, resume=True)
    said: list[str] = []
    r = train(later, train_s, val_s, progress=lambda e: said.append(str(e.get("text", ""))))
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert load_checkpoint(r.last_path)[0].cfg.input_size == 64
    assert any("checkpoint's own architecture" in t for t in said)


def test_unknown_training_precision_is_refused(shared_data, tmp_path):
    train_s, val_s = _faces(shared_data, 8, 2)
    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 2},
                        epochs=1, precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        train(opts, train_s, val_s)


def test_loader_processes_draw_their_own_augmentations(shared_data, tmp_path):
    """--workers: each loader process must draw fresh augmentations. Copies of the
    dataset would share one random stream, so two processes cutting the same face would hand
    over identical "random" crops; and a run with workers trains like one without."""
    from model.train import _loader

    train_s, val_s = _faces(shared_data, 16, 4)
    same_face = FaceDataset([train_s[0]] * 8, 64, augment=True, seed=0)
    loader = _loader(same_face, TrainOptions(batch_size=4, workers=2), pick_device("cpu"))
    first, second = (x for x, _ in loader)  # worker 0's batch, then worker 1's
    assert not torch.equal(first, second)
    assert len({tuple(x.flatten()[:64].tolist()) for x in torch.cat([first, second])}) == 8

    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 4},
                        epochs=2, batch_size=4, workers=2, precision="fp32")
    result = train(opts, train_s, val_s)
    assert len(result.history) == 2 and all(np.isfinite(h["val_nme"]) for h in result.history)


def test_rotate_prob_sets_the_share_of_rotated_crops(shared_data, tmp_path):
    """--rotate-prob: 0 keeps every augmented crop upright (jitter and mirroring only), 1
    rotates nearly all (0 degrees is one of the 13 angles); outside [0, 1] is refused."""
    train_s, val_s = _faces(shared_data, 16, 4)

    def rotated(p: float) -> int:
        ds = FaceDataset(train_s, 64, augment=True, seed=1, rotate_prob=p)
        return sum(abs(ds.crop(i % len(ds))[2][0, 1]) > 1e-6 for i in range(64))

    assert rotated(0.0) == 0
    assert rotated(1.0) >= 48
    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 2},
                        epochs=1, rotate_prob=1.5)
    with pytest.raises(ValueError, match="rotate_prob"):
        train(opts, train_s, val_s)


def test_weight_average_follows_the_weights_and_restores_them():
    """--ema: the average moves towards the weights at (1 - decay) per update (faster while it
    is young), integer buffers are copied, and applied() swaps the average in and back out."""
    from model.ema import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, 0.9)
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked += 5
    for _ in range(200):
        avg.update(net)
    # young average: decay min(0.9, (1 + n) / (10 + n)); after 200 updates it has converged
    assert torch.allclose(avg.state["0.weight"], w0 + 1.0, atol=1e-6)
    assert int(avg.state["1.num_batches_tracked"]) == 5
    avg.state["0.weight"].fill_(7.0)
    with avg.applied(net):
        assert torch.all(net[0].weight == 7.0)
    assert torch.allclose(net[0].weight, w0 + 1.0)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


def test_balanced_sampling_draws_rare_shapes_more_often(shared_data, tmp_path):
    """--balance: a face alone in its candidate cluster weighs more than one of a crowded
    cluster, by (crowd size) ** balance; a run with balance and an average trains, validates
    both the average and the raw weights, and resumes."""
    from model.train import balance_weights

    train_s, val_s = _faces(shared_data, 16, 4)
    crowd = [train_s[0]] * 9  # nine copies of one face share its nearest candidate
    loner = train_s[1]
    shapes = np.stack([train_s[0].points, loner.points]).astype(np.float64)
    from model import geometry

    cands = np.stack([geometry.apply(geometry.crop_matrix(geometry.box_of_points(p), 64, 0.0, False), p)
                      for p in shapes])
    w = balance_weights(crowd + [loner], cands, 64, 0.5)
    assert w.sum() == pytest.approx(1.0)
    assert w[-1] / w[0] == pytest.approx(3.0)  # 9 ** 0.5

    opts = TrainOptions(out=str(tmp_path / "run"), overrides={"input_size": 64, "num_candidates": 4},
                        epochs=2, batch_size=8, seed=0, balance=0.5, ema=0.99, precision="fp32")
    r = train(opts, train_s, val_s)
    assert all(np.isfinite(h["val_nme"]) and np.isfinite(h["val_nme_raw"]) for h in r.history)
    blob = torch.load(r.last_path, weights_only=True)
    assert set(blob["raw_state"]) == set(blob["state_dict"])
    opts.epochs, opts.resume = 3, True
    assert [h["epoch"] for h in train(opts, train_s, val_s).history] == [1, 2, 3]
