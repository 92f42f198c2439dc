"""Training and fine-tuning. `train()` is the one code path: the drr-train command and the
app's fine-tune dialog both call it, with a progress callback and a stop flag."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import distributed, geometry
from .candidates import kmeans
from .checkpoint import load_checkpoint, model_from_blob, read_checkpoint, save_checkpoint
from .config import PRESETS, DRRConfig
from .data import AUGMENTATIONS, FaceDataset, Sample
from .ema import WeightAverage
from .inference import PRECISIONS, native_bf16
from .layout import can_mirror, layout_for
from .losses import REGRESSION_LOSSES, drr_loss
from .metrics import nme
from .network import DRR
from .options import option


@dataclass
class TrainOptions:
    """Every training option, with its command-line help: drr-train's flags are made from these
    fields (model/options.py), and FineTuneOptions inherits them."""

    out: str = option("runs/default", "folder for best.pt, last.pt and log.jsonl")
    preset: str = option("default", "architecture preset (model.config.PRESETS)", choices=tuple(sorted(PRESETS)))
    overrides: dict = field(default_factory=dict)  # DRRConfig fields over the preset (drr-train's architecture flags)
    init: str | None = option(None, "fine-tune from this checkpoint (its architecture and objective are kept)")
    resume: bool = option(False, "continue OUT/last.pt")
    epochs: int = option(30, "epochs (with --max-minutes, whichever ends first)")
    max_minutes: float = option(0.0, "time budget in minutes; the learning-rate schedule fits it (0: none)")
    batch_size: int = option(16, "faces per step")
    lr: float = option(1e-3, "peak learning rate (AdamW, cosine schedule)")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    heatmap_weight: float = option(1.0, "weight of conv8's cross-entropy")
    regression_weight: float = option(20.0, "weight of the K steps' regression losses")
    regression_loss: str = option("l2", "l2: squared error per step (paper); distance: Euclidean distance per "
                                  "point (what NME measures; use a regression weight near 1)", choices=REGRESSION_LOSSES)
    # Adam moves every weight by ~lr per step even when its gradient is pure noise. The K
    # regressors see ~1000 inputs each and the later steps have little signal, so at the full
    # rate their weights random-walk and each late step added ~2 px of noise (S3 best, S8 worse
    # on training faces too). A lower rate for the regressors keeps that walk small.
    regressor_lr_mult: float = option(0.1, "learning-rate factor of the per-step regressors")
    train_layers: str = option("all", "all, or refiner (refiner + conv8 head; backbone frozen)",
                               choices=("all", "refiner"))
    # keep BatchNorm statistics as they are: with a handful of faces (fine-tuning) batch
    # statistics of 8 faces would overwrite what was learned from thousands
    freeze_batchnorm: bool = option(False, "keep the BatchNorm statistics as they are")
    augment: bool = option(True, "no augmentation (crops from the annotation box as at test time)", flag="--no-augment")
    rotate_prob: float = option(0.7, "share of training crops rotated by 5-30 degrees (data.ROTATIONS)")
    # eye-levelled models (DRRConfig.level_eyes): Gaussian roll residual, degrees. On the shared
    # crops the detector's eye line is within ~2 degrees of the annotation's at the median and
    # ~7 at the 90th percentile; a first pass's eye line is closer.
    roll_jitter: float = option(4.0, "with --level-eyes: Gaussian residual roll of training crops, degrees")
    occlude_prob: float = option(0.0, "share of training crops with an occluding box of noise or flat colour")
    blur_prob: float = option(0.0, "share of training crops blurred (Gaussian or motion)")
    augmentation: str = option("drr", "drr: the draws above; star: STAR's (flip, Gaussian roll 18 deg, scale 0.1, "
                               "shift 0.05, occlusion 0.4, blur 0.3, gamma 0.2, grey 0.2; data.STAR_AUGMENTATION), "
                               "which replaces them", choices=AUGMENTATIONS)
    # Rare head poses are where the shipped model fails (turned faces drawn nearer to frontal).
    # balance > 0 draws each epoch's faces with replacement, a face's chance proportional to
    # (faces in its nearest candidate shape's cluster) ** -balance: 0 = plain shuffling.
    balance: float = option(0.0, "draw faces of rare head poses more often: weight (faces in the same candidate "
                            "cluster) ** -BALANCE (0: plain shuffling)")
    # decay of an exponential moving average of the weights (0 = off); with it on, the
    # checkpoints' weights (what is validated, exported and shipped) are the average
    ema: float = option(0.0, "decay of a moving average of the weights, e.g. 0.999; the average is what is "
                        "validated and saved (0: off)")
    seed: int = option(0, "random seed")
    device: str = option("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    threads: int = option(0, "CPU threads for torch (0: torch's default)")
    # bf16 autocast: "auto" uses it on CUDA and on CPUs with native bf16 (1.3x faster training
    # steps on an AVX512-BF16 machine; emulated bf16 was slower than fp32)
    precision: str = option("auto", "bf16 autocast; auto: on CUDA and on CPUs with native bf16", choices=PRECISIONS)
    # background processes cutting and augmenting crops; 0 = in the training loop (the CPU
    # recipe: its two cores are busy with the model). A GPU waits on one Python loop.
    workers: int = option(0, "processes preparing augmented crops (0: in the training loop; several on a GPU)")


@dataclass
class TrainResult:
    best_path: Path
    last_path: Path
    history: list[dict]
    stopped: bool
    model: DRR | None = None  # the trained network as it ended (raw weights, not the average)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def reference_shapes(samples: list[Sample], size: int, level_eyes: bool = False) -> np.ndarray:
    """Training shapes in crop pixels under the test-time box protocol (plus their mirror
    images when the layout can mirror), for k-means and the mean shape. For an eye-levelled
    model the shapes are levelled too, so the candidates differ by head pose, not by roll."""
    layout = layout_for(len(samples[0].points))
    shapes = []
    for s in samples:
        angle = geometry.eye_angle(*layout.eye_centres(s.points)) if level_eyes else 0.0
        box = geometry.levelled_box(s.points, angle) if level_eyes else geometry.box_of_points(s.points)
        for flip in (False, True) if can_mirror(layout) else (False,):
            m = geometry.crop_matrix(box, size, angle, flip)
            p = geometry.apply(m, s.points)
            shapes.append(p[layout.mirror_array()] if flip else p)
    return np.stack(shapes)


def _run_crops(model: DRR, crops: list[np.ndarray], device: torch.device) -> np.ndarray:
    """(n, K + 2, p, 2): S_hat, S^0 .. S^K in crop pixels."""
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().to(device)
    t = model(x)
    return torch.cat([t.s_hat[:, None], t.shapes], 1).float().cpu().numpy()


@torch.no_grad()
def validate(model: DRR, data: FaceDataset, device: torch.device, batch_size: int = 32) -> dict:
    """Inter-pupil NME (%) of S_hat, S^0 .. S^K on crops cut with the ground-truth box. An
    eye-levelled model is validated as Predictor.inference runs it on a given box: a first pass
    on the upright crop gives the eye line, the second pass on the same box rotated by it is
    scored."""
    model.eval()
    preds, gts = [], []
    for i in range(0, len(data), batch_size):
        idx = range(i, min(i + batch_size, len(data)))
        items = [data.crop_at(j, geometry.box_of_points(data.samples[j].points)) for j in idx]
        pred = _run_crops(model, [c for c, _, _ in items], device)
        if model.cfg.level_eyes:
            layout = layout_for(model.cfg.num_points)
            items2 = []
            for j, (_, _, m), p in zip(idx, items, pred):
                first = geometry.apply(geometry.invert(m), p[-1])
                angle = geometry.eye_angle(*layout.eye_centres(first))
                items2.append((geometry.box_of_points(data.samples[j].points), angle))
            items = [data.crop_at(j, b, a) for j, (b, a) in zip(idx, items2)]
            pred = _run_crops(model, [c for c, _, _ in items], device)
        preds.append(pred)
        gts.append(np.stack([g for _, g, _ in items]))
    pred, gt = np.concatenate(preds), np.concatenate(gts)
    layout = layout_for(gt.shape[1])
    per_step = [float(nme(pred[:, k], gt, layout).mean() * 100) for k in range(pred.shape[1])]
    names = ["s_hat"] + [f"S{k}" for k in range(pred.shape[1] - 1)]
    return {"nme_steps": dict(zip(names, per_step)), "nme": per_step[-1]}


def build_model(opts: TrainOptions, train: list[Sample],
                warn: Callable[[str], None] | None = None) -> tuple[DRR, dict]:
    """The network to train: the --init checkpoint's, or a new one whose candidate shapes are
    k-means centres of the training shapes. With fewer distinct training shapes than candidates
    (a first try on 20 faces), N becomes that number, and warn() says so."""
    if opts.init:
        model, blob = load_checkpoint(opts.init)
        if train and len(train[0].points) != model.cfg.num_points:
            raise ValueError(f"{opts.init}: model has {model.cfg.num_points} points, data has {len(train[0].points)}")
        return model, blob.get("meta", {})
    if opts.preset not in PRESETS:
        raise ValueError(f"unknown preset {opts.preset!r}; choose from {', '.join(PRESETS)}")
    cfg = DRRConfig(**{**PRESETS[opts.preset], "num_points": len(train[0].points), **opts.overrides})
    shapes = reference_shapes(train, cfg.input_size, cfg.level_eyes)
    distinct = len(np.unique(shapes.reshape(len(shapes), -1).round(3), axis=0))
    if distinct < cfg.num_candidates:
        if warn:
            warn(f"{distinct} distinct training shapes for {cfg.num_candidates} candidate shapes: "
                 f"training with N = {distinct} candidates (more faces give the paper's N = 50)")
        cfg = DRRConfig(**{**cfg.to_dict(), "num_candidates": distinct})
    model = DRR(cfg)
    model.set_shapes(torch.from_numpy(kmeans(shapes, cfg.num_candidates, seed=opts.seed)).float(),
                     torch.from_numpy(shapes.mean(0)).float(), torch.from_numpy(shapes.std(0)).float())
    return model, {}


def _seed_worker(worker_id: int) -> None:
    """Each loader process draws its own augmentations (each holds a copy of the dataset, which would
    otherwise repeat its parent's random stream) and warps with one OpenCV thread."""
    import cv2

    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed % 2**32)
    cv2.setNumThreads(1)


def _loader(data: FaceDataset, opts: TrainOptions, device: torch.device, weights: np.ndarray | None = None,
            rank: int = 0, world: int = 1) -> torch.utils.data.DataLoader | None:
    if opts.workers <= 0 or len(data) < opts.batch_size * world:
        return None
    sampler = None
    if world > 1:  # each rank its share of a per-epoch order (set_epoch), the same seed on all
        sampler = torch.utils.data.DistributedSampler(data, world, rank, shuffle=True, seed=opts.seed, drop_last=True)
    elif weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.from_numpy(weights), len(data), generator=torch.Generator().manual_seed(opts.seed))
    return torch.utils.data.DataLoader(
        data, batch_size=opts.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True,
        num_workers=opts.workers,
        persistent_workers=True, worker_init_fn=_seed_worker, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(opts.seed),
        # fresh processes: a forked child of a parent whose OpenCV or OpenMP thread pools have
        # run can deadlock on its first parallel call (seen here in cv2.setNumThreads)
        multiprocessing_context="spawn")


def balance_weights(samples: list[Sample], candidates: np.ndarray, size: int, power: float) -> np.ndarray:
    """Sampling weight of each training face: (faces sharing its nearest candidate shape) **
    -power, normalised to sum to 1. Shapes are compared in the crop of their annotation box."""
    shapes = np.stack([geometry.apply(geometry.crop_matrix(geometry.box_of_points(s.points), size, 0.0, False),
                                      s.points) for s in samples])
    dist = np.linalg.norm(shapes[:, None] - candidates[None], axis=-1).mean(-1)  # (faces, candidates)
    nearest = dist.argmin(1)
    counts = np.bincount(nearest, minlength=len(candidates))
    w = counts[nearest].astype(np.float64) ** -power
    return w / w.sum()


def _batches(data: FaceDataset, batch_size: int, count: int, weights: np.ndarray | None = None,
             epoch: int = 0, seed: int = 0, rank: int = 0, world: int = 1):
    """One epoch of shuffled batches cut in this process (the CPU recipe, workers=0); with
    weights, faces are drawn with replacement in proportion to them. The order depends on the
    seed and the epoch only, so every rank of a distributed run draws the same global batches
    of world x batch_size faces and takes its own slice of each."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    step = batch_size * world
    if weights is None:
        order = torch.randperm(len(data), generator=g).tolist()
    else:
        order = torch.multinomial(torch.from_numpy(weights), step * count, replacement=True, generator=g).tolist()
    for b in range(count):
        mine = order[b * step + rank * batch_size : b * step + (rank + 1) * batch_size]
        items = [data[i] for i in mine]
        yield torch.stack([a for a, _ in items]), torch.stack([t for _, t in items])


def _lr_factor(frac: float, it: int, warmup: int = 100) -> float:
    return min(1.0, (it + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))


def train(opts: TrainOptions, train_samples: list[Sample], val_samples: list[Sample],
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train (or fine-tune) and write out/best.pt (best validation NME) and out/last.pt
    (resumable). progress receives dicts with 'event' in {'setup', 'warning', 'step', 'epoch'};
    should_stop() returning True ends the run cleanly after the current batch (checkpoints stay
    valid). The work is a Trainer's: setup, then per epoch its steps, validation and checkpoint."""
    t = Trainer(opts, train_samples, val_samples, progress, should_stop)
    for epoch in range(t.start_epoch, opts.epochs):
        t.run_epoch(epoch)
        if t.rank == 0:  # validation, checkpoints and the log are rank 0's
            t.end_epoch(epoch)
        distributed.barrier(t.world)
        if t.stopped or t.out_of_time():
            break
    return t.finish()


class Trainer:
    """One training run's state and its parts: __init__ sets up (device, processes, network,
    optimizer, weight average, resume, data), run_epoch takes the steps, end_epoch validates,
    logs and writes the checkpoints, finish closes the run."""

    def __init__(self, opts: TrainOptions, train_samples: list[Sample], val_samples: list[Sample],
                 progress: Callable[[dict], None] | None, should_stop: Callable[[], bool] | None) -> None:
        _check(opts, train_samples)
        self.opts, self.progress, self.should_stop = opts, progress, should_stop
        torch.manual_seed(opts.seed)
        random.seed(opts.seed)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.device = device = pick_device(opts.device)
        if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            self.device = device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process
            torch.cuda.set_device(device)
        self.joined = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not distributed.group_initialized()
        self.rank, self.world = distributed.join(device)
        if self.world > 1 and opts.balance > 0:
            raise ValueError("--balance draws faces with replacement in one process; it is not supported with torchrun")
        self.out = Path(opts.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        warn = (lambda text: progress({"event": "warning", "text": text})) if progress else None
        self.model, parent_meta = build_model(opts, train_samples, warn)
        self._setup_optimizer()
        self.start_epoch, self.it, self.elapsed0, self.best, self.history = 0, 0, 0.0, math.inf, []
        self.ema = WeightAverage(self.model, opts.ema) if opts.ema else None
        if opts.resume and self.last_path.exists():
            self._resume(warn)
        self._setup_data(train_samples, val_samples)
        self.use_bf16 = opts.precision == "bf16" or (opts.precision == "auto" and (device.type == "cuda" or native_bf16()))
        self.t0 = time.monotonic()
        self.stopped = False
        self.run_loss = 0.0
        self.meta_base = {"preset": opts.preset, "parent": opts.init, "parent_meta": parent_meta,
                          "train_faces": len(train_samples), "val_faces": len(val_samples),
                          "options": asdict(opts), "processes": self.world,
                          "effective_batch": opts.batch_size * self.world,
                          "lr_scaling": "none: --lr is the rate for the effective batch"}
        if progress and self.rank == 0:
            progress({"event": "setup", "processes": self.world, "effective_batch": opts.batch_size * self.world,
                      "lr": opts.lr})

    def _setup_optimizer(self) -> None:
        model, opts = self.model, self.opts
        model.to(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once
            model.to(memory_format=torch.channels_last)
        if opts.train_layers == "refiner":
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        self.params = [p for p in model.parameters() if p.requires_grad]
        reg_ids = {id(p) for p in model.refiner.regressors.parameters()}
        groups = [{"params": [p for p in self.params if id(p) not in reg_ids], "lr_mult": 1.0},
                  {"params": [p for p in self.params if id(p) in reg_ids], "lr_mult": opts.regressor_lr_mult}]
        self.optim = torch.optim.AdamW(groups, lr=opts.lr, weight_decay=opts.weight_decay)

    def _resume(self, warn: Callable[[str], None] | None = None) -> None:
        blob = read_checkpoint(self.last_path)
        saved = dict(blob.get("config", {}))
        if saved != self.model.cfg.to_dict():
            # the run's architecture is the checkpoint's: --resume needs no architecture options
            diff = ", ".join(f"{k} {v}" for k, v in saved.items() if self.model.cfg.to_dict().get(k) != v)
            self.model = model_from_blob(blob, self.last_path).train()
            self._setup_optimizer()
            if self.ema is not None:
                self.ema = WeightAverage(self.model, self.opts.ema)
            if warn:
                warn(f"{self.last_path}: resuming with the checkpoint's own architecture ({diff})")
        self.model.load_state_dict(blob["state_dict"])
        # with --ema the checkpoint holds the average and the raw weights beside it: training
        # goes on from the raw ones (without --ema the average is then dropped)
        if self.ema is not None:
            if "raw_state" not in blob:
                raise ValueError(f"{self.last_path}: was trained without --ema, resume it without --ema")
            self.ema.state = {k: v.to(self.device) for k, v in blob["state_dict"].items()}
            self.ema.updates = blob["train_state"]["iteration"]
        if "raw_state" in blob:
            self.model.load_state_dict(blob["raw_state"])
        self.optim.load_state_dict(blob["optimizer"])
        st = blob["train_state"]
        self.start_epoch, self.it, self.elapsed0, self.best = st["epoch"], st["iteration"], st["elapsed"], st["best"]
        self.history = json.loads(st["history"])

    def _setup_data(self, train_samples: list[Sample], val_samples: list[Sample]) -> None:
        opts, cfg, rank, world = self.opts, self.model.cfg, self.rank, self.world
        # every rank draws its own augmentations (the batches it sees already differ)
        self.train_set = FaceDataset(train_samples, cfg.input_size, augment=opts.augment, seed=opts.seed + 1000 * rank,
                                     rotate_prob=opts.rotate_prob, level_eyes=cfg.level_eyes,
                                     roll_jitter=opts.roll_jitter, occlude_prob=opts.occlude_prob,
                                     blur_prob=opts.blur_prob, style=opts.augmentation)
        self.val_set = FaceDataset(val_samples, cfg.input_size, augment=False)
        self.per_epoch = max(1, len(self.train_set) // (opts.batch_size * world))
        self.weights = None
        if opts.balance > 0:
            self.weights = balance_weights(train_samples, self.model.candidates.cpu().numpy(), cfg.input_size,
                                           opts.balance)
        self.loader = _loader(self.train_set, opts, self.device, self.weights, rank, world)
        self.net: torch.nn.Module = self.model
        if world > 1:
            # gradients averaged over the ranks: one step is one batch of world x batch_size faces
            # at --lr, not scaled (state the rate for the effective batch)
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                               if self.device.type == "cuda" else None)
        self.total_it = self.per_epoch * opts.epochs
        self.warmup = max(1, min(100, self.total_it // 10))  # short runs (fine-tuning) must not spend them warming up

    def elapsed(self) -> float:
        return self.elapsed0 + (time.monotonic() - self.t0) / 60.0

    def out_of_time(self) -> bool:
        return bool(self.opts.max_minutes and self.elapsed() >= self.opts.max_minutes)

    def _train_mode(self) -> None:
        self.model.train()
        if self.opts.train_layers == "refiner":
            self.model.backbone.eval()  # keep the frozen backbone's BatchNorm statistics
        if self.opts.freeze_batchnorm:
            for m in self.model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()

    def run_epoch(self, epoch: int) -> None:
        """One epoch's steps; sets self.stopped when asked to stop (after the current batch)."""
        opts, cfg = self.opts, self.model.cfg
        self._train_mode()
        self.run_loss, seen, te = 0.0, 0, time.monotonic()
        if self.loader is not None and self.world > 1:
            self.loader.sampler.set_epoch(epoch)  # a new order each epoch, the same on every rank
        batches = self.loader if self.loader is not None else _batches(
            self.train_set, opts.batch_size, self.per_epoch, self.weights, epoch, opts.seed, self.rank, self.world)
        for b, (x, y) in enumerate(batches):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            frac = max(self.it / max(self.total_it, 1), self.elapsed() / opts.max_minutes if opts.max_minutes else 0.0)
            for g in self.optim.param_groups:
                g["lr"] = opts.lr * _lr_factor(frac, self.it, self.warmup) * g["lr_mult"]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                trace = self.net(x)
            loss, parts = drr_loss(trace, y, cfg.input_size, opts.heatmap_weight, opts.regression_weight,
                                   opts.regression_loss)
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 5.0)
            self.optim.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.it += 1
            seen += len(x)
            self.run_loss = 0.9 * self.run_loss + 0.1 * parts["loss"] if b else parts["loss"]
            if self.progress and self.rank == 0:
                self.progress({"event": "step", "epoch": epoch + 1, "epochs": opts.epochs, "batch": b + 1,
                               "batches": self.per_epoch, "loss": self.run_loss, **parts,
                               "faces_per_s": seen / max(time.monotonic() - te, 1e-6),
                               "minutes": self.elapsed(), "lr": self.optim.param_groups[0]["lr"]})
            out_of_time, asked = self.out_of_time(), bool(self.should_stop and self.should_stop())
            if self.world > 1:  # every rank stops after the same step, or the next all-reduce would hang
                out_of_time, asked = distributed.agree_to_stop(out_of_time, asked)
            if asked or out_of_time:
                self.stopped = asked
                break

    def end_epoch(self, epoch: int) -> None:
        """Validation (of the weight average and the raw weights with --ema), the log, the
        checkpoints (rank 0)."""
        val = val_raw = None
        if len(self.val_set):
            if self.ema is not None:
                val_raw = validate(self.model, self.val_set, self.device)
                with self.ema.applied(self.model):
                    val = validate(self.model, self.val_set, self.device)
            else:
                val = validate(self.model, self.val_set, self.device)
        score = val["nme"] if val else self.run_loss
        is_best = score < self.best
        self.best = min(self.best, score)
        self.history.append({"epoch": epoch + 1, "loss": self.run_loss, "minutes": round(self.elapsed(), 2),
                             **({"val_nme": val["nme"], "val_steps": val["nme_steps"]} if val else {}),
                             **({"val_nme_raw": val_raw["nme"]} if val_raw else {})})
        self.save(epoch + 1, val, is_best)
        with open(self.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(self.history[-1]) + "\n")
        if self.progress:
            self.progress({"event": "epoch", **self.history[-1], "best": self.best})

    def save(self, epoch: int, val: dict | None, is_best: bool) -> None:
        """last.pt (resumable: optimizer, schedule position, history, raw weights beside the
        average) and, when best, best.pt."""
        meta = {**self.meta_base, "epoch": epoch, "iteration": self.it, "minutes": round(self.elapsed(), 2),
                "val": val, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        state = {"epoch": epoch, "iteration": self.it, "elapsed": self.elapsed(), "best": self.best,
                 "history": json.dumps(self.history)}
        extra = {"optimizer": self.optim.state_dict(), "train_state": state}
        if self.ema is not None:
            extra["raw_state"] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        with self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext():
            save_checkpoint(self.last_path, self.model, meta, extra)
            if is_best:
                save_checkpoint(self.best_path, self.model, meta)

    def finish(self) -> TrainResult:
        if self.rank == 0 and not self.best_path.exists():
            self.save(len(self.history), None, True)
        distributed.barrier(self.world)
        if self.joined:
            import torch.distributed as dist

            dist.destroy_process_group()
        return TrainResult(self.best_path, self.last_path, self.history, self.stopped, self.model)


def _check(opts: TrainOptions, train_samples: list[Sample]) -> None:
    if not train_samples:
        raise ValueError("no training faces")
    if not 0.0 <= opts.rotate_prob <= 1.0:
        raise ValueError(f"rotate_prob must lie in [0, 1], got {opts.rotate_prob}")
    if opts.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {opts.precision!r}: choose one of {', '.join(PRECISIONS)}")
