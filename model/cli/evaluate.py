"""drr-eval: inter-pupil and inter-ocular NME per step (S_hat, S0 .. SK), AUC@0.08, failure rate
and CED of a checkpoint on annotated pictures (model.evaluate does the work); with --predictions,
a clip's predicted .pts folder against its ground truth folder (NME and jitter per frame)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..annotation_files import CLIP_SIDECAR, is_clip_folder, read_clip
from ..checkpoint import CheckpointError
from ..data import find_samples, read_name_list
from ..evaluate import evaluate, evaluate_clip, format_clip_table, format_table, write_ced
from ..inference import PRECISIONS, keep_freed_memory
from ..layout import layout_for
from ..predict import Predictor
from ..qa import rank_faces, write_qa_csv


def evaluate_clips(truth_folders: list[str], predictions: Path, json_path: str | None) -> int:
    """Predicted clip folders against their ground truth (model.evaluate.evaluate_clip)."""
    results, failed = {}, 0
    for folder in map(Path, truth_folders):
        pred_folder = predictions if len(truth_folders) == 1 and is_clip_folder(predictions) else predictions / folder.name
        try:
            for f in (folder, pred_folder):
                if not f.is_dir() or not is_clip_folder(f):
                    raise ValueError(f"{f}: not a clip folder (000001.pts, ... or {CLIP_SIDECAR})")
            truth, problems = read_clip(folder)
            pred, pred_problems = read_clip(pred_folder)
            for p in problems + pred_problems:
                print(f"skipped: {p}", file=sys.stderr)
            summary = evaluate_clip(pred, truth)
        except ValueError as exc:
            print(f"drr-eval: {exc}", file=sys.stderr)
            failed += 1
            continue
        results[folder.name] = summary
        print(f"{folder.name}: {summary['matched']} of {summary['faces']} annotated faces on {summary['frames']} frames "
              f"matched by {pred_folder} ({summary['missed']} missed)")
        print(format_clip_table(summary))
    if json_path and results:
        Path(json_path).write_text(json.dumps(results, indent=2))
    return 2 if failed else 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drr-eval", description=__doc__)
    ap.add_argument("data", nargs="+", help="folders of pictures with same-stem .pts")
    ap.add_argument("--checkpoint", help="default: the shipped model")
    ap.add_argument("--names", help="evaluate only these names (e.g. resources/val_split.txt)")
    ap.add_argument("--boxes", default="truth", help="'truth' (annotation box), 'detector', or a boxes.json")
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--mirror-average", action="store_true",
                    help="also run each face mirrored and average the two shapes (more accurate, slower)")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="auto (default): bf16 backbone on a CPU with native bf16, else fp32")
    ap.add_argument("--json", help="write the summary as JSON here")
    ap.add_argument("--ced", help="write the CED curve as PREFIX.csv and PREFIX.png")
    ap.add_argument("--qa", metavar="CSV",
                    help="annotation QA: rank the faces by how far the model disagrees with their points "
                         "(discounted by its own doubt; implies --mirror-average), most suspicious first")
    ap.add_argument("--predictions", metavar="DIR",
                    help="video: score a clip folder of predicted .pts (drr-predict clip.mp4 --out writes "
                         "OUT/CLIP/000001.pts, ...) against the clip folder given as data, its ground truth in "
                         "the same layout; for several clips, DIR holds one folder per clip, named as theirs. "
                         "No model is run")
    return ap


def read_boxes(mode: str) -> tuple[str, dict[str, np.ndarray] | None]:
    """(box mode, boxes by name): 'truth' and 'detector' as given, else a boxes.json file's boxes;
    ValueError naming the file when it cannot be used."""
    if mode in ("truth", "detector"):
        return mode, None
    try:
        return "file", {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(Path(mode).read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{mode}: not a usable boxes file ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    keep_freed_memory()  # a tool that predicts in a loop (see model.inference)
    if a.predictions:
        return evaluate_clips(a.data, Path(a.predictions), a.json)
    try:
        predictor = Predictor.load(a.checkpoint, a.device, a.mirror_average or bool(a.qa), a.precision)
    except CheckpointError as exc:
        print(f"drr-eval: {exc}", file=sys.stderr)
        return 2
    samples, problems = find_samples(a.data, predictor.config.num_points)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if a.names:
        keep = read_name_list(a.names)
        samples = [s for s in samples if s.name in keep]
    if not samples:
        print(f"drr-eval: no annotated pictures found in {', '.join(a.data)}", file=sys.stderr)
        return 2
    try:
        mode, box_file = read_boxes(a.boxes)
        ev = evaluate(predictor, samples, mode, box_file)
    except ValueError as exc:
        print(f"drr-eval: {exc}", file=sys.stderr)
        return 2
    for s in ev.skipped:
        print(f"skipped: {s}", file=sys.stderr)
    summary = ev.summary()
    summary["checkpoint"] = str(predictor.path)
    summary["boxes"] = a.boxes
    summary["mirror_average"] = predictor.mirror_average
    print(f"{summary['faces']} faces ({summary['skipped']} skipped), checkpoint {predictor.path}")
    print(format_table(summary))
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))
    if a.qa:
        layout = layout_for(ev.truth.shape[1])
        ranked = rank_faces(ev.names, ev.stages[:, -1], ev.truth, layout, ev.gaps)
        write_qa_csv(a.qa, ranked, layout)
        top = ", ".join(f"{f.name} ({f.score:.1f})" for f in ranked[:3])
        print(f"QA ranking written to {a.qa}; most suspicious: {top}")
    if a.ced:
        e = ev.errors("inter-pupil")
        write_ced({predictor.name: e}, Path(a.ced + ".csv"), Path(a.ced + ".png"), "inter-pupil")
        print(f"CED written to {a.ced}.csv and {a.ced}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
