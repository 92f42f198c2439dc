"""Fine-tuning a checkpoint on corrected faces: the one code path behind both
`drr-train --init CHECKPOINT --data FOLDER` and the app's Model -> Fine-tune dialog.

It holds out a fixed part of the faces, trains with `train()`, measures the old and the new model
on the held-out faces and writes the new weights as a new, versioned checkpoint. The starting
checkpoint is never modified; a cancelled or failed run leaves no new checkpoint behind.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint, save_checkpoint
from .correction import reset_for
from .data import Sample
from .evaluate import evaluate
from .predict import Predictor
from .train import TrainOptions, train


@dataclass
class FineTuneOptions(TrainOptions):
    """A fine-tune is a training run (every TrainOptions field applies) with its own defaults,
    the starting checkpoint, and a held-out part of the faces instead of a split file."""

    checkpoint: str = ""  # starting weights (drr-train --init)
    models_dir: str = ""  # where the new versioned checkpoint goes (drr-train --out)
    held_out_fraction: float = 0.1  # drr-train --val-fraction
    name_prefix: str = "finetuned"
    # 10 epochs of 20 faces (30 steps) left the held-out error at the mercy of the seed;
    # 40 converge (bench/finetune.py)
    epochs: int = 40
    lr: float = 3e-4
    batch_size: int = 8
    # with a handful of faces, batch statistics of 8 faces would overwrite those of thousands
    freeze_batchnorm: bool = True
    # fp32 even where bf16 autocast is faster: a fine-tune is a few minutes of small updates,
    # and under bf16 the test's tilted faces gained 5% instead of over 10%
    precision: str = "fp32"
    # stop when the held-out error has not improved for this many epochs, and keep the best
    # epoch's weights (0: run every epoch and keep the last); the app's dialog turns it on
    patience: int = 0


TARGET_STEPS = 300  # suggested_schedule: about this many optimizer steps, whatever the face count


def suggested_schedule(train_faces: int, batch_size: int = 8) -> tuple[int, float]:
    """(epochs, learning rate) for a fine-tune on this many faces: the same number of steps
    (TARGET_STEPS) for 11 faces as for 500, so a small folder gets enough updates (40 epochs of
    11 faces are 80 steps), with early stopping (FineTuneOptions.patience) ending it once the
    held-out faces stop improving. A smaller learning rate for few faces did worse (the
    experiment log's fine-tune entry)."""
    batches = max(1, math.ceil(max(train_faces, 1) / batch_size))
    epochs = int(min(300, max(20, math.ceil(TARGET_STEPS / batches))))
    return epochs, FineTuneOptions.lr


class EarlyStop:
    """Watches a run's epochs: after `patience` epochs without a lower held-out error it asks
    the run to stop (0: never); the user's own stop request passes through."""

    def __init__(self, patience: int, progress: Callable[[dict], None] | None,
                 should_stop: Callable[[], bool] | None) -> None:
        self.patience, self._progress, self._should_stop = patience, progress, should_stop
        self.best, self.best_epoch, self.triggered = math.inf, 0, False

    def progress(self, ev: dict) -> None:
        if ev.get("event") == "epoch" and ev.get("val_nme") is not None:
            if ev["val_nme"] < self.best:
                self.best, self.best_epoch = float(ev["val_nme"]), int(ev["epoch"])
            elif self.patience and int(ev["epoch"]) - self.best_epoch >= self.patience and not self.triggered:
                self.triggered = True
                if self._progress:
                    self._progress({"event": "early_stop", "epoch": ev["epoch"], "best_epoch": self.best_epoch})
        if self._progress:
            self._progress(ev)

    def should_stop(self) -> bool:
        return self.triggered or bool(self._should_stop and self._should_stop())


@dataclass
class FineTuneResult:
    checkpoint: Path | None  # the new checkpoint; None when cancelled
    old_error: float | None  # inter-ocular NME (%) on the held-out faces
    new_error: float | None
    old_error_pupil: float | None = None
    new_error_pupil: float | None = None
    train_faces: int = 0
    held_out_faces: int = 0
    cancelled: bool = False
    history: list[dict] = field(default_factory=list)
    # each held-out face: its name, and its inter-pupil error (%) under the old and the new model
    face_names: list[str] = field(default_factory=list)
    old_face_errors: list[float] = field(default_factory=list)
    new_face_errors: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # the epoch kept (early stopping), else None: the last
    stopped_early: bool = False


def split_held_out(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    """A fixed split by a hash of each face's name: for the same faces the same ones are held
    out every time, whatever order they come in (round(fraction * n) of them, at least one)."""
    if fraction <= 0 or len(samples) < 4:
        return list(samples), []

    def h(s: Sample) -> float:
        return int(hashlib.sha1(s.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    ranked = sorted(samples, key=h)
    n = max(1, round(fraction * len(samples)))
    held = {id(s) for s in ranked[:n]}
    return [s for s in samples if id(s) not in held], [s for s in samples if id(s) in held]


# what a fine-tune keeps from the options the checkpoint was trained with: the same objective
# (a model trained on the distance loss is not fine-tuned on the squared one) and augmentation
INHERITED_OPTIONS = ("heatmap_weight", "regression_weight", "regression_loss", "regressor_lr_mult", "rotate_prob",
                     "roll_jitter", "occlude_prob", "blur_prob", "augmentation")


def training_objective(blob: dict) -> dict:
    """The INHERITED_OPTIONS recorded in a checkpoint's meta; those it lacks keep their defaults."""
    trained = (blob.get("meta") or {}).get("options") or {}
    return {k: trained[k] for k in INHERITED_OPTIONS if k in trained}


def held_out_errors(checkpoint: str | Path, faces: list[Sample],
                    device: str | None = None) -> tuple[float, float, list[float]]:
    """(inter-ocular, inter-pupil) NME in % of a checkpoint on faces, annotation-box protocol,
    and each face's inter-pupil error in %."""
    predictor = Predictor.load(checkpoint, None if device in (None, "auto") else device, mirror_average=False)
    run = evaluate(predictor, faces, "truth", show_progress=False)
    summary = run.summary()
    per_face = [float(e) for e in np.asarray(run.errors("inter-pupil")) * 100]
    return summary["inter-ocular"]["nme"], summary["inter-pupil"]["nme"], per_face


def fine_tune(opts: FineTuneOptions, samples: list[Sample],
              progress: Callable[[dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> FineTuneResult:
    if not samples:
        raise ValueError("no corrected faces to fine-tune on")
    _, parent = load_checkpoint(opts.checkpoint)  # fail early, with the checkpoint's own message
    train_s, held = split_held_out(samples, opts.held_out_fraction)
    result = FineTuneResult(None, None, None, train_faces=len(train_s), held_out_faces=len(held))
    models = Path(opts.models_dir)
    models.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".finetune-", dir=models))
    try:
        # every training option as given, the checkpoint's objective and augmentation kept
        given = {f.name: getattr(opts, f.name) for f in fields(TrainOptions)}
        topts = TrainOptions(**{**given, "out": str(work), "init": str(opts.checkpoint), "resume": False,
                                **training_objective(parent)})
        watch = EarlyStop(opts.patience if held else 0, progress, should_stop)
        run = train(topts, train_s, held, watch.progress, watch.should_stop)
        result.history = run.history
        if run.stopped and not watch.triggered:
            result.cancelled = True
            return result
        if progress:
            progress({"event": "evaluating"})
        # with early stopping the held-out faces pick the epoch (so they flatter it a little);
        # without, no model selection on them: they only judge the last epoch
        final = run.best_path if watch.patience and run.best_path.exists() else run.last_path
        result.stopped_early = watch.triggered
        result.best_epoch = watch.best_epoch if final == run.best_path else None
        if held:
            result.face_names = [s.name for s in held]
            result.old_error, result.old_error_pupil, result.old_face_errors = held_out_errors(
                opts.checkpoint, held, opts.device)
            result.new_error, result.new_error_pupil, result.new_face_errors = held_out_errors(final, held, opts.device)
        model, blob = load_checkpoint(final)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = models / f"{opts.name_prefix}-{stamp}.pt"
        k = 1
        while target.exists():
            k += 1
            target = models / f"{opts.name_prefix}-{stamp}-{k}.pt"
        meta = {**blob.get("meta", {}), "fine_tuned_from": str(opts.checkpoint),
                "held_out_faces": len(held), "held_out_nme_ocular": {"old": result.old_error, "new": result.new_error}}
        save_checkpoint(target, model, meta)
        # assisted correction: never the parent's statistics as they were (see model.cli.correction)
        reset_for(target, Path(opts.checkpoint), model.cfg.num_points)
        result.checkpoint = target
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fine_tune_in_process(opts: FineTuneOptions, samples: list[Sample], messages, stop) -> None:
    """A child process's whole work (the app's Model -> Fine-tune runs it with multiprocessing's
    spawn): fine_tune with each progress event put on `messages`, then {"event": "done",
    "result": FineTuneResult} or {"event": "failed", "message": ...}; `stop` (an Event) cancels
    after the current batch. Training sets seeds, thread counts and backend flags for its whole
    process: in a process of its own they never reach the app's."""
    try:
        result = fine_tune(opts, samples, messages.put, stop.is_set)
        messages.put({"event": "done", "result": result})
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the app as a message
        messages.put({"event": "failed", "message": f"{exc.__class__.__name__}: {exc}".splitlines()[0]})
