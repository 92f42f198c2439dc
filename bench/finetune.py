"""How reliably does the app's fine-tune improve a model on faces of a kind it was not trained
for? Validation faces (never trained on) are tilted by +-60 degrees with their annotations,
beyond the +-30 degrees of training; the fine-tune (model.finetune, the app's code path) trains
on 20 of them and is judged on the 8 it holds out, for several seeds and epoch counts.

    python -m bench.finetune                                  # shipped model, epochs 10 and 40, seeds 0-2
    python -m bench.finetune resources/drr_default.pt runs/x/last.pt --epochs 40 --seeds 0 1

Prints the held-out inter-ocular NME (%) before and after, and writes bench/results/finetune.json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import cv2

from model.checkpoint import CheckpointError
from model.data import Sample, find_samples
from model.finetune import FineTuneOptions, fine_tune
from model.images import read_image
from model.pts import write_pts

from .common import (
    DEFAULT_DATA,
    DEFAULT_OUT,
    DEFAULT_SPLIT,
    HELDOUT_CHECKPOINT,
    environment,
    load_split,
    md_table,
    set_threads,
    write_json,
)

TILT_DEGREES = 60.0


def write_tilted_faces(samples: list[Sample], folder: Path, degrees: float = TILT_DEGREES) -> Path:
    """Each face rotated about its picture's centre, alternately by +degrees and -degrees, saved
    as tilted00.jpg + tilted00.pts ... in `folder` (the layout the app exports)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(samples):
        img = read_image(s.image)
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees if i % 2 else -degrees, 1.0)
        cv2.imwrite(str(folder / f"tilted{i:02d}.jpg"), cv2.cvtColor(cv2.warpAffine(img, m, (w, h)), cv2.COLOR_RGB2BGR))
        write_pts(folder / f"tilted{i:02d}.pts", s.points @ m[:2, :2].T + m[:, 2])
    return folder


def tilted_validation_faces(data: str | Path, names: str | Path, folder: Path, count: int = 28) -> Path:
    """The first `count` HELEN faces of the validation split, tilted into `folder`."""
    samples, _ = load_split(data, names)
    helen = [s for s in samples if s.name.startswith("helen_train/")][:count]
    if len(helen) < count:
        raise ValueError(f"{names}: only {len(helen)} helen_train faces, {count} needed")
    return write_tilted_faces(helen, folder)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.finetune", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="*", help=f"default {HELDOUT_CHECKPOINT.relative_to(HELDOUT_CHECKPOINT.parents[1])}")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--names", default=str(DEFAULT_SPLIT))
    ap.add_argument("--epochs", type=int, nargs="+", default=[10, FineTuneOptions.epochs])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default=str(DEFAULT_OUT / "finetune.json"))
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    set_threads(a.threads)
    checkpoints = a.checkpoints or [str(HELDOUT_CHECKPOINT)]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = tilted_validation_faces(a.data, a.names, Path(tmp) / "tilted")
        except (OSError, ValueError) as exc:
            print(f"bench.finetune: {exc}", file=sys.stderr)
            return 2
        faces, _ = find_samples([folder], 68)
        for ckpt, epochs, seed in itertools.product(checkpoints, a.epochs, a.seeds):
            opts = FineTuneOptions(checkpoint=ckpt, models_dir=str(Path(tmp) / "models"), held_out_fraction=0.3,
                                   epochs=epochs, seed=seed)
            t0 = time.perf_counter()
            try:
                r = fine_tune(opts, faces)
            except (CheckpointError, ValueError) as exc:
                print(f"bench.finetune: {exc}", file=sys.stderr)
                return 2
            runs.append({"checkpoint": ckpt, "epochs": epochs, "seed": seed, "train_faces": r.train_faces,
                         "held_out_faces": r.held_out_faces, "before_ocular": r.old_error,
                         "after_ocular": r.new_error, "before_pupil": r.old_error_pupil,
                         "after_pupil": r.new_error_pupil, "seconds": time.perf_counter() - t0})
            print(f"{ckpt} epochs {epochs} seed {seed}: {r.old_error:.2f} -> {r.new_error:.2f}", file=sys.stderr)
    rows = [[r["checkpoint"], r["epochs"], r["seed"], f"{r['before_ocular']:.2f}", f"{r['after_ocular']:.2f}",
             f"{r['after_ocular'] / r['before_ocular']:.2f}", f"{r['seconds']:.0f}"] for r in runs]
    print(f"\n{len(faces)} validation faces tilted by ±{TILT_DEGREES:.0f}°, 20 trained on, 8 held out; "
          "held-out inter-ocular NME %\n")
    print(md_table(["checkpoint", "epochs", "seed", "before", "after", "after / before", "seconds"], rows))
    if a.json:
        write_json(a.json, {"tilt_degrees": TILT_DEGREES, "environment": environment("cpu"), "runs": runs})
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
