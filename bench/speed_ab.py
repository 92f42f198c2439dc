"""The batch-1 full trace of two versions of the code side by side, on the same checkpoint:

    git worktree add /tmp/before COMMIT
    python -m bench.speed_ab /tmp/before . --checkpoint resources/drr_default.pt --rounds 3

Each round runs every version in a fresh process (its `model` package first on sys.path),
alternating, so that a busy moment of the machine hits both. Prints a table of the medians
(ms/face, fp32 unless --precision) and writes --json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .common import md_table

PROBE = """
import statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(int(sys.argv[4]))
from model.predict import Predictor
p = Predictor.load(sys.argv[2], "cpu", mirror_average=False, precision=sys.argv[3])
x = torch.rand(1, 3, p.config.input_size, p.config.input_size) * 255
for _ in range(20):
    p.run_crops(x)
ts = []
for _ in range(200):
    t = time.perf_counter(); p.run_crops(x); ts.append(time.perf_counter() - t)
print(statistics.median(ts) * 1000)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.speed_ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs=2, help="two checkouts (folders holding model/)")
    ap.add_argument("--checkpoint", default="resources/drr_default.pt")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    ckpt = str(Path(a.checkpoint).resolve())
    runs: dict[str, list[float]] = {r: [] for r in a.roots}
    for _ in range(a.rounds):
        for root in a.roots:
            out = subprocess.run([sys.executable, "-c", PROBE, str(Path(root).resolve()), ckpt, a.precision,
                                  str(a.threads)], capture_output=True, text=True, cwd="/")
            if out.returncode:
                print(f"bench.speed_ab: {root}: {out.stderr.strip().splitlines()[-1]}", file=sys.stderr)
                return 2
            runs[root].append(float(out.stdout.strip().splitlines()[-1]))
    rows = [[r, *[f"{v:.2f}" for v in runs[r]], f"{sorted(runs[r])[len(runs[r]) // 2]:.2f}"] for r in a.roots]
    print(md_table(["code", *[f"round {i + 1}" for i in range(a.rounds)], "median"], rows))
    if a.json:
        Path(a.json).write_text(json.dumps({"checkpoint": ckpt, "precision": a.precision, "ms": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
