"""Evaluation-time ablations of trained DRR checkpoints, and several checkpoints side by side,
on the fixed validation split (truth-box protocol: crop from the tight landmark box).

    python -m bench.ablations                                   # resources/drr_default.pt
    python -m bench.ablations runs/default/best.pt runs/norec/best.pt --json /tmp/ablations.json
    python -m bench.ablations full=runs/a/best.pt no-recurrent=runs/b/best.pt

For every checkpoint the same faces are run with these initial shapes S0:
  candidates  the nearest k-means candidate to the conv8 arg-max shape S_hat (the paper's method)
  local-mean  the nearest candidate to S_hat decoded below the map's pixel: the probability-
              weighted mean over the 3 x 3 pixels around each arg-max (issue 27's lever 3;
              subpixel_shape below); its S_hat row is that decoded shape
  quarter     the same with the arg-max moved a quarter pixel towards its higher neighbour
  mean        the mean training shape (paper Table X), passed as DRR.forward(init_override=...)
The checkpoint's own initialisation (its config.init) is marked with *. Pairs trained with and
without recurrent features (drr-train ... --no-recurrent, paper Table IX) or with other options
compare in the same table; their configurations are listed under it.
Reported: inter-pupil NME (%) per stage S_hat, S0 .. SK (inter-ocular in the JSON too), AUC@0.08,
failure rate, and how many distinct candidates were chosen.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from model.candidates import nearest_candidate
from model.checkpoint import CheckpointError, load_checkpoint
from model.heatmap import from_map
from model.network import DRR

from .common import (
    DEFAULT_DATA,
    DEFAULT_SPLIT,
    HELDOUT_CHECKPOINT,
    KINDS,
    checkpoint_label,
    environment,
    load_split,
    md_table,
    pick_device,
    set_threads,
    summarise,
    truth_crops,
    write_json,
)

SUBPIXEL = ("local-mean", "quarter")
INITS = ("candidates", "local-mean", "quarter", "mean")
CONFIG_KEYS = ("backbone", "width", "input_size", "steps", "num_candidates", "lstm_hidden", "recurrent", "init",
               "sip_deconv6", "coord_prior", "heatmap_stride")


def subpixel_shape(logits: torch.Tensor, stride: int = 1, method: str = "local-mean") -> torch.Tensor:
    """S_hat decoded below the map's pixel (issue 27's lever 3), (B, p, 2) in input pixels.
    method "local-mean": the probability-weighted mean position over the 3 x 3 pixels around
    each map's arg-max (a soft-argmax that a far-away second mode cannot pull); "quarter": the
    arg-max moved a quarter pixel towards its higher neighbour on each axis (the usual
    correction of pose-estimation heatmaps). The network's own S_hat stays model.heatmap.argmax_shape."""
    b, p, h, w = logits.shape
    flat = logits.float().reshape(b * p, h * w)
    idx = flat.argmax(-1)
    x, y = idx % w, idx // w
    maps = F.pad(flat.reshape(b * p, 1, h, w), (1, 1, 1, 1), value=float("-inf"))[:, 0]
    rows = torch.arange(b * p)
    window = torch.stack([torch.stack([maps[rows, y + 1 + dy, x + 1 + dx] for dx in (-1, 0, 1)], -1)
                          for dy in (-1, 0, 1)], -2)  # (B p, 3, 3) logits, -inf outside the map
    offsets = torch.tensor([-1.0, 0.0, 1.0])
    if method == "local-mean":
        weight = torch.softmax(window.reshape(b * p, 9), -1).reshape(b * p, 3, 3)
        dx = (weight.sum(1) * offsets).sum(-1)
        dy = (weight.sum(2) * offsets).sum(-1)
    elif method == "quarter":
        dx = 0.25 * torch.sign(window[:, 1, 2] - window[:, 1, 0]).nan_to_num(0.0)
        dy = 0.25 * torch.sign(window[:, 2, 1] - window[:, 0, 1]).nan_to_num(0.0)
    else:
        raise ValueError(f"unknown sub-pixel method {method!r}: local-mean or quarter")
    xy = torch.stack([x.float() + dx, y.float() + dy], -1).reshape(b, p, 2)
    return from_map(xy, stride)


@torch.inference_mode()
def run_stages(model: DRR, crops: np.ndarray, init: str, device: str, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """S_hat, S0 .. SK (n, K + 2, p, 2) in crop pixels, and the chosen candidate per face (-1 for
    the mean shape), with S0 from the nearest candidate or the mean shape whatever the
    checkpoint's own config.init."""
    stages, chosen = [], []
    for i in range(0, len(crops), batch_size):
        x = torch.from_numpy(crops[i : i + batch_size]).permute(0, 3, 1, 2).float().to(device)
        if init == "mean":
            idx = torch.full((len(x),), -1)
            t = model(x, init_override=model.mean_shape.expand(len(x), -1, -1))
        elif init in SUBPIXEL:
            s_hat = subpixel_shape(model(x).logits, model.cfg.heatmap_stride, init)
            idx = nearest_candidate(s_hat, model.candidates)[0]
            t = replace(model(x, init_override=model.candidates[idx]), s_hat=s_hat)
        elif model.cfg.init == "candidates":
            t = model(x)
            idx = t.candidate_index
        else:  # a mean-init checkpoint: choose the candidate here (its distances are computed anyway)
            idx = model(x).candidate_distances.argmin(1)
            t = model(x, init_override=model.candidates[idx])
        stages.append(torch.cat([t.s_hat[:, None], t.shapes], 1).float().cpu().numpy())
        chosen.append(idx.cpu().numpy())
    return np.concatenate(stages), np.concatenate(chosen)


def ablate(label: str, model: DRR, crops: np.ndarray, truth: np.ndarray, device: str) -> dict:
    """Every initialisation of one checkpoint on crops cut at its input size."""
    out: dict = {"config": model.cfg.to_dict(),
                 "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "inits": {}}
    argmax_choice = None
    for init in INITS:
        stages, chosen = run_stages(model, crops, init, device)
        s = summarise(stages, truth)
        s["distinct_candidates"] = int(len(np.unique(chosen[chosen >= 0])))
        s["native"] = (init == model.cfg.init)
        if init == "candidates":
            argmax_choice = chosen
        elif init in SUBPIXEL and argmax_choice is not None:
            s["other_candidate"] = int((chosen != argmax_choice).sum())  # faces whose S0 changed
        out["inits"][init] = s
    return out


def format_results(results: dict[str, dict], kind: str = "inter-pupil") -> str:
    cols = [(label, init) for label, r in results.items() for init in r["inits"]]

    def head(label: str, init: str) -> str:
        return f"{label}: {init}{'*' if results[label]['inits'][init]['native'] else ''}"

    first = results[cols[0][0]]["inits"][cols[0][1]]
    stages = list(first[kind]["steps"])
    rows = [[s] + [results[lb]["inits"][i][kind]["steps"].get(s) for lb, i in cols] for s in stages]
    rows.append(["AUC@0.08"] + [f"{results[lb]['inits'][i][kind]['auc@0.08']:.3f}" for lb, i in cols])
    rows.append(["failure > 0.08"] + [f"{results[lb]['inits'][i][kind]['failure@0.08'] * 100:.1f}%" for lb, i in cols])
    rows.append(["distinct candidates"] + [results[lb]["inits"][i]["distinct_candidates"] if i != "mean" else None
                                          for lb, i in cols])
    rows.append(["S0 not the arg-max's"] + [results[lb]["inits"][i].get("other_candidate") for lb, i in cols])
    table = md_table([f"{kind} NME %"] + [head(lb, i) for lb, i in cols], rows)
    conf = md_table(["checkpoint"] + list(CONFIG_KEYS) + ["params M"],
                    [[lb] + [str(r["config"].get(k)) for k in CONFIG_KEYS] + [f"{r['params_m']:.2f}"]
                     for lb, r in results.items()])
    return f"{table}\n\n* = the checkpoint's own initialisation\n\n{conf}"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.ablations", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="*", metavar="[LABEL=]CHECKPOINT",
                    help=f"checkpoints to compare (default: {HELDOUT_CHECKPOINT})")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="300w_train folder (default: %(default)s)")
    ap.add_argument("--names", default=str(DEFAULT_SPLIT), help="validation split file (default: %(default)s)")
    ap.add_argument("--limit", type=int, help="only the first N faces of the split (quick runs)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = all cores)")
    ap.add_argument("--json", help="write the results here")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    set_threads(a.threads)
    specs = a.checkpoints or [str(HELDOUT_CHECKPOINT)]
    try:
        device = pick_device(a.device)
        samples, problems = load_split(a.data, a.names, a.limit)
        models = []
        for spec in specs:
            label, path = checkpoint_label(spec)
            if any(label == m[0] for m in models):
                label = f"{label} ({len(models) + 1})"
            models.append((label, path, load_checkpoint(path)[0].to(device)))
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"bench.ablations: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    results: dict[str, dict] = {}
    crops_by_size: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for label, path, model in models:
        size = model.cfg.input_size
        if size not in crops_by_size:
            crops_by_size[size] = truth_crops(samples, size)
        crops, truth = crops_by_size[size]
        if len(truth[0]) != model.cfg.num_points:
            print(f"bench.ablations: {path}: model has {model.cfg.num_points} points, data {len(truth[0])}",
                  file=sys.stderr)
            return 2
        results[label] = {"checkpoint": str(path), **ablate(label, model, crops, truth, device)}
    print(f"{len(samples)} validation faces ({a.names}), truth-box crops\n")
    for kind in KINDS[:1]:
        print(format_results(results, kind))
    if a.json:
        write_json(a.json, {"faces": len(samples), "data": a.data, "names": a.names, "limit": a.limit,
                            "skipped": problems, "environment": environment(device), "checkpoints": results})
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
