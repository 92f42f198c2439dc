"""A simulated annotator: how many points must a person move per face?

    python -m bench.annotator                                   # validation split, the app's way
    python -m bench.annotator --checkpoint runs/heldout.pt --shrinkage 0 0.1 0.3 0.5 0.7
    python -m bench.annotator --data my_faces/ --boxes truth --stats my.correction.json

For each face: pre-label it as the app does (--boxes detector: YuNet's box matched to the
annotated face, one mirror-averaged pass; --boxes truth: the annotation's tight box). d is the
ground truth's outer-eye-corner distance (points 37 and 46, 1-based). Then, until every point
not yet placed is within tau * d of the truth: take the farthest such point, put it exactly on
the truth (one correction; it is never moved again) and, in the assisted modes, let the tool
move every point not yet placed, as the app does after a drag. At most 68 corrections. The
curve: the same person's NME (mean point error / d, in %) after k = 0..10 corrections.

Modes: plain (only the dragged point moves), assisted (model.correction's conditional update),
learning (assisted, faces in a fixed order, each finished face teaching the statistics before
the next), dlib (dlib's 68-point predictor on its own HOG box, plain; on the faces HOG finds).
"app" repeats the mode the app runs by default after a drag (APP_MODE: learning).

The statistics never see the counted faces: by default the faces are split in two folds (even
and odd positions in name order), each fold counted with statistics estimated on the other from
the same checkpoint's residuals. --stats FILE uses one given statistics file for every face
instead, with its own shrinkage and learning weight unless given: the shipped product as is
(then the figures are honest only if that file was made without these faces).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.checkpoint import CheckpointError
from model.cli.correction import LEARN_WEIGHT, pre_label_results
from model.correction import DEFAULT_SHRINKAGE, CorrectionFileError, CorrectionModel, file_sha256
from model.data import Sample, find_samples
from model.detect import MIN_MATCH_IOU
from model.geometry import box_iou, box_of_points
from model.images import read_image
from model.predict import Predictor

from .accuracy import DLIB_FILE, find_dlib_model
from .common import (
    DEFAULT_DATA,
    DEFAULT_OUT,
    DEFAULT_SPLIT,
    HELDOUT_CHECKPOINT,
    dlib_hog_boxes,
    environment,
    load_split,
    md_table,
    set_threads,
    trained_on_validation,
    write_json,
)

TAUS = (0.05, 0.07, 0.10)
MODES = ("plain", "assisted", "learning", "dlib")
# what the app does by default after a drag (drr_studio.assist): the shipped statistics plus the
# lessons of every face finished in the folder, i.e. the learning mode
APP_MODE = "learning"
CURVE_CLICKS = 10


def ocular(truth: np.ndarray) -> float:
    """The counting unit d: the outer-eye-corner distance of a 68-point face (else its width)."""
    return float(np.linalg.norm(truth[36] - truth[45])) if len(truth) == 68 else float(np.ptp(truth[:, 0]))


def clicks(prediction: np.ndarray, truth: np.ndarray, corrector: CorrectionModel | None = None,
           refit=None) -> Iterator[tuple[dict[int, np.ndarray], np.ndarray]]:
    """(placed, points) before the first correction and after each: the person always puts the
    farthest point not yet placed exactly on the truth (it is never moved again); corrector None
    is plain correction. refit (start, placed) -> points: the DRR way, the refinement steps again
    from the corrector's update with the placed points held. Ends when every point is exact."""
    truth = np.asarray(truth, dtype=np.float64)
    current = np.asarray(prediction, dtype=np.float64).copy()
    placed: dict[int, np.ndarray] = {}
    yield placed, current
    for _ in range(len(truth)):
        err = np.linalg.norm(current - truth, axis=1)
        err[list(placed)] = -1.0
        k = int(np.argmax(err))
        if err[k] <= 0.0:
            return
        placed[k] = truth[k]
        if corrector is None:
            current = current.copy()
            current[k] = truth[k]
        else:
            current = corrector.update(prediction, placed)
            if refit is not None:
                current = refit(current, placed)
        yield placed, current


def simulate(prediction: np.ndarray, truth: np.ndarray, tau: float,
             corrector: CorrectionModel | None = None, refit=None) -> tuple[int, np.ndarray]:
    """(corrections, final points) for one face: clicks until every point not yet placed is
    within tau * d of the truth."""
    truth = np.asarray(truth, dtype=np.float64)
    limit = tau * ocular(truth)
    placed, current = {}, np.asarray(prediction, dtype=np.float64)
    for placed, current in clicks(prediction, truth, corrector, refit):
        err = np.linalg.norm(current - truth, axis=1)
        err[list(placed)] = -1.0
        if err.max() <= limit:
            break
    return len(placed), current


def curve(prediction: np.ndarray, truth: np.ndarray, corrector: CorrectionModel | None = None,
          refit=None, most: int = CURVE_CLICKS) -> np.ndarray:
    """The face's NME (mean point error / d, inter-ocular as tau) after k = 0..most clicks."""
    truth = np.asarray(truth, dtype=np.float64)
    d = ocular(truth)
    out: list[float] = []
    for _, current in clicks(prediction, truth, corrector, refit):
        out.append(float(np.linalg.norm(current - truth, axis=1).mean() / d))
        if len(out) > most:
            break
    return np.array(out + [0.0] * (most + 1 - len(out)))  # fewer: every point exact


def dlib_labels(samples: list[Sample], model_path: Path, progress: bool) -> list[np.ndarray | None]:
    import dlib

    from .accuracy import dlib_points

    sp = dlib.shape_predictor(str(model_path))
    out: list[np.ndarray | None] = []
    for s in tqdm(samples, desc="dlib", unit="face", disable=not progress):
        img = read_image(s.image)
        tb = box_of_points(s.points)
        iou, raw = max(((box_iou(c, tb), raw) for raw, c, _ in dlib_hog_boxes(img)), key=lambda t: t[0],
                       default=(0.0, None))
        if iou < MIN_MATCH_IOU:
            out.append(None)
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in raw)
        out.append(dlib_points(sp(img, dlib.rectangle(x0, y0, x1, y1))))
    return out


def shifted_jaw(truth: np.ndarray, f: float) -> np.ndarray:
    """(n, 68, 2) shapes with the jaw moved f x the outer-eye distance along each face's down
    direction (perpendicular to its eye line): another person's convention."""
    out = np.array(truth, dtype=np.float64)
    for t in out:
        v = t[45] - t[36]
        d = float(np.hypot(*v))
        down = np.array([-v[1], v[0]]) / max(d, 1e-9)
        t[:17] += f * d * down
    return out


def folds_of(n: int, folds: int) -> list[np.ndarray]:
    return [np.arange(f, n, folds) for f in range(folds)]


def fold_prior(preds: np.ndarray, truth: np.ndarray, part: np.ndarray, stats: CorrectionModel | None,
               shrinkage: float, learn_weight: float) -> CorrectionModel:
    """The statistics for one part of the faces: the given ones (their lessons dropped), or
    estimated from the other faces' residuals (cross-fitting)."""
    if stats is not None:
        prior = CorrectionModel.from_dict(stats.to_dict())
        prior.reset_learned()
    else:
        rest = np.setdiff1d(np.arange(len(preds)), part)
        prior = CorrectionModel.estimate(preds[rest], truth[rest])
    prior.shrinkage, prior.learn_weight = shrinkage, learn_weight
    return prior


def mode_specs(refitter=None, conditioner=None) -> dict[str, tuple[bool, object]]:
    """The assisted modes: name -> (learns from each finished face, refit hook or None). With
    conditioned steps, "app" is theirs on top of learning (what the app then runs)."""
    specs: dict[str, tuple[bool, object]] = {"assisted": (False, None), "learning": (True, None)}
    if refitter is not None:
        specs["refit"] = (False, refitter)
    if conditioner is not None:
        specs["conditioned"] = (False, conditioner)
        specs["app"] = (True, conditioner)
    return specs


def run_modes(preds: np.ndarray, truth: np.ndarray, names: list[str], tau: float, shrinkage: float,
              stats: CorrectionModel | None, folds: int, learn_weight: float,
              refitter=None, prior_truth: np.ndarray | None = None,
              curves: dict[str, np.ndarray] | None = None, conditioner=None) -> dict[str, np.ndarray]:
    """Corrections per face for plain, assisted and learning (in the faces' order); with
    refitter (face index -> refit callable), also the DRR way ("refit"); with conditioner (the
    same for model.conditioned's steps), "conditioned" and "app". The cross-fitted statistics
    are measured against prior_truth (default: truth): the data's own convention when the
    simulated person's differs. curves (a dict): filled with each mode's (n, 11) NME after
    0..10 clicks, a learning mode's with the lessons of the faces before (taught at this tau)."""
    prior_truth = truth if prior_truth is None else prior_truth
    n = len(preds)
    specs = mode_specs(refitter, conditioner)
    counts = {m: np.zeros(n, dtype=int) for m in ("plain", *specs)}
    if curves is not None:
        curves.update({m: np.zeros((n, CURVE_CLICKS + 1)) for m in counts})
    for i in range(n):
        counts["plain"][i] = simulate(preds[i], truth[i], tau)[0]
        if curves is not None:
            curves["plain"][i] = curve(preds[i], truth[i])
    parts = [np.arange(n)] if stats is not None else folds_of(n, folds)
    for part in parts:
        prior = fold_prior(preds, prior_truth, part, stats, shrinkage, learn_weight)
        learners = {m: prior.copy() for m, (learns, _) in specs.items() if learns}
        for i in part:
            for m, (learns, hook) in specs.items():
                model = learners[m] if learns else prior
                fit = hook(i) if hook is not None else None
                counts[m][i], final = simulate(preds[i], truth[i], tau, model, fit)
                if curves is not None:
                    curves[m][i] = curve(preds[i], truth[i], model, fit)
                if learns:
                    model.learn(preds[i], final, key=names[i])
    return counts


def summary(c: np.ndarray) -> dict:
    if len(c) == 0:
        return {"mean": None, "median": None, "p90": None, "faces": 0}
    return {"mean": float(np.mean(c)), "median": float(np.median(c)), "p90": float(np.percentile(c, 90)),
            "faces": int(len(c))}


def second_half(n: int, stats_given: bool, folds: int) -> np.ndarray:
    """The faces in the second half of each learning sequence."""
    parts = [np.arange(n)] if stats_given else folds_of(n, folds)
    return np.concatenate([p[len(p) // 2:] for p in parts])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.annotator", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder of pictures with .pts, searched recursively (default: the "
                    f"validation split of {DEFAULT_DATA})")
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT))
    ap.add_argument("--boxes", choices=("detector", "truth"), default="detector")
    ap.add_argument("--no-mirror", action="store_true", help="pre-label without mirror averaging")
    ap.add_argument("--taus", type=float, nargs="+", default=list(TAUS))
    ap.add_argument("--shrinkage", type=float, nargs="+",
                    help="covariance shrinkage towards the diagonal; several values: a sweep (the first is "
                    f"reported in the main table); default: the --stats file's, else {DEFAULT_SHRINKAGE}")
    ap.add_argument("--learn-weight", type=float, help="weight of a finished face against a prior face "
                    f"(default: the --stats file's, else {LEARN_WEIGHT})")
    ap.add_argument("--stats", help="one statistics file for every face instead of cross-fitting")
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--convention-shift", type=float, default=0.0, metavar="F",
                    help="simulate a person whose convention differs from the data's: the jaw (points 1-17) "
                    "placed F x the outer-eye distance lower (what learning is for; 0: the data's own)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--dlib-model")
    ap.add_argument("--json", default=str(DEFAULT_OUT / "annotator.json"))
    ap.add_argument("--refit", action="store_true", help="also the DRR way: after each correction the refinement "
                    "steps run again from the assisted update with the placed points held (one network pass each)")
    ap.add_argument("--steps", help="also model.conditioned's steps (NAME.steps.pt, made for --checkpoint): after each "
                    "correction they run from the assisted update (\"conditioned\"; \"app\" becomes them on top of "
                    "learning); needs --stats")
    ap.add_argument("--steps-features", metavar="CHECKPOINT",
                    help="the checkpoint whose frozen backbone the steps read (default: --checkpoint): steps trained "
                    "on a cross-fitted backbone's features (bench.conditioned_crossfit) beside another pre-labeller")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (0: every core; one thread took 17 s on the "
                    "validation split where two took 2 minutes next to a training run)")
    ap.add_argument("--quiet", action="store_true")
    return ap


def check_made_for(stats: CorrectionModel | None, checkpoint: Path) -> None:
    """Refuse statistics stamped for another model than the one measured (as the app would)."""
    want = (stats.model.get("sha256") if stats is not None else None) or None
    if want and want != file_sha256(checkpoint):
        raise CorrectionFileError(f"the statistics were made for {stats.model.get('name', 'another model')} "
                                  f"(sha256 {want[:12]}), not for {checkpoint.name}: the app would not use them")


def load_faces(a: argparse.Namespace) -> list[Sample]:
    if a.data:
        samples, problems = find_samples([a.data], 68)
    else:
        samples, problems = load_split(DEFAULT_DATA, DEFAULT_SPLIT, a.limit)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    samples = sorted(samples, key=lambda s: s.name)
    return samples[: a.limit] if a.limit else samples


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    set_threads(a.threads)
    try:
        samples = load_faces(a)
        predictor = Predictor.load(a.checkpoint, mirror_average=not a.no_mirror)
        stats = CorrectionModel.load(a.stats, 68) if a.stats else None
        check_made_for(stats, Path(a.checkpoint))
    except (OSError, ValueError, CheckpointError, CorrectionFileError) as exc:
        print(f"bench.annotator: {exc}", file=sys.stderr)
        return 2
    if not samples:
        print("bench.annotator: no annotated 68-point faces found", file=sys.stderr)
        return 2
    # a statistics file is measured as it ships: its own shrinkage and learning weight
    a.shrinkage = a.shrinkage or [stats.shrinkage if stats is not None else DEFAULT_SHRINKAGE]
    a.learn_weight = a.learn_weight if a.learn_weight is not None else (
        stats.learn_weight if stats is not None else LEARN_WEIGHT)
    data_truth = truth = np.stack([s.points for s in samples])
    if a.convention_shift:
        truth = shifted_jaw(truth, a.convention_shift)
    labels, missed = pre_label_results(predictor, samples, a.boxes, not a.quiet)
    preds = np.stack([r.points for r in labels])
    refitter = None
    if a.refit:
        def refitter(i: int):
            img = read_image(samples[i].image)
            return lambda start, placed: predictor.refit(img, labels[i], start, placed)
    dlib_model = None if a.no_dlib else find_dlib_model(a.dlib_model)
    dl = dlib_labels(samples, dlib_model, not a.quiet) if dlib_model else None
    if not a.no_dlib and dlib_model is None:
        print(f"bench.annotator: dlib's {DLIB_FILE} not found: no dlib column (pip install '.[bench]')",
              file=sys.stderr)
    conditioner = None
    if a.steps:
        conditioner = conditioner_for(a, samples, labels, predictor, stats)
        if conditioner is None:
            return 2
    results = measure(a, preds, truth, data_truth, [s.name for s in samples], stats, refitter, dl, conditioner)
    # e.g. the shipped all-faces model on the validation split: its own training faces
    results["trained_on_counted_faces"] = trained_on_validation(predictor) and not a.data
    report(results, a, len(samples), missed, dl)
    results.update(
        faces=len(samples), detector_missed=missed, boxes=a.boxes, mirror=not a.no_mirror,
        checkpoint=str(a.checkpoint), checkpoint_val_faces=predictor.meta.get("val_faces"),
        statistics=a.stats or f"cross-fitted, {a.folds} folds", shrinkage=a.shrinkage[0],
        convention_shift=a.convention_shift, app_mode=APP_MODE if conditioner is None else "learning + conditioned",
        steps=a.steps, steps_features=a.steps_features,
        learn_weight=a.learn_weight, dlib_found=None if dl is None else sum(p is not None for p in dl),
        environment=environment("cpu"))
    if a.json:
        write_json(a.json, results)
        print(f"\nwritten {a.json}")
    return 0


def conditioner_for(a: argparse.Namespace, samples: list[Sample], labels: list, predictor: Predictor,
                    stats: CorrectionModel | None):
    """face index -> refit hook running model.conditioned's steps from the Gaussian update (the
    face's deconv7 maps computed once); None, with a message, when the steps cannot be used."""
    from model.conditioned import ConditionedSteps, face_maps, refine

    features = predictor
    try:
        if a.steps_features:
            features = Predictor.load(a.steps_features, mirror_average=False)
        steps = ConditionedSteps.load(a.steps, a.steps_features or a.checkpoint)
    except (ValueError, CheckpointError) as exc:
        print(f"bench.annotator: {exc}", file=sys.stderr)
        return None
    if stats is None:
        print("bench.annotator: conditioned steps start from the statistics they were trained with: give --stats",
              file=sys.stderr)
        return None
    maps: dict[int, tuple] = {}

    def hook(i: int):
        if i not in maps:
            maps[i] = face_maps(features.model, read_image(samples[i].image), labels[i].crop_to_image)
        m, to_crop = maps[i]
        return lambda start, placed: refine(steps, m, to_crop, start, placed)
    return hook


def measure(a: argparse.Namespace, preds: np.ndarray, truth: np.ndarray, data_truth: np.ndarray,
            names: list[str], stats: CorrectionModel | None, refitter, dl, conditioner=None) -> dict:
    """Every mode at every tau (and shrinkage), and the curves of NME after k clicks (at the
    first tau and shrinkage: only learning's lessons depend on them)."""
    results: dict = {"corrections": {}, "median": {}, "p90": {}, "second_half": {}, "sweep": {},
                     "dlib_faces": {}}
    late = second_half(len(preds), stats is not None, a.folds)
    found = [] if dl is None else [i for i, p in enumerate(dl) if p is not None]
    curves: dict[str, np.ndarray] = {}
    for t, tau in enumerate(a.taus):
        key = f"{tau:.2f}"
        for j, shrink in enumerate(a.shrinkage):
            counts = run_modes(preds, truth, names, tau, shrink, stats, a.folds, a.learn_weight,
                               refitter if j == 0 else None, data_truth, curves if t == j == 0 else None,
                               conditioner if j == 0 else None)
            results["sweep"].setdefault(key, {})[f"{shrink:g}"] = {
                m: summary(c)["mean"] for m, c in counts.items()}
            if j:
                continue
            if dl is not None:
                counts["dlib"] = np.array([simulate(dl[i], truth[i], tau)[0] for i in found], dtype=int)
                results["dlib_faces"][key] = {m: summary(counts[m][found])["mean"] for m in ("plain", "assisted")}
            counts.setdefault("app", counts[APP_MODE])
            for m, c in counts.items():
                s = summary(c)
                results["corrections"].setdefault(key, {})[m] = s["mean"]
                results["median"].setdefault(key, {})[m] = s["median"]
                results["p90"].setdefault(key, {})[m] = s["p90"]
            results["second_half"][key] = {m: summary(counts[m][late])["mean"] for m in ("assisted", "learning")}
    if dl is not None:
        curves["dlib"] = np.array([curve(dl[i], truth[i]) for i in found]).reshape(-1, CURVE_CLICKS + 1)
    curves.setdefault("app", curves[APP_MODE])
    results["curve"] = {m: [float(v) for v in c.mean(0) * 100] if len(c) else None for m, c in curves.items()}
    results["curve_normaliser"] = "inter-ocular (outer eye corners), % as tau"
    return results


def report(results: dict, a: argparse.Namespace, n: int, missed: int, dl) -> None:
    print(f"\nCorrections per face, {n} faces, {a.boxes} boxes"
          f"{' (detector missed ' + str(missed) + ', truth box used)' if missed else ''}, "
          f"{'no mirror' if a.no_mirror else 'mirror-averaged'}, shrinkage {a.shrinkage[0]:g}, "
          f"statistics {'from ' + a.stats if a.stats else 'cross-fitted (never saw the counted faces)'}")
    if results.get("trained_on_counted_faces"):
        print("NOT HELD OUT: this checkpoint was trained with no validation faces (val_faces 0), so the counted faces "
              "were among its training faces; the held-out figures come from resources/drr_heldout.pt (the default).")
    rows = []
    for key, by_mode in results["corrections"].items():
        for m, v in by_mode.items():
            faces = n if m != "dlib" else sum(p is not None for p in dl)
            rows.append([key, m, f"{v:.2f}", f"{results['median'][key][m]:.1f}", f"{results['p90'][key][m]:.1f}",
                         faces])
    print(md_table(["tau", "mode", "mean", "median", "p90", "faces"], rows))
    print("\nSecond half of each learning sequence (mean corrections):")
    print(md_table(["tau", "assisted", "learning"],
                   [[k, f"{v['assisted']:.2f}", f"{v['learning']:.2f}"] for k, v in results["second_half"].items()]))
    if results["dlib_faces"]:
        print("\nOn the faces dlib's HOG found (mean corrections):")
        rows = [[k, f"{v['plain']:.2f}", f"{v['assisted']:.2f}", f"{results['corrections'][k]['dlib']:.2f}"]
                for k, v in results["dlib_faces"].items()]
        print(md_table(["tau", "DRR plain", "DRR assisted", "dlib plain"], rows))
    if len(a.shrinkage) > 1:
        print("\nShrinkage sweep (mean corrections, assisted / learning):")
        rows = [[k, s, f"{v['assisted']:.2f}", f"{v['learning']:.2f}"]
                for k, by in results["sweep"].items() for s, v in by.items()]
        print(md_table(["tau", "shrinkage", "assisted", "learning"], rows))
    report_curve(results["curve"], a.taus[0])


def report_curve(curves: dict, tau: float) -> None:
    print(f"\nNME (% of the outer-eye distance) after k corrections, worst point first (learning taught at tau {tau:g}):")
    rows = [[m + (" (HOG's faces)" if m == "dlib" else "")] + [f"{v:.2f}" for v in c]
            + [f"{100 * (1 - c[1] / c[0]):.0f}%" if c[0] else "—"] for m, c in curves.items() if c]
    print(md_table(["mode"] + [f"k={k}" for k in range(CURVE_CLICKS + 1)] + ["one click removes"], rows))


if __name__ == "__main__":
    sys.exit(main())
