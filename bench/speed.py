"""Speed of the DRR presets (model.config.PRESETS) and of trained checkpoints, in ms per face.

    python -m bench.speed                                      # every preset, CPU (+ CUDA if present)
    python -m bench.speed --presets default small-wide --quick --json /tmp/speed.json
    python -m bench.speed --presets default --checkpoint resources/drr_default.pt

For each model, device (cpu, and cuda when available), precision (the Predictor's: fp32, and
bf16 = backbone and conv8 in bfloat16; on CUDA, bf16 autocast) and batch size (1 and 8) it
times, under torch.inference_mode:
  backbone    model.backbone on normalised crops (conv-deconv only)
  full trace  Predictor.run_crops: backbone + conv8 + arg-max + candidate choice + K steps
              (what every face costs; crop cutting and result mapping are not included)
Each number is the median of up to --repeats runs after --warmup runs (a measurement stops
early after --max-seconds once 3 runs are in), divided by the batch size. Presets use randomly
initialised weights (speed does not depend on the values). The target is the default model's
full trace at batch 1 <= 12 ms/face on CPU (issue 17). vgg19 at 256 costs seconds per face on a laptop CPU;
use --presets and --quick to keep a run short. bf16 is only fast on CPUs with native bf16
(AVX512-BF16 / AMX; the Predictor's default "auto" picks it there); elsewhere it is emulated
and several times slower than fp32.
Timings taken while other processes use the cores mean little (torch's threads spin-wait for
each other): measure on an idle machine, or compare with --threads 1.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext

import numpy as np
import torch

from model.checkpoint import CheckpointError, load_checkpoint
from model.config import PRESETS, DRRConfig
from model.network import DRR
from model.predict import Predictor

from .common import (
    DEFAULT_CHECKPOINT,
    checkpoint_label,
    environment,
    md_table,
    set_threads,
    synchroniser,
    time_ms,
    write_json,
)

TARGET_MS = 12.0  # issue 17: the full 8-step trace at batch 1 (bf16 where native)


def random_model(preset: str, seed: int = 0) -> DRR:
    """A preset's network with random weights and plausible candidate shapes (for timing)."""
    torch.manual_seed(seed)
    cfg = DRRConfig(**PRESETS[preset])
    model = DRR(cfg)
    rng = np.random.default_rng(seed)
    s = cfg.input_size
    mean = rng.uniform(0.3 * s, 0.7 * s, size=(cfg.num_points, 2))
    cands = mean[None] + rng.normal(0, 0.03 * s, size=(cfg.num_candidates, cfg.num_points, 2))
    model.set_shapes(torch.from_numpy(cands).float(), torch.from_numpy(mean).float())
    return model.eval()


def devices(choice: str) -> list[str]:
    if choice == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if choice in ("cuda", "both") and not torch.cuda.is_available():
        raise ValueError("--devices cuda asked for, but no CUDA device is available")
    return ["cpu", "cuda"] if choice == "both" else [choice]


def measure(model: DRR, device: str, dtype: str, batch: int, opts: argparse.Namespace) -> dict:
    """ms/face of the backbone and of the full trace for one setting. dtype is the Predictor's
    precision (bf16: backbone and conv8 in bfloat16); on CUDA bf16 means autocast."""
    cuda_bf16 = device == "cuda" and dtype == "bf16"
    predictor = Predictor(model, device=device, mirror_average=False, precision="fp32" if cuda_bf16 else dtype)
    size = model.cfg.input_size
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, size, size, generator=gen) * 255).to(device)
    frozen = predictor.model  # the frozen copy the Predictor runs (model.inference)
    xn = ((x - frozen.pixel_mean) / frozen.pixel_std).to(frozen.dtype)
    if device == "cpu":
        xn = xn.contiguous(memory_format=torch.channels_last)
    amp = torch.autocast(device_type=device, dtype=torch.bfloat16) if cuda_bf16 else nullcontext()
    kw = dict(warmup=opts.warmup, repeats=opts.repeats, max_seconds=opts.max_seconds, sync=synchroniser(device))
    with torch.inference_mode(), amp:
        bb = time_ms(lambda: frozen.backbone(xn), **kw)
        full = time_ms(lambda: predictor.run_crops(x), **kw)
    return {
        "backbone_ms_per_face": bb["median_ms"] / batch, "full_ms_per_face": full["median_ms"] / batch,
        "backbone_runs": bb["runs"], "full_runs": full["runs"],
        "outside_backbone_pct": 100.0 * max(full["median_ms"] - bb["median_ms"], 0.0) / full["median_ms"],
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="*", default=list(PRESETS), choices=list(PRESETS), metavar="PRESET",
                    help=f"presets with random weights (default: all of {', '.join(PRESETS)}); none: --presets")
    ap.add_argument("--checkpoint", nargs="*", default=None, metavar="[LABEL=]PATH",
                    help=f"also time these checkpoints (default: {DEFAULT_CHECKPOINT.name} if it exists)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    ap.add_argument("--devices", choices=["auto", "cpu", "cuda", "both"], default="auto",
                    help="auto: cpu, plus cuda when available")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all cores)")
    # a few-ms model needs hundreds of runs for a stable median on a shared machine; slow
    # presets stop at --max-seconds
    ap.add_argument("--repeats", type=int, default=300, help="timed runs per measurement (median)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10.0, help="time cap per measurement")
    ap.add_argument("--quick", action="store_true", help="at most 30 runs, 3 warm-ups, 5 s cap per measurement")
    ap.add_argument("--json", help="write the results here")
    return ap


def format_results(rows: list[dict], env: dict) -> str:
    table = md_table(
        ["model", "device", "dtype", "batch", "backbone ms/face", "full trace ms/face", "outside backbone", "params M"],
        [[r["model"], r["device"], r["dtype"], r["batch"], r["backbone_ms_per_face"], r["full_ms_per_face"],
          f"{r['outside_backbone_pct']:.0f}%", f"{r['params_m']:.2f}"] for r in rows])
    out = [table, f"\n{env['cpu']} ({env['cpu_capability']}, native bf16: {env['native_bf16']}), "
                  f"{env['cpu_threads']} threads, torch {env['torch']}, cuda {env['cuda']}, "
                  f"load average {env['load_average']}"]
    target = [r for r in rows if r["model"] == "default" and r["device"] == "cpu" and r["batch"] == 1]
    if target:
        best = min(target, key=lambda r: r["full_ms_per_face"])
        ok = "met" if best["full_ms_per_face"] <= TARGET_MS else "NOT met"
        out.append(f"Target (default, CPU, full trace, batch 1 <= {TARGET_MS:g} ms/face): {ok} — "
                   + ", ".join(f"{r['dtype']} {r['full_ms_per_face']:.2f} ms" for r in target))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if a.quick:
        a.repeats, a.warmup, a.max_seconds = min(a.repeats, 30), 3, min(a.max_seconds, 5.0)
    threads = set_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    try:
        devs = devices(a.devices)
    except ValueError as exc:
        print(f"bench.speed: {exc}", file=sys.stderr)
        return 2
    models: list[tuple[str, str, DRR]] = [(p, "preset", random_model(p)) for p in a.presets]
    specs = a.checkpoint if a.checkpoint is not None else ([str(DEFAULT_CHECKPOINT)] if DEFAULT_CHECKPOINT.is_file() else [])
    for spec in specs:
        label, path = checkpoint_label(spec)
        try:
            models.append((f"checkpoint {label}", str(path), load_checkpoint(path)[0]))
        except CheckpointError as exc:
            print(f"bench.speed: {exc}", file=sys.stderr)
            return 2
    if not models:
        print("bench.speed: nothing to time (no --presets and no checkpoint)", file=sys.stderr)
        return 2
    rows = []
    for name, source, model in models:
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for dev in devs:
            for dtype in a.dtypes:
                for batch in a.batches:
                    r = measure(model, dev, dtype, batch, a)
                    rows.append({"model": name, "source": source, "config": model.cfg.to_dict(), "device": dev,
                                 "dtype": dtype, "batch": batch, "params_m": params, **r})
                    print(f"{name:>24} {dev} {dtype} batch {batch}: backbone {r['backbone_ms_per_face']:.2f}, "
                          f"full {r['full_ms_per_face']:.2f} ms/face", file=sys.stderr, flush=True)
        model.to("cpu")
    env = environment(",".join(devs))
    env["cpu_threads"] = threads
    print(format_results(rows, env))
    if a.json:
        write_json(a.json, {"target_ms_per_face": TARGET_MS, "environment": env,
                            "settings": {"repeats": a.repeats, "warmup": a.warmup, "max_seconds": a.max_seconds},
                            "results": rows})
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
