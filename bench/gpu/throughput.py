"""Training-step throughput: faces/s of forward + backward + AdamW on synthetic crops that are
already on the device, i.e. what the model allows when the input pipeline keeps up.

    python -m bench.gpu.throughput --presets vgg19 vgg-s default --batch-sizes 32 64 --device cuda

Three variants per preset and batch size:
  step         what train() does per step, including drr_loss's float() read-outs, which make
               the host wait for the device at every step
  no-sync      the same step without any read-out (the host can queue the next step)
  backbone     forward + backward of the backbone alone (the conv-deconv's share)
Compare with the faces/s that drr-train shows to see whether the loader or the model limits a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from model.heatmap import heatmap_loss
from model.losses import drr_loss, regression_losses

from ..speed import random_model


def _time(fn, steps: int, device: torch.device) -> float:
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def measure(preset: str, batch: int, device: torch.device, steps: int, bf16: bool) -> dict:
    model = random_model(preset).train().to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model.to(memory_format=torch.channels_last)
    size = model.cfg.input_size
    g = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(batch, 3, size, size, generator=g) * 255).to(device)
    y = (model.mean_shape.cpu()[None] + torch.randn(batch, model.cfg.num_points, 2, generator=g) * 0.03 * size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    def step() -> None:
        with torch.autocast(**amp):
            trace = model(x)
        update(drr_loss(trace, y, size, 1.0, 20.0)[0])

    def no_sync() -> None:
        with torch.autocast(**amp):
            trace = model(x)
        hm = heatmap_loss(trace.logits, y, size // trace.logits.shape[-1])
        update(hm + 20.0 * regression_losses(trace, y, size).sum())

    def backbone() -> None:
        with torch.autocast(**amp):
            d6, d7 = model.backbone(((x - model.pixel_mean) / model.pixel_std).contiguous(memory_format=torch.channels_last))
        update(d6.float().mean() + d7.float().mean())

    row = {"preset": preset, "batch": batch, "device": device.type, "bf16": bf16}
    for name, fn in (("step", step), ("no-sync", no_sync), ("backbone", backbone)):
        row[name] = batch / _time(fn, steps, device)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["default"])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[32])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    rows = []
    print("| preset | batch | step faces/s | no-sync faces/s | backbone only faces/s |")
    print("|---|---|---|---|---|")
    for preset in a.presets:
        for batch in a.batch_sizes:
            r = measure(preset, batch, device, a.steps, not a.fp32)
            rows.append(r)
            print(f"| {preset} | {batch} | {r['step']:.0f} | {r['no-sync']:.0f} | {r['backbone']:.0f} |", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                       "torch": torch.__version__, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
