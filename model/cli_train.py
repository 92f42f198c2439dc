"""drr-train: train a DRR model, or fine-tune one (--init), with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .checkpoint import CheckpointError
from .config import PRESETS
from .data import find_samples, read_name_list, split_by_names
from .export import main as export_main
from .finetune import FineTuneOptions, fine_tune
from .inference import PRECISIONS
from .losses import REGRESSION_LOSSES
from .resources import VAL_SPLIT, resource
from .train import TrainOptions, train

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


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drr-train", description=__doc__)
    ap.add_argument("--data", nargs="+", default=["../shared/data/300w_train"],
                    help="folders of pictures with same-stem iBUG .pts (searched recursively)")
    ap.add_argument("--out", default="runs/default", help="folder for best.pt, last.pt and log.jsonl")
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ap.add_argument("--input-size", type=int, help="crop side (multiple of 4), e.g. 128 or 256")
    ap.add_argument("--width", type=float, help="backbone width multiplier")
    ap.add_argument("--lstm-hidden", type=int)
    ap.add_argument("--dilations", type=int, nargs=3, metavar=("D3", "D4", "D5"),
                    help="dilation of conv3 conv4 conv5 (VGG-S shapes), e.g. 1 2 4")
    ap.add_argument("--conv8-kernel", type=int, choices=[1, 3], help="conv8 kernel side (default 3)")
    ap.add_argument("--deconv-channels", type=int, help="channels of deconv6/7, what SIP pools")
    ap.add_argument("--no-recurrent", action="store_true", help="regress from SIP features only (Table IX)")
    ap.add_argument("--mean-init", action="store_true", help="start from the mean shape (Table X)")
    ap.add_argument("--sip-deconv6", action="store_true", help="pool from deconv6 + deconv7 (Table XIV)")
    ap.add_argument("--heatmap-stride", type=int, choices=[1, 2],
                    help="conv8 on deconv7 at full resolution (1, paper) or on deconv6 at half (2)")
    ap.add_argument("--candidates", type=int, help="number of k-means candidate shapes (default 50)")
    ap.add_argument("--init", help="fine-tune from this checkpoint (its architecture is kept)")
    ap.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    ap.add_argument("--epochs", type=int,
                    help=f"default {TrainOptions.epochs}; {FineTuneOptions.epochs} when fine-tuning (--init)")
    ap.add_argument("--max-minutes", type=float, default=0.0, help="time budget; the LR schedule fits it")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, help="learning rate (default 1e-3; 3e-4 when fine-tuning)")
    ap.add_argument("--heatmap-weight", type=float, default=1.0)
    ap.add_argument("--regression-weight", type=float, default=20.0)
    ap.add_argument("--regression-loss", choices=list(REGRESSION_LOSSES), default="l2",
                    help="l2: squared error per step (paper); distance: Euclidean distance per point "
                         "(what NME measures; use a regression weight near 1)")
    ap.add_argument("--regressor-lr-mult", type=float, default=0.1,
                    help="learning-rate factor of the per-step regressors (see train.py)")
    ap.add_argument("--train-layers", choices=["all", "refiner"], default="all")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--rotate-prob", type=float, default=TrainOptions.rotate_prob,
                    help="share of training crops rotated by 5-30 degrees (the rest stay upright)")
    ap.add_argument("--level-eyes", action="store_true",
                    help="rotate every crop so that the eye line is level (annotated eyes in training; "
                         "detector eyes or a first pass at test time)")
    ap.add_argument("--roll-jitter", type=float, default=TrainOptions.roll_jitter,
                    help="with --level-eyes: Gaussian residual roll of training crops, degrees")
    ap.add_argument("--occlude-prob", type=float, default=TrainOptions.occlude_prob,
                    help="share of training crops with an occluding box of noise or flat colour")
    ap.add_argument("--blur-prob", type=float, default=TrainOptions.blur_prob,
                    help="share of training crops blurred (Gaussian or motion)")
    ap.add_argument("--val-split", default=str(DEFAULT_SPLIT), help="file of held-out names")
    ap.add_argument("--val-fraction", type=float, default=0.1,
                    help="held-out fraction when the split file does not match the data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--balance", type=float, default=TrainOptions.balance,
                    help="draw faces of rare head poses more often: weight (faces in the same candidate "
                         "cluster) ** -BALANCE (0: plain shuffling)")
    ap.add_argument("--ema", type=float, default=TrainOptions.ema,
                    help="decay of a moving average of the weights, e.g. 0.999; the average is what is "
                         "validated and saved (0: off)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes preparing augmented crops (0: in the training loop; use several on a GPU)")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="bf16 autocast; auto (default): on CUDA and on CPUs with native bf16 "
                         "(fine-tunes with --init always train in fp32)")
    ap.add_argument("--export", metavar="PATH",
                    help="after training, also write OUT/last.pt here as a small fp16 file to ship")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    overrides = {k: v for k, v in {"input_size": a.input_size, "width": a.width, "lstm_hidden": a.lstm_hidden,
                                    "num_candidates": a.candidates, "heatmap_stride": a.heatmap_stride,
                                    "dilations": tuple(a.dilations) if a.dilations else None,
                                    "deconv_channels": a.deconv_channels, "conv8_kernel": a.conv8_kernel}.items() if v is not None}
    if a.no_recurrent:
        overrides["recurrent"] = False
    if a.mean_init:
        overrides["init"] = "mean"
    if a.sip_deconv6:
        overrides["sip_deconv6"] = True
    if a.level_eyes:
        overrides["level_eyes"] = True
    samples, problems = find_samples(a.data)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if not samples:
        print(f"drr-train: no pictures with .pts files found in {', '.join(a.data)}", file=sys.stderr)
        return 2
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
        elif ev["event"] == "evaluating":
            tqdm.write("measuring the old and the new model on the held-out faces ...")

    if a.init:
        return _fine_tune(a, samples, progress)
    train_s, val_s = split_samples(samples, a.val_split, a.val_fraction, a.seed)
    print(f"drr-train: {len(train_s)} training faces, {len(val_s)} held out")
    opts = TrainOptions(out=a.out, preset=a.preset, overrides=overrides, init=a.init, resume=a.resume,
                        epochs=TrainOptions.epochs if a.epochs is None else a.epochs, max_minutes=a.max_minutes, batch_size=a.batch_size, lr=a.lr or 1e-3,
                        heatmap_weight=a.heatmap_weight, regression_weight=a.regression_weight,
                        regression_loss=a.regression_loss,
                        regressor_lr_mult=a.regressor_lr_mult, train_layers=a.train_layers, augment=not a.no_augment, seed=a.seed,
                        device=a.device, threads=a.threads, precision=a.precision,
                        workers=a.workers, rotate_prob=a.rotate_prob,
                        roll_jitter=a.roll_jitter, occlude_prob=a.occlude_prob, blur_prob=a.blur_prob,
                        balance=a.balance, ema=a.ema)
    try:
        res = train(opts, train_s, val_s, progress)
    except (CheckpointError, ValueError) as exc:
        print(f"drr-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndrr-train: interrupted; the last completed epoch is in " + str(Path(a.out) / "last.pt"), file=sys.stderr)
        return 130
    print(f"drr-train: best checkpoint {res.best_path}")
    if a.export:
        # the last epoch, not the best: the validation faces judge the model, they do not pick it
        return export_main([str(res.last_path), a.export])
    return 0


def _fine_tune(a: argparse.Namespace, samples, progress) -> int:
    """--init: the same code path as the app's Model -> Fine-tune dialog."""
    opts = FineTuneOptions(checkpoint=a.init, models_dir=a.out, held_out_fraction=a.val_fraction,
                           epochs=FineTuneOptions.epochs if a.epochs is None else a.epochs, max_minutes=a.max_minutes, lr=a.lr or 3e-4,
                           batch_size=a.batch_size, train_layers=a.train_layers, seed=a.seed, device=a.device)
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
