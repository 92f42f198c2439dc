"""Turn a training checkpoint into a small file to ship: weights in fp16 (widened back to fp32 on
load), no optimizer state, the training metadata kept.

    python -m model.cli.export runs/default/last.pt resources/drr_default.pt
"""

from __future__ import annotations

import argparse
import sys

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.cli.export", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--correction-from", metavar="HELD_OUT.pt",
                    help="also write OUT's assisted-correction statistics, measured with this held-out recipe model "
                    "on the validation faces (python -m model.cli.correction)")
    a = ap.parse_args(argv)
    try:
        model, blob = load_checkpoint(a.checkpoint)
    except CheckpointError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    meta = {**blob.get("meta", {}), "exported_from": a.checkpoint, "weights": "fp16"}
    save_checkpoint(a.out, model, meta, half=True)
    print(f"export: wrote {a.out}")
    if a.correction_from:
        from .correction import main as correction_main

        return correction_main(["--heldout", a.correction_from, "--for", a.out])
    from ..correction import stats_path

    if stats_path(a.out).exists():
        print(f"export: {stats_path(a.out).name} was made for the file this export replaced: the app will not use it; "
              "rebuild it with python -m model.cli.correction --heldout HELD_OUT.pt --for " + str(a.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
