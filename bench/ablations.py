"""Evaluation-time ablations of trained DRR checkpoints, and several checkpoints side by side,
on the fixed validation split (truth-box protocol: crop from the tight landmark box).

    python -m bench.ablations                                   # resources/drr_default.pt
    python -m bench.ablations runs/default/best.pt runs/norec/best.pt --json /tmp/ablations.json
    python -m bench.ablations full=runs/a/best.pt no-recurrent=runs/b/best.pt

For every checkpoint the same faces are run with two initial shapes S0:
  candidates  the nearest k-means candidate to the conv8 arg-max shape S_hat (the paper's method)
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

import numpy as np
import torch

from model.checkpoint import CheckpointError, load_checkpoint
from model.network import DRR

from .common import (
    DEFAULT_CHECKPOINT,
    DEFAULT_DATA,
    DEFAULT_SPLIT,
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

INITS = ("candidates", "mean")
CONFIG_KEYS = ("backbone", "width", "input_size", "steps", "num_candidates", "lstm_hidden", "recurrent", "init",
               "sip_deconv6", "coord_prior", "heatmap_stride")


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
    """Both initialisations of one checkpoint on crops cut at its input size."""
    out: dict = {"config": model.cfg.to_dict(),
                 "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "inits": {}}
    for init in INITS:
        stages, chosen = run_stages(model, crops, init, device)
        s = summarise(stages, truth)
        s["distinct_candidates"] = int(len(np.unique(chosen[chosen >= 0])))
        s["native"] = (init == model.cfg.init)
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
    rows.append(["distinct candidates"] + [results[lb]["inits"][i]["distinct_candidates"] if i == "candidates" else None
                                          for lb, i in cols])
    table = md_table([f"{kind} NME %"] + [head(lb, i) for lb, i in cols], rows)
    conf = md_table(["checkpoint"] + list(CONFIG_KEYS) + ["params M"],
                    [[lb] + [str(r["config"].get(k)) for k in CONFIG_KEYS] + [f"{r['params_m']:.2f}"]
                     for lb, r in results.items()])
    return f"{table}\n\n* = the checkpoint's own initialisation\n\n{conf}"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.ablations", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="*", metavar="[LABEL=]CHECKPOINT",
                    help=f"checkpoints to compare (default: {DEFAULT_CHECKPOINT})")
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
    specs = a.checkpoints or [str(DEFAULT_CHECKPOINT)]
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
