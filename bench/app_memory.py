"""Resident memory of the app (offscreen) over a day's folder: open N pictures (copies of a few
real validation faces, written to a temporary folder), Model -> Predict all with the default
model, and read the process's resident set size as predictions arrive.

    python -m bench.app_memory                       # 1,000 pictures, table + bench/results/app_memory.json
    python -m bench.app_memory --pictures 300 --json /tmp/m.json

Targets (issue 20): peak under 1.5 GB, growth under 100 MB between the 200th and the 1,000th
picture. Takes about as long as predicting the folder (the app mirror-averages each face).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from .common import DEFAULT_DATA, DEFAULT_OUT, DEFAULT_SPLIT, load_split, md_table, write_json  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_folder(root: Path, n: int, faces: int = 5) -> Path:
    samples, _ = load_split(DEFAULT_DATA, DEFAULT_SPLIT, faces)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = samples[i % len(samples)].image
        shutil.copy(src, root / f"pic{i:05d}{src.suffix}")
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.app_memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pictures", type=int, default=1000)
    ap.add_argument("--marks", type=int, nargs="+", default=[200, 1000], help="pictures at which to report")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    ap.add_argument("--json", default=str(DEFAULT_OUT / "app_memory.json"))
    a = ap.parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from drr_studio._qt.app import warm_up
    from drr_studio._qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    warm_up()  # as drr-studio starts: imports, and the allocator setting of model.inference
    tmp = Path(tempfile.mkdtemp(prefix="drr-app-memory-"))
    try:
        folder = make_folder(tmp / "pictures", a.pictures)
        start = rss_mb()
        w = MainWindow([folder], settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
        w.resize(1200, 800)
        w.show()
        t0 = time.monotonic()
        while w.predictor is None and time.monotonic() - t0 < 120:
            app.processEvents()
            time.sleep(0.01)
        if w.predictor is None:
            print(f"bench.app_memory: no model loaded ({w.labeller.model_error})", file=sys.stderr)
            return 2
        w.files.predict_all()
        marks = {m: None for m in a.marks if m <= a.pictures}
        peak, done = rss_mb(), 0
        while time.monotonic() - t0 < a.timeout:
            app.processEvents()
            time.sleep(0.005)
            done = sum(e.predicted for e in w.document.entries)
            peak = max(peak, rss_mb())
            for m in marks:
                if marks[m] is None and done >= m:
                    marks[m] = rss_mb()
                    print(f"{done} pictures predicted: {marks[m]:.0f} MB resident", flush=True)
            if done >= a.pictures:
                break
        seconds = time.monotonic() - t0
        w.labeller.worker.stop()
        lo, hi = min(marks), max(marks)
        growth = (marks[hi] - marks[lo]) if marks.get(lo) and marks.get(hi) else None
        rep = {"pictures": a.pictures, "predicted": done, "seconds": round(seconds, 1), "start_rss_mb": round(start, 1),
               "peak_rss_mb": round(peak, 1), "rss_mb_at": {str(k): v and round(v, 1) for k, v in marks.items()},
               f"growth_{lo}_{hi}_mb": growth and round(growth, 1), "model": w.predictor.name,
               "mirror_average": w.predictor.mirror_average}
        if (lo, hi) == (200, 1000):
            rep["growth_200_1000_mb"] = rep[f"growth_{lo}_{hi}_mb"]
        rows = [["pictures predicted", f"{done} of {a.pictures} in {seconds:.0f} s"],
                ["resident before opening", f"{start:.0f} MB"], ["peak resident", f"{peak:.0f} MB"]]
        rows += [[f"resident at {k}", f"{v:.0f} MB" if v else "—"] for k, v in marks.items()]
        rows.append([f"growth {lo} -> {hi}", f"{growth:.0f} MB" if growth is not None else "—"])
        print(md_table(["app memory (offscreen, default model)", "value"], rows))
        write_json(a.json, rep)
        print(f"wrote {a.json}")
        return 0 if done >= a.pictures else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
