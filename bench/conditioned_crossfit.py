"""Conditioned steps on a cross-fitted backbone (issue 34, lever 2): do clicks a network sees beat
the Gaussian update when its features come from faces the backbone never saw?

    python -m bench.conditioned_crossfit folds --out runs/crossfit          # two folds + the training command
    drr-train --data runs/crossfit/foldA ... --export runs/crossfit/A.pt     # printed by the line above (~30 min)
    python -m bench.conditioned_crossfit measure --backbone runs/crossfit/A.pt --faces runs/crossfit/foldB

The 1,810 training faces of the held-out twin (every face but the validation split) are split in
two folds by name. Backbone A is the 192-px recipe trained on fold A alone (60 epochs). On fold B,
which A never saw, A pre-labels the faces the app's way; their residuals make A's statistics and
A's deconv7 maps of them train model.conditioned's steps (the frozen features of unseen faces the
earlier try lacked). Then bench.annotator counts the validation faces, which neither saw, twice:
A's own pre-labels with its statistics and steps; and the shipped held-out twin's pre-labels with
its shipped statistics, the steps reading A's backbone beside it (what the app would run).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import CheckpointError
from model.cli.conditioned import load_or_cache, make_draws, train_steps
from model.cli.correction import LEARN_WEIGHT, SHRINKAGE
from model.conditioned import StepsConfig
from model.correction import CorrectionModel, file_sha256, residual, stats_path
from model.data import Sample, find_samples, read_name_list, split_by_names
from model.predict import Predictor

from . import annotator
from .common import DEFAULT_DATA, DEFAULT_OUT, DEFAULT_SPLIT, HELDOUT_CHECKPOINT, set_threads

# the best of the variants tried on A's own pre-labels (docs/experiment-log.md): one step, a small
# LSTM, most of the features dropped while training, prediction errors drawn at full scale
STEPS = {"steps": 1, "hidden": 32, "feature_dropout": 0.8}
DRAWS, NOISE, EPOCHS = 16, 1.0, 4
TRAIN_COMMAND = ("drr-train --data {fold} --out {out}/runA --preset default --input-size 192 --epochs 60 --lr 1.5e-3 "
                 "--regression-weight 20 --batch-size 16 --rotate-prob 0.3 --seed 0 --precision bf16 --ema 0.999 "
                 "--regressor-lr-mult 0.03 --threads 2 --val-split none --val-fraction 0 --export {out}/A.pt")


def folds(samples: list[Sample], validation: set[str]) -> tuple[list[Sample], list[Sample]]:
    """(fold A, fold B): the faces outside the validation split, alternately in name order."""
    train, _ = split_by_names(samples, validation)
    train = sorted(train, key=lambda s: s.name)
    return train[0::2], train[1::2]


def link_fold(samples: list[Sample], data: Path, out: Path) -> None:
    """A folder of links to each face's picture and .pts, under their names relative to `data`."""
    for s in samples:
        image = Path(s.image).resolve()
        for src in (image, image.with_suffix(".pts")):
            dst = out / src.relative_to(data.resolve())
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                os.symlink(src, dst)


def write_folds(a: argparse.Namespace) -> int:
    samples, _ = find_samples([a.data], 68)
    out = Path(a.out)
    fold_a, fold_b = folds(samples, read_name_list(a.split))
    link_fold(fold_a, Path(a.data), out / "foldA")
    link_fold(fold_b, Path(a.data), out / "foldB")
    print(f"fold A {len(fold_a)} faces, fold B {len(fold_b)} faces under {out}; train backbone A with\n  "
          + TRAIN_COMMAND.format(fold=out / "foldA", out=out))
    return 0


def build_steps(backbone: Path, samples: list[Sample], seed: int) -> tuple[Path, Path]:
    """A's statistics from its residuals on the faces it never saw, and steps trained on its maps of
    them; written beside the backbone (NAME.correction.json, NAME.steps.pt)."""
    samples = sorted(samples, key=lambda s: s.name)
    predictor = Predictor.load(backbone, mirror_average=True)
    faces = load_or_cache(str(backbone.with_suffix(".faces.pt")), predictor, samples)
    r = np.stack([residual(p, t) for p, t in zip(faces.preds, faces.truth)])
    stats = CorrectionModel.from_residuals(r, SHRINKAGE, learn_weight=LEARN_WEIGHT)
    stats.source = f"residuals of {backbone.name} on {len(samples)} faces it never saw (a cross-fitted fold)"
    stats.model = {"sha256": file_sha256(backbone), "name": backbone.name}
    stats.save(stats_path(backbone))
    print(f"{len(samples)} faces, residual rms {float(np.sqrt(np.mean(r**2))):.4f} eye units")
    draws = make_draws(faces, stats, DRAWS, seed, NOISE)
    cfg = StepsConfig(68, int(faces.maps.shape[1]), predictor.config.input_size, **STEPS)
    steps = train_steps(faces, draws, cfg, EPOCHS, seed=seed)
    out = backbone.with_name(backbone.stem + ".steps.pt")
    steps.save(out, backbone, f"cross-fit: {len(samples)} faces {backbone.name} never saw, x{DRAWS} draws, noise "
               f"{NOISE}, {EPOCHS} epochs, {STEPS}")
    return stats_path(backbone), out


def measure(a: argparse.Namespace) -> int:
    set_threads(a.threads)
    backbone = Path(a.backbone)
    samples = find_samples([a.faces], 68)[0]
    if not samples:
        print(f"conditioned_crossfit: no annotated 68-point faces under {a.faces}", file=sys.stderr)
        return 2
    try:
        stats, steps = build_steps(backbone, samples, a.seed)
    except CheckpointError as exc:
        print(f"conditioned_crossfit: {exc}", file=sys.stderr)
        return 2
    common = ["--steps", str(steps), "--no-dlib", "--threads", str(a.threads), "--quiet"]
    out = Path(a.json_dir)
    print("\n== the cross-fitted backbone's own pre-labels, statistics and steps ==")
    rc = annotator.main(["--checkpoint", str(backbone), "--stats", str(stats), *common,
                         "--json", str(out / "conditioned_crossfit_own.json")])
    heldout = Path(a.heldout)
    print(f"\n== {heldout.name}'s pre-labels and shipped statistics, the steps reading {backbone.name} ==")
    return rc or annotator.main(["--checkpoint", str(heldout), "--stats", str(stats_path(heldout)),
                                 "--steps-features", str(backbone), *common,
                                 "--json", str(out / "conditioned_crossfit_twin.json")])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.conditioned_crossfit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("folds", help="write the two folds as folders of links and print backbone A's command")
    f.add_argument("--data", default=str(DEFAULT_DATA))
    f.add_argument("--split", default=str(DEFAULT_SPLIT), help="the validation names (in neither fold)")
    f.add_argument("--out", default="runs/crossfit")
    m = sub.add_parser("measure", help="statistics and steps from fold B, then bench.annotator twice")
    m.add_argument("--backbone", required=True, help="the export of the recipe trained on fold A")
    m.add_argument("--faces", required=True, help="fold B's folder (faces the backbone never saw)")
    m.add_argument("--heldout", default=str(HELDOUT_CHECKPOINT))
    m.add_argument("--json-dir", default=str(DEFAULT_OUT))
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--threads", type=int, default=2)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    torch.manual_seed(0)
    return write_folds(a) if a.command == "folds" else measure(a)


if __name__ == "__main__":
    sys.exit(main())
