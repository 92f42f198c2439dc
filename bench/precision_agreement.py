"""Do the fp32 and bf16 CPU paths agree on this machine? Per validation face (annotation box,
shipped model): the candidate each precision starts from, and how far Ŝ, S0 and S8 move between
them, in % of the eye-corner distance.

    python -m bench.precision_agreement                     # the first 12 validation faces
    python -m bench.precision_agreement --faces 202         # all of them

S0 is the candidate nearest to Ŝ, a discontinuous choice: a face whose two nearest candidates
are almost equally near can start from another one when a rounding moves Ŝ slightly. Drift
in the bf16 path would instead move every face.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from model import geometry
from model.images import read_image
from model.predict import Predictor

from .common import DEFAULT_DATA, DEFAULT_SPLIT, environment, load_split


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.precision_agreement", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--faces", type=int, default=12, help="the first N names of resources/val_split.txt")
    a = ap.parse_args(argv)
    try:
        samples, _ = load_split(a.data, DEFAULT_SPLIT, a.faces)
    except (OSError, ValueError) as exc:
        print(f"precision_agreement: {exc}", file=sys.stderr)
        return 2
    env = environment()
    print(f"torch {env['torch']}, {env['cpu']}, {env['cpu_capability']}, native bf16 {env['native_bf16']}")
    preds = {p: Predictor.load(None, "cpu", mirror_average=False, precision=p) for p in ("fp32", "bf16")}
    print("| face | candidate fp32 / bf16 | Ŝ moved % | S0 moved % | S8 moved % | error fp32 → bf16 % |")
    print("|---|---|---|---|---|---|")
    flips = 0
    for s in samples:
        img = read_image(s.image)
        box = geometry.box_of_points(s.points)
        r = {p: preds[p].inference(img, [box])[0] for p in preds}
        iod = np.linalg.norm(s.points[36] - s.points[45]) / 100.0

        moved = {attr: _mean_distance(getattr(r["fp32"], attr), getattr(r["bf16"], attr)) / iod
                 for attr in ("s_hat", "s0", "points")}
        err = {p: _mean_distance(r[p].points, s.points) / iod for p in r}
        flips += r["fp32"].candidate_index != r["bf16"].candidate_index
        print(f"| {s.name} | {r['fp32'].candidate_index} / {r['bf16'].candidate_index} | {moved['s_hat']:.2f} | "
              f"{moved['s0']:.2f} | {moved['points']:.2f} | {err['fp32']:.1f} → {err['bf16']:.1f} |")
    print(f"\n{flips} of {len(samples)} faces started from another candidate in bf16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
