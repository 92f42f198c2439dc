"""Copy the 300-W training faces into an ignored folder small enough to travel to a lent GPU
machine (its working tree may hold 64 MiB; the q95 originals are 95 MB).

The pictures are re-encoded at JPEG quality 85 (47 MiB), the .pts files copied as they are,
and the folder names kept, so that resources/val_split.txt still names the held-out faces.
The data is research-only: the target folder is in .gitignore and must never be committed.

    python -m bench.gpu.pack_faces ../shared/data/300w_train .gpu_data/300w_train
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2
from tqdm import tqdm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("target")
    ap.add_argument("--quality", type=int, default=85)
    a = ap.parse_args(argv)
    src, dst = Path(a.source), Path(a.target)
    pictures = sorted(src.rglob("*.jpg"))
    if not pictures:
        print(f"pack_faces: no .jpg pictures under {src}", file=sys.stderr)
        return 2
    for jpg in tqdm(pictures, unit="face"):
        pts = jpg.with_suffix(".pts")
        if not pts.exists():
            continue
        out = dst / jpg.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".jpg", cv2.imread(str(jpg)), [cv2.IMWRITE_JPEG_QUALITY, a.quality])
        if not ok:
            print(f"pack_faces: {jpg}: could not re-encode", file=sys.stderr)
            return 2
        out.write_bytes(data.tobytes())
        shutil.copyfile(pts, out.with_suffix(".pts"))
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"{dst}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
