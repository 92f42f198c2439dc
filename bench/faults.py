"""Faults against the real code: `python -m bench.faults [--json FILE] [--only NAME ...] [--big N]`.

Each fault runs the project's own code in a subprocess (the CLIs as installed, the document's
save path that the app's autosave uses, the app itself offscreen for the big folder), does
something bad to it (kill -9 at a random moment, a read-only folder, a full disk, a file changed
or removed behind its back, hostile input) and then checks what a person would check: every
annotation file still parses and holds the last acknowledged edit, the message names the file,
no traceback. Prints a table and writes {"faults": [{"name", "edits_lost", "tracebacks", "ok",
"message"}]}.

Root ignores file permissions, so where this runs as root a read-only folder and a full disk are
injected (EROFS / ENOSPC raised by os.replace / os.fsync in the child), as the issue allows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .fault_children import (
    BIG_FOLDER,
    CLIP_SAVE_LOOP,
    CORRUPT_LOAD,
    EXPORT_LOOP,
    GONE_PICTURE,
    HOLD_LOCK,
    OUTSIDE_EDIT,
    PREDICT_FULL,
    SAVE_FAILING,
    SAVE_LOOP,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "astronaut.png"
WEIGHTS = ROOT / "resources" / "drr_default.pt"
SHARED = ROOT.parent / "shared" / "data" / "300w_train"


@dataclass
class Outcome:
    name: str
    edits_lost: int
    tracebacks: int
    ok: bool
    message: str


FAULTS: list[tuple[str, Callable[[Path], Outcome]]] = []


def fault(name: str):
    def register(fn: Callable[[Path, str], Outcome]):
        FAULTS.append((name, lambda tmp: fn(tmp, name)))
        return fn
    return register


# --- helpers ----------------------------------------------------------------------------------
def child(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def cli(name: str) -> list[str]:
    """A console script of this project, run with this Python."""
    module = {"drr-predict": "model.cli.predict", "drr-train": "model.cli.train"}[name]
    return [sys.executable, "-m", module]


def tracebacks(*texts: str) -> int:
    return sum(t.count("Traceback (most recent call last)") for t in texts if t)


def last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip() and "it/s" not in ln and "%|" not in ln]
    return lines[-1].strip() if lines else ""


def picture_folder(folder: Path, n: int, size: tuple[int, int] | None = None) -> Path:
    """n copies of the bundled sample (a real face), optionally resized."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    img = cv2.imread(str(SAMPLE))
    if size is not None:
        img = cv2.resize(img, size)
    for i in range(n):
        cv2.imwrite(str(folder / f"pic{i:05d}.png"), img)
    return folder


def with_pts(folder: Path, points=None) -> Path:
    """Give every picture of the folder a .pts (a square of 68 points): a person's annotation."""
    import numpy as np

    from model.pts import write_pts

    pts = points if points is not None else np.stack([np.linspace(100, 300, 68), np.linspace(120, 320, 68)], 1)
    for p in sorted(folder.glob("*.png")):
        write_pts(p.with_suffix(".pts"), pts)
    return folder


def kill_at_random(proc: subprocess.Popen, after: float, spread: float) -> None:
    time.sleep(after + random.random() * spread)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def acked_until_killed(proc: subprocess.Popen, at_least: int) -> list[int]:
    """The numbers a save loop printed (one per save it finished) until it was killed at a
    random moment after at_least of them."""
    acked = []
    start = time.time()
    while len(acked) < at_least and time.time() - start < 60:
        acked.append(int(proc.stdout.readline() or 0))
    kill_at_random(proc, 0.0, 0.3)
    return acked + [int(x) for x in proc.stdout.read().split()]


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


# --- kill -9 ----------------------------------------------------------------------------------


@fault("kill -9 during autosave")
def kill_during_autosave(tmp: Path, name: str) -> Outcome:
    from model.pts import PtsError, read_pts

    folder = with_pts(picture_folder(tmp / "pics", 1))
    proc = child(SAVE_LOOP, str(folder))
    acked = acked_until_killed(proc, 30)
    try:
        on_disk = int(read_pts(folder / "pic00000.pts", 68)[0, 0])
        json.loads((folder / "pic00000.drr.json").read_text())
    except (PtsError, ValueError, OSError) as exc:
        return Outcome(name, max(acked), 0, False, f"unreadable after the kill: {exc}")
    lost = max(0, max(acked) - on_disk)
    return Outcome(name, lost, tracebacks(proc.stderr.read()), lost == 0,
                   f"killed after {max(acked)} saves; on disk: edit {on_disk}, every file parses")


@fault("kill -9 during a clip's autosave")
def kill_during_clip_autosave(tmp: Path, name: str) -> Outcome:
    from model import annotation_files as files

    proc = child(CLIP_SAVE_LOOP, str(tmp))
    last = max(acked_until_killed(proc, 40))
    clip, problems = files.read_clip(tmp / "talk", 68)
    if problems:
        return Outcome(name, last, 0, False, f"unreadable after the kill: {problems[0]}")
    on_disk = int(round(clip.track(1)[last % 30].record.points[0, 1])) - 1000
    lost = int(on_disk < last)
    return Outcome(name, lost, tracebacks(proc.stderr.read()), lost == 0 and clip.keyframes(1) != [],
                   f"killed after {last} corrections; on disk: correction {on_disk} on its frame, every file parses")


def export_fault(tmp: Path, name: str, fmt: str) -> Outcome:
    from model.formats import FormatError, read_annotations

    pics = picture_folder(tmp / "pics", 60, (96, 96))
    out = tmp / ("export" + {"coco": ".json", "cvat": ".xml"}.get(fmt, ""))
    proc = child(EXPORT_LOOP, str(pics), fmt, str(out))
    proc.stdout.readline()  # one whole export first: then kill the next one midway
    kill_at_random(proc, 0.0, 0.4)
    try:
        images = read_annotations(out, pics)
    except (FormatError, OSError, ValueError) as exc:
        return Outcome(name, 0, 0, False, f"the export does not read back after the kill: {exc}")
    faces = sum(len(im.faces) for im in images)
    return Outcome(name, 0, tracebacks(proc.stderr.read()), faces == 60,
                   f"killed mid-export; it reads back whole: {faces} of 60 faces")


for _fmt in ("pts", "coco", "labelme", "cvat"):
    fault(f"kill -9 during export ({_fmt})")(lambda tmp, name, f=_fmt: export_fault(tmp, name, f))


def training_folder(tmp: Path, n: int = 8) -> Path:
    """n faces with a person's .pts: real 300-W faces when ../shared is here, else the sample."""
    import shutil

    folder = tmp / "train"
    folder.mkdir()
    real = sorted(SHARED.glob("*.pts"))[:n] if SHARED.is_dir() else []
    for p in real:
        img = next((p.with_suffix(s) for s in (".png", ".jpg") if p.with_suffix(s).exists()), None)
        if img is not None:
            shutil.copy(img, folder / img.name)
            shutil.copy(p, folder / p.name)
    if not any(folder.iterdir()):
        with_pts(picture_folder(folder, n))
    return folder


def train_fault(tmp: Path, name: str, args: list[str]) -> Outcome:
    import hashlib

    from model.checkpoint import CheckpointError, read_checkpoint

    data = training_folder(tmp)
    out = tmp / "run"
    parent = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    cmd = [*cli("drr-train"), "--data", str(data), "--out", str(out), "--threads", "1", "--val-fraction", "0.25"]
    proc = subprocess.Popen([*cmd, *args, "--epochs", "4"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(lambda: (out / "last.pt").exists(), 240)
    kill_at_random(proc, 0.0, 1.5)
    err = proc.stderr.read()
    problems = []
    if hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() != parent:
        problems.append("the parent model changed")
    for p in out.glob("*.pt"):
        try:
            read_checkpoint(p)
        except CheckpointError as exc:
            problems.append(f"half-written checkpoint visible: {exc}")
    resumed = run([*cmd, "--epochs", "4", "--resume"], timeout=600)  # the run's own options come from last.pt
    if resumed.returncode != 0:
        problems.append(f"--resume failed: {last_line(resumed.stderr)}")
    temps = [p.name for p in out.glob(".*.tmp")]
    note = f"; {len(temps)} hidden temp file(s) left by the kill" if temps else ""
    return Outcome(name, 0, tracebacks(err, resumed.stderr), not problems,
                   "; ".join(problems) or f"killed after a checkpoint; parent intact, checkpoints load, --resume ran{note}")


fault("kill -9 during a fine-tune")(lambda tmp, name: train_fault(tmp, name, ["--init", str(WEIGHTS)]))
fault("kill -9 during drr-train")(lambda tmp, name: train_fault(
    tmp, name, ["--width", "0.0625", "--input-size", "64", "--batch-size", "4"]))


@fault("kill -9 during drr-predict")
def kill_during_predict(tmp: Path, name: str) -> Outcome:
    from model.pts import PtsError, read_pts

    pics = picture_folder(tmp / "pics", 40, (256, 256))
    out = tmp / "out"
    proc = subprocess.Popen([*cli("drr-predict"), str(pics), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: out.is_dir() and len(list(out.glob("*.pts"))) >= 3, 120)
    kill_at_random(proc, 0.0, 0.5)
    bad = []
    for p in out.glob("*.pts"):
        try:
            read_pts(p, 68)
        except PtsError as exc:
            bad.append(str(exc))
    temps = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    n = len(list(out.glob("*.pts")))
    return Outcome(name, 0, tracebacks(proc.stderr.read()), not bad,
                   "; ".join(bad) or f"killed after {n} pictures: every .pts whole"
                   + (f" ({len(temps)} hidden temp file(s) left)" if temps else ""))


# --- the disk says no ---------------------------------------------------------------------------


def disk_fault(tmp: Path, name: str, errname: str) -> Outcome:
    from model.pts import read_pts

    folder = with_pts(picture_folder(tmp / "pics", 1))
    before = (folder / "pic00000.pts").read_bytes()
    proc = child(SAVE_FAILING, str(folder), errname)
    out, err = proc.communicate(timeout=120)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Outcome(name, 1, tracebacks(err), False, last_line(err))
    saved_later = int(read_pts(folder / "pic00000.pts", 68)[0, 0]) == 4242
    named = "pic00000" in res["message"]
    ok = res["kept"] and saved_later and named and before != b""
    return Outcome(name, 0 if res["kept"] and saved_later else 1, tracebacks(err), ok,
                   f"{res['message']}; edit kept in memory: {res['kept']}; saved once writable: {saved_later}")


fault("read-only output folder")(lambda tmp, name: disk_fault(tmp, name, "EROFS"))
fault("full disk while saving")(lambda tmp, name: disk_fault(tmp, name, "ENOSPC"))


@fault("full disk during drr-predict")
def full_disk_predict(tmp: Path, name: str) -> Outcome:
    pics = picture_folder(tmp / "pics", 5, (256, 256))
    out = tmp / "out"
    proc = child(PREDICT_FULL, str(pics), "--out", str(out))
    _, err = proc.communicate(timeout=300)
    lines = ["drr-predict:" + part.split("\n")[0] for part in err.split("drr-predict:")[1:]]
    ok = proc.returncode == 1 and len(lines) == 1 and "No space left" in lines[0] and ".pts" in lines[0]
    partial = [p.name for p in out.glob("*.pts")]
    return Outcome(name, 0, tracebacks(err), ok and not partial, f"rc {proc.returncode}: {' | '.join(lines)}")


# --- files changed behind its back ----------------------------------------------------------------


@fault(".pts edited by another program while open")
def outside_edit(tmp: Path, name: str) -> Outcome:
    folder = with_pts(picture_folder(tmp / "pics", 1))
    proc = child(OUTSIDE_EDIT, str(folder))
    out, err = proc.communicate(timeout=120)
    kept = json.loads(out.strip().splitlines()[-1])["kept"] if out.strip() else []
    ok = kept == ["pic00000.pts.theirs"] and (folder / "pic00000.pts.theirs").exists()
    return Outcome(name, 0 if ok else 1, tracebacks(err), ok,
                   f"ours saved, theirs kept as {', '.join(kept)}" if ok else f"not kept: {last_line(err)}")


def corrupt_fault(tmp: Path, name: str, which: str) -> Outcome:
    folder = with_pts(picture_folder(tmp / "pics", 2))
    bad = folder / ("pic00000.pts" if which == "pts" else "pic00000.drr.json")
    text = (folder / "pic00000.pts").read_text()
    bad.write_text(text[: len(text) // 2] if which == "pts" else '{"faces": [{"pts": ')
    before = bad.read_bytes()
    proc = child(CORRUPT_LOAD, str(folder))
    out, err = proc.communicate(timeout=120)
    problems = json.loads(out.strip().splitlines()[-1])["problems"] if out.strip() else []
    named = any(bad.name in p for p in problems)
    untouched = bad.read_bytes() == before
    return Outcome(name, 0, tracebacks(err), named and untouched and proc.returncode == 0,
                   f"{'; '.join(problems) or last_line(err)}; file left as it was: {untouched}")


fault("truncated .pts")(lambda tmp, name: corrupt_fault(tmp, name, "pts"))
fault("corrupt side file")(lambda tmp, name: corrupt_fault(tmp, name, "side"))


def gone_fault(tmp: Path, name: str, how: str) -> Outcome:
    folder = with_pts(picture_folder(tmp / "pics", 1))
    proc = child(GONE_PICTURE, str(folder), how)
    out, err = proc.communicate(timeout=120)
    res = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"message": last_line(err), "dirty": True}
    ok = "pic00000.png" in res["message"] and not res["dirty"]
    return Outcome(name, int(res["dirty"]), tracebacks(err), ok, res["message"] + "; the edit saved")


fault("picture deleted while open")(lambda tmp, name: gone_fault(tmp, name, "delete"))
fault("picture renamed while open")(lambda tmp, name: gone_fault(tmp, name, "rename"))


# --- hostile input ----------------------------------------------------------------------------
@fault("non-ASCII and spaces in paths")
def odd_paths(tmp: Path, name: str) -> Outcome:
    import shutil

    folder = tmp / "fötos ü ñ" / "Ωmega dir"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "фото 1.png")
    out = tmp / "out put ü"
    r = run([*cli("drr-predict"), str(folder), "--out", str(out)])
    written = sorted(p.name for p in out.glob("*.pts")) if out.is_dir() else []
    return Outcome(name, 0, tracebacks(r.stderr), r.returncode == 0 and written == ["фото 1.pts"],
                   f"rc {r.returncode}, wrote {written}")


@fault("60-megapixel picture")
def huge_picture(tmp: Path, name: str) -> Outcome:
    pics = picture_folder(tmp / "pics", 1, (9000, 6700))
    code = ("import resource, sys; from model.cli.predict import main; rc = main(sys.argv[1:]); "
            "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024); sys.exit(rc)")
    t = time.perf_counter()
    proc = child(code, str(pics), "--out", str(tmp / "out"))
    out, err = proc.communicate(timeout=300)
    peak = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("peak")), "?")
    return Outcome(name, 0, tracebacks(err), proc.returncode == 0,
                   f"rc {proc.returncode} in {time.perf_counter() - t:.1f} s, peak {peak} MB resident")


@fault("decompression-bomb PNG")
def bomb(tmp: Path, name: str) -> Outcome:
    import struct
    import zlib

    w = h = 30000
    z = zlib.compressobj(9)
    data = b"".join(z.compress(b"\x00" * (w + 1)) for _ in range(h)) + z.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    (tmp / "pics").mkdir()
    (tmp / "pics" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                                            + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    code = ("import resource, sys; from model.cli.predict import main; rc = main(sys.argv[1:]); "
            "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024); sys.exit(rc)")
    t = time.perf_counter()
    proc = child(code, str(tmp / "pics"), "--out", str(tmp / "out"))
    out, err = proc.communicate(timeout=300)
    secs = time.perf_counter() - t
    peak = int(next((ln.split()[1] for ln in out.splitlines() if ln.startswith("peak")), "0"))
    refused = "bomb.png: too large" in err
    return Outcome(name, 0, tracebacks(err), refused and peak < 1500,
                   f"{'refused' if refused else 'NOT refused'} in {secs:.1f} s, peak {peak} MB resident "
                   "(the model included)")


@fault("pickled-code checkpoint")
def evil_checkpoint(tmp: Path, name: str) -> Outcome:
    code = ("import os, sys, torch\nclass Evil:\n    def __reduce__(self):\n        return (os.system, ('touch PWNED',))\n"
            "torch.save({'x': Evil()}, sys.argv[1])")
    run([sys.executable, "-c", code, str(tmp / "evil.pt")])
    r = run([*cli("drr-predict"), str(SAMPLE), "--out", str(tmp / "out"), "--checkpoint", str(tmp / "evil.pt")])
    msg = last_line(r.stderr)
    ok = r.returncode == 2 and "never loaded" in msg and not (ROOT / "PWNED").exists()
    return Outcome(name, 0, tracebacks(r.stderr), ok, f"rc {r.returncode}: {msg}")


@fault("two apps on one folder")
def two_apps(tmp: Path, name: str) -> Outcome:
    from model.annotation_files import lock_folder

    folder = picture_folder(tmp / "pics", 1)
    first = child(HOLD_LOCK, str(folder))
    first.stdout.readline()
    warning = lock_folder(folder)
    first.kill()
    first.wait()
    stale = lock_folder(folder)  # the first app is gone (a crash): its lock is stale
    ok = warning is not None and "Another DRR Studio" in warning and stale is None
    return Outcome(name, 0, 0, ok, f"second app: {warning}; after the first died: "
                   f"{'taken over' if stale is None else stale}")


def big_folder(tmp: Path, name: str, n: int) -> Outcome:
    pics = picture_folder(tmp / "pics", n, (64, 64))
    proc = child(BIG_FOLDER, str(pics), str(tmp / "s.ini"))
    out, err = proc.communicate(timeout=900)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Outcome(name, 0, tracebacks(err), False, last_line(err))
    return Outcome(name, 0, tracebacks(err), res["first"] < 10,
                   f"{res['n']} pictures: window and first points in {res['first']:.1f} s, picture switch "
                   f"{res['switch_ms']:.0f} ms (median of 20), peak {res['rss_mb']} MB resident")


# --- the table ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench/results/faults.json", help="where to write the results")
    ap.add_argument("--only", nargs="*", help="run only the faults whose name contains one of these words")
    ap.add_argument("--big", type=int, default=10000, help="pictures in the big-folder fault (0: skip it)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    random.seed(a.seed)
    faults = list(FAULTS)
    if a.big:
        faults.append((f"folder of {a.big:,} pictures", lambda tmp: big_folder(tmp, f"folder of {a.big:,} pictures", a.big)))
    if a.only:
        faults = [(n, f) for n, f in faults if any(w in n for w in a.only)]
    results = []
    print(f"{'fault':44s} {'ok':4s} {'lost':>4s} {'tb':>3s}  message")
    for fault_name, fn in faults:
        with tempfile.TemporaryDirectory(prefix="drr-fault-") as d:
            try:
                res = fn(Path(d))
            except Exception as exc:  # noqa: BLE001 - a fault the bench could not run is a failure, said so
                res = Outcome(fault_name, 0, 1, False, f"the bench itself failed: {exc.__class__.__name__}: {exc}")
        results.append(res)
        print(f"{res.name:44s} {'yes' if res.ok else 'NO':4s} {res.edits_lost:4d} {res.tracebacks:3d}  {res.message[:160]}",
              flush=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"faults": [asdict(r) for r in results]}, indent=1) + "\n")
    bad = [r.name for r in results if not r.ok or r.edits_lost or r.tracebacks]
    print(f"{len(results) - len(bad)} of {len(results)} faults handled" + (f"; not: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
