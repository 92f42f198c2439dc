"""More passes of the network per face at test time (issue 34: a smaller pre-label error means
fewer corrections), measured the way of bench.annotator.

    python -m bench.extra_passes                      # validation split, the held-out twin, its statistics
    python -m bench.extra_passes --faces DIR --checkpoint OTHER.pt --limit 100

Each face is pre-labelled as the app does (model.predict.pre_label: YuNet's box, one
mirror-averaged pass); then the network runs again on that box scaled (s) and rolled (r degrees),
each pass mirror-averaged, and the points of the app's pass and the extra passes are averaged.
Reported per set of extra passes: inter-ocular NME % and the simulated annotator's corrections
per face (assisted, the statistics given) at tau 0.05 / 0.07 / 0.10.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from model.cli.correction import pre_label_results
from model.correction import CorrectionModel, stats_path
from model.data import find_samples
from model.images import read_image
from model.predict import Predictor

from .annotator import TAUS, ocular, simulate
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

# (scale, roll in degrees) of each extra pass, on the box of the app's pass
PASSES = ((0.95, 0.0), (1.05, 0.0), (0.92, 0.0), (1.08, 0.0), (1.0, 6.0), (1.0, -6.0), (1.05, 6.0), (0.95, -6.0))
SETS = {"app (no extra pass)": [], "scales 0.95, 1.05": [0, 1], "scales 0.92-1.08": [0, 1, 2, 3],
        "rolls +-6": [4, 5], "scales 0.95, 1.05 + rolls +-6": [0, 1, 4, 5], "all 8": list(range(8))}


def scaled_box(box: np.ndarray, scale: float) -> np.ndarray:
    centre, size = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * scale
    return np.r_[centre - size / 2, centre + size / 2]


def extra_points(predictor: Predictor, samples: list, labels: list) -> np.ndarray:
    """(n, len(PASSES), p, 2): every extra pass's points for every face."""
    out = []
    for s, r in zip(samples, labels):
        boxes = [scaled_box(np.asarray(r.box, float), sc) for sc, _ in PASSES]
        out.append(np.stack([q.points for q in predictor.first_pass(read_image(s.image), boxes,
                                                                      [a for _, a in PASSES])]))
    return np.stack(out)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.extra_passes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT))
    ap.add_argument("--stats", default=None, help="assisted correction's statistics (default: the checkpoint's)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--split", default=str(DEFAULT_SPLIT))
    ap.add_argument("--faces", default=None, help="a folder of annotated faces instead of the validation split")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(DEFAULT_OUT / "extra_passes.json"))
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    set_threads(a.threads)
    try:
        if a.faces:
            samples = find_samples(a.faces, 68)[0][: a.limit]
        else:
            samples = load_split(a.data, a.split, a.limit)[0]
        predictor = Predictor.load(a.checkpoint, mirror_average=True)
        stats = CorrectionModel.load(a.stats or stats_path(Path(a.checkpoint)), 68)
    except (OSError, ValueError) as exc:
        print(f"bench.extra_passes: {exc}", file=sys.stderr)
        return 2
    labels, missed = pre_label_results(predictor, samples, "detector", True)
    truth = np.stack([s.points for s in samples])
    app = np.stack([r.points for r in labels])
    extra = extra_points(predictor, samples, labels)
    results, rows = {}, []
    for name, idx in SETS.items():
        points = (extra[:, idx].sum(1) + app) / (len(idx) + 1)
        nme = 100 * float(np.mean([np.linalg.norm(p - t, axis=1).mean() / ocular(t) for p, t in zip(points, truth)]))
        corrections = {tau: float(np.mean([simulate(p, t, tau, stats)[0] for p, t in zip(points, truth)]))
                       for tau in TAUS}
        results[name] = {"passes": [PASSES[i] for i in idx], "nme_inter_ocular": nme, "corrections": corrections}
        rows.append([name, 2 * (len(idx) + 1), f"{nme:.3f}", *(f"{corrections[t]:.2f}" for t in TAUS)])
    print(md_table(["extra passes", "crops a face", "NME %", *(f"corrections @{t}" for t in TAUS)], rows))
    write_json(a.json, {"faces": len(samples), "detector_missed": missed, "checkpoint": a.checkpoint,
                        "statistics": a.stats or str(stats_path(Path(a.checkpoint))), "sets": results,
                        "environment": environment("cpu")})
    print(f"\nwritten {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
