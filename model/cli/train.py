"""drr-train: train a DRR model, or fine-tune one (--init), with a progress bar."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..config import DRRConfig
from ..data import find_samples, read_name_list, split_by_names
from ..finetune import INHERITED_OPTIONS, FineTuneOptions, fine_tune
from ..options import add_options, given
from ..resources import VAL_SPLIT, resource
from ..train import TrainOptions, train
from .export import main as export_main

DEFAULT_SPLIT = resource(VAL_SPLIT)


def split_samples(samples, val_split: str | None, val_fraction: float, seed: int):
    """A committed name list when it matches the data, else a fixed fraction by sorted name."""
    if val_split and Path(val_split).is_file():
        train_s, val_s = split_by_names(samples, read_name_list(val_split))
        if val_s:
            return train_s, val_s
    if val_fraction <= 0 or len(samples) < 2:
        return samples, []
    ordered = sorted(samples, key=lambda s: s.name)
    step = max(2, round(1 / val_fraction))
    val_names = {s.name for s in ordered[::step]}
    return split_by_names(samples, val_names)


ARCH_PREFIX = "arch_"  # argparse dest of the architecture flags (DRRConfig.init vs TrainOptions.init)
# a fine-tune keeps the checkpoint's architecture, objective and augmentation: these are refused
# with --init, every other training flag is honoured
NOT_WITH_INIT = ("preset", "resume", *INHERITED_OPTIONS)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drr-train", description=__doc__)
    ap.add_argument("--data", nargs="+", default=["../shared/data/300w_train"],
                    help="folders of pictures with same-stem iBUG .pts (searched recursively)")
    run = ap.add_argument_group(
        "training (model.train.TrainOptions)",
        f"A fine-tune (--init) defaults to {FineTuneOptions.epochs} epochs, lr {FineTuneOptions.lr}, batch "
        f"{FineTuneOptions.batch_size}, {FineTuneOptions.precision}, frozen BatchNorm statistics "
        "(model.finetune.FineTuneOptions), and keeps the checkpoint's objective and augmentation.")
    add_options(run, TrainOptions)
    arch = ap.add_argument_group("architecture, over the preset (model.config.DRRConfig)")
    add_options(arch, DRRConfig, prefix=ARCH_PREFIX)
    ap.add_argument("--val-split", help=f"file of held-out names (default: {DEFAULT_SPLIT.name} when it matches "
                    "the data)")
    ap.add_argument("--val-fraction", type=float, default=0.1,
                    help="held-out fraction when the split file does not match the data, and of a fine-tune")
    ap.add_argument("--export", metavar="PATH",
                    help="after training, also write OUT/last.pt here as a small fp16 file to ship")
    return ap


def progress_printer() -> Callable[[dict], None]:
    """The progress callback of a run: a bar per epoch, a line per epoch's end and warnings."""
    bar = None

    def progress(ev: dict) -> None:
        nonlocal bar
        if ev["event"] == "step":
            if bar is None or bar.desc != f"epoch {ev['epoch']}/{ev['epochs']}":
                if bar is not None:
                    bar.close()
                bar = tqdm(total=ev["batches"], desc=f"epoch {ev['epoch']}/{ev['epochs']}", unit="batch",
                           dynamic_ncols=True)
            bar.update(1)
            bar.set_postfix(loss=f"{ev['loss']:.3f}", conv8=f"{ev['conv8']:.2f}",
                            faces_s=f"{ev['faces_per_s']:.1f}", min=f"{ev['minutes']:.1f}")
        elif ev["event"] == "epoch":
            if bar is not None:
                bar.close()
                bar = None
            steps = ev.get("val_steps")
            msg = f"epoch {ev['epoch']}: loss {ev['loss']:.3f}, {ev['minutes']:.1f} min"
            if steps:
                msg += f", val NME {ev['val_nme']:.2f}% (" + " ".join(f"{k} {v:.2f}" for k, v in steps.items()) + ")"
            tqdm.write(msg)
        elif ev["event"] == "setup" and ev["processes"] > 1:
            tqdm.write(f"drr-train: {ev['processes']} processes, effective batch {ev['effective_batch']} "
                       f"(--batch-size per process), learning rate {ev['lr']} as given (not scaled)")
        elif ev["event"] == "warning":
            tqdm.write(f"drr-train: {ev['text']}")
        elif ev["event"] == "evaluating":
            tqdm.write("measuring the old and the new model on the held-out faces ...")

    return progress


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    train_flags = given(a, [f.name for f in fields(TrainOptions) if "help" in f.metadata])
    overrides = given(a, [f.name for f in fields(DRRConfig) if "help" in f.metadata], prefix=ARCH_PREFIX)
    if a.init:
        refused = [k for k in NOT_WITH_INIT if k in train_flags] + list(overrides)
        refused += ["val_split"] * bool(a.val_split) + ["export"] * bool(a.export)
        if refused:
            flags = ", ".join("--" + k.replace("_", "-") for k in refused)
            print(f"drr-train: {flags} cannot be used with --init: a fine-tune keeps the checkpoint's architecture, "
                  "objective and augmentation, holds out --val-fraction of the faces and writes a new checkpoint "
                  "into --out", file=sys.stderr)
            return 2
    samples, problems = find_samples(a.data)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if not samples:
        print(f"drr-train: no pictures with .pts files found in {', '.join(a.data)}", file=sys.stderr)
        return 2
    progress = progress_printer()
    if a.init:
        return _fine_tune(a, samples, progress, train_flags)
    train_s, val_s = split_samples(samples, a.val_split or str(DEFAULT_SPLIT), a.val_fraction, train_flags.get("seed", 0))
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one process speaks
    if main_rank:
        print(f"drr-train: {len(train_s)} training faces, {len(val_s)} held out")
    opts = TrainOptions(**train_flags, overrides=overrides)
    try:
        res = train(opts, train_s, val_s, progress)
    except (CheckpointError, ValueError) as exc:
        print(f"drr-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndrr-train: interrupted; the last completed epoch is in " + str(Path(opts.out) / "last.pt"), file=sys.stderr)
        return 130
    if main_rank:
        print(f"drr-train: best checkpoint {res.best_path}")
    if a.export and main_rank:
        # the last epoch, not the best: the validation faces judge the model, they do not pick it
        return export_main([str(res.last_path), a.export])
    return 0


def _fine_tune(a: argparse.Namespace, samples, progress, train_flags: dict) -> int:
    """--init: the same code path as the app's Model -> Fine-tune dialog."""
    flags = {k: v for k, v in train_flags.items() if k not in ("init", "out")}
    opts = FineTuneOptions(checkpoint=a.init, models_dir=train_flags.get("out", TrainOptions.out),
                           held_out_fraction=a.val_fraction, **flags)
    try:
        res = fine_tune(opts, samples, progress)
    except (CheckpointError, ValueError) as exc:
        print(f"drr-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndrr-train: interrupted; no new checkpoint was written", file=sys.stderr)
        return 130
    print(f"drr-train: fine-tuned on {res.train_faces} faces, {res.held_out_faces} held out")
    if res.old_error is not None:
        print(f"held-out inter-ocular NME: {res.old_error:.2f}% before, {res.new_error:.2f}% after "
              f"(inter-pupil {res.old_error_pupil:.2f}% -> {res.new_error_pupil:.2f}%)")
    print(f"drr-train: new checkpoint {res.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
