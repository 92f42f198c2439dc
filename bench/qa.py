"""Does annotation QA (model.qa, `drr-eval --qa`) find human mistakes? The validation faces are
predicted once as the app runs them (YuNet boxes, which do not depend on the annotation, one pass,
mirror averaging); then a copy of their annotations is corrupted at a known rate and the
ranking of the corrupted copy is scored against what was corrupted.

    python -m bench.qa                       # table + bench/results/qa.json
    python -m bench.qa --rate 0.2 --seeds 0 1 2

Corruptions, one per corrupted face, drawn with equal chance (sizes in % of the eye distance):
  swap    a left/right pair exchanged (model/layout.py's mirror order; eye, brow, mouth or jaw)
  shift   one point moved by 15-30% in a random direction (a jaw point on the ear, a brow
          corner on the hair)
  part    a whole part (an eye, a brow, the nose, the mouth) shifted by 8-15%
Reported: precision and recall of the top-k faces (k = the number corrupted), the area under
the ROC of the face score, and recall per corruption.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.geometry import box_of_points
from model.images import read_image
from model.layout import layout_for
from model.metrics import normaliser
from model.predict import Predictor, pre_label
from model.qa import rank_faces

from .common import DEFAULT_DATA, DEFAULT_OUT, DEFAULT_SPLIT, HELDOUT_CHECKPOINT, load_split, md_table, write_json

KINDS = ("swap", "shift", "part")


def corrupt(truth: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, dict[int, str]]:
    layout = layout_for(truth.shape[1])
    mirror = layout.mirror_array()
    pairs = [(i, int(mirror[i])) for i in range(len(mirror)) if mirror[i] > i]
    parts = [p for p in layout.parts if p.name not in ("jaw",)]
    out, what = truth.copy(), {}
    iod = normaliser(truth, layout)
    for i in np.flatnonzero(rng.random(len(truth)) < rate):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        if kind == "swap":
            a, b = pairs[int(rng.integers(len(pairs)))]
            out[i, [a, b]] = out[i, [b, a]]
        elif kind == "shift":
            k = int(rng.integers(truth.shape[1]))
            t = rng.uniform(0, 2 * np.pi)
            out[i, k] += rng.uniform(0.15, 0.30) * iod[i] * np.array([np.cos(t), np.sin(t)])
        else:
            part = parts[int(rng.integers(len(parts)))]
            t = rng.uniform(0, 2 * np.pi)
            out[i, list(part.indices)] += rng.uniform(0.08, 0.15) * iod[i] * np.array([np.cos(t), np.sin(t)])
        what[int(i)] = kind
    return out, what


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.qa", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(HELDOUT_CHECKPOINT))
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--names", default=str(DEFAULT_SPLIT))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--rate", type=float, default=0.2, help="share of faces corrupted")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", default=str(DEFAULT_OUT / "qa.json"))
    ap.add_argument("--cache", help="predictions saved here (.npz) and read back on the next run")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    samples, _ = load_split(a.data, a.names, a.limit)
    predictor = Predictor.load(a.checkpoint, "cpu", mirror_average=True)
    names, pred, truth, gaps = [], [], [], []
    if a.cache and Path(a.cache).is_file():
        z = np.load(a.cache)
        names, pred, truth, gaps = list(z["names"]), list(z["pred"]), list(z["truth"]), list(z["gaps"])
        samples = []
    for s in tqdm(samples, desc="faces", unit="face", disable=a.quiet):
        img = read_image(s.image)
        r = pre_label(predictor, img, box_of_points(s.points))  # as the app runs
        if r is None:
            continue
        names.append(s.name)
        pred.append(r.points)
        truth.append(s.points)
        gaps.append(r.uncertainty)
    pred, truth = np.stack(pred), np.stack(truth)
    if a.cache and not Path(a.cache).is_file():
        np.savez(a.cache, names=np.array(names), pred=pred, truth=truth, gaps=np.array(gaps, dtype=np.float64))
    layout = layout_for(truth.shape[1])
    runs = []
    for seed, per_point in [(s, p) for p in (True, False) for s in a.seeds]:
        bad, what = corrupt(truth, a.rate, np.random.default_rng(seed))
        ranked = rank_faces(names, pred, bad, layout, [float(g) for g in gaps], per_point=per_point)
        order = [names.index(f.name) for f in ranked]
        scores = np.array([f.score for f in ranked])
        positive = np.array([i in what for i in order])
        k = len(what)
        top = positive[:k]
        in_top = set(order[:k])
        per_kind = {}
        for kind in KINDS:
            faces = [i for i, w in what.items() if w == kind]
            per_kind[kind] = float(np.mean([i in in_top for i in faces])) if faces else None
        runs.append({"seed": seed, "per_point": per_point, "corrupted": k, "precision_at_k": float(top.mean()), "recall_at_k": float(top.mean()),
                     "recall_at_2k": float(positive[: 2 * k].sum() / max(k, 1)), "roc_auc": roc_auc(scores, positive),
                     "recall_by_kind_at_k": per_kind})
    rows = [["per point" if r["per_point"] else "plain", r["seed"], r["corrupted"], f"{r['precision_at_k']:.2f}", f"{r['recall_at_2k']:.2f}", f"{r['roc_auc']:.3f}",
             " ".join(f"{k} {v:.2f}" for k, v in r["recall_by_kind_at_k"].items() if v is not None)] for r in runs]
    print(f"{len(names)} faces (YuNet found), {a.rate:.0%} corrupted per seed; checkpoint {predictor.path}")
    print(md_table(["score", "seed", "corrupted faces k", "precision = recall at k", "recall at 2k", "ROC AUC", "recall at k by kind"],
                   rows))
    write_json(a.json, {"checkpoint": str(predictor.path), "faces": len(names), "rate": a.rate, "runs": runs})
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
