"""The programs bench.faults runs in subprocesses and then harms (kill -9, injected disk
errors, files changed behind their back): each is the project's own code doing what a person's
session does, kept here so that bench/faults.py reads as the list of faults."""

SAVE_LOOP = r"""
import sys
from pathlib import Path
from drr_studio.document import Document
doc = Document.from_paths([Path(sys.argv[1])])
entry = doc.entries[0]
doc.load_annotations(entry)
face = entry.faces[0]
for i in range(1, 100000):
    st = face.state()
    pts = st.points.copy(); pts[0, 0] = i
    from dataclasses import replace
    doc.set_face_state(entry, face, replace(st, points=pts))
    doc.save(entry)
    print(i, flush=True)
"""

CLIP_SAVE_LOOP = r"""
import sys
from pathlib import Path
import numpy as np
from drr_studio.clip_document import ClipDocument
doc = ClipDocument(Path(sys.argv[1]) / "talk.mp4", 30, 25.0, Path(sys.argv[1]) / "talk")
shape = np.stack([np.linspace(100, 300, 68), np.linspace(120, 320, 68)], 1)
shape[36:42] -= [40, 0]
shape[42:48] += [40, 0]
for f in range(30):
    doc.set_model(f, {1: shape + [f, 0]})
doc.save()
for i in range(1, 100000):
    pts = doc.points[1][i % 30].copy(); pts[0, 1] = 1000 + i  # the correction's number, on its frame
    doc.correct(1, i % 30, pts)
    doc.save_changes()  # the clip window's autosave
    print(i, flush=True)
"""


EXPORT_LOOP = r"""
import sys
from pathlib import Path
import numpy as np
from model.formats import AnnotatedImage, FaceAnnotation, write_annotations
pics = sorted(Path(sys.argv[1]).glob("*.png"))
pts = np.stack([np.linspace(100, 300, 68), np.linspace(120, 320, 68)], 1)
images = [AnnotatedImage(p, [FaceAnnotation(pts + k, set(), "approved", None)], (512, 512)) for k, p in enumerate(pics)]
while True:
    write_annotations(images, sys.argv[2], Path(sys.argv[3]))
    print("done", flush=True)
"""


SAVE_FAILING = r"""
import errno, json, os, sys
from dataclasses import replace
from pathlib import Path
from drr_studio.document import Document, SaveError
err = getattr(errno, sys.argv[2])
doc = Document.from_paths([Path(sys.argv[1])])
entry = doc.entries[0]
doc.load_annotations(entry)
face = entry.faces[0]
pts = face.points.copy(); pts[0, 0] = 4242
doc.set_face_state(entry, face, replace(face.state(), points=pts))
real_fsync, real_replace = os.fsync, os.replace
def refuse(*a, **k):
    raise OSError(err, os.strerror(err))
if sys.argv[2] == "ENOSPC":
    os.fsync = refuse
else:
    os.replace = refuse
try:
    doc.save(entry)
    message = "saved?!"
except SaveError as exc:
    message = str(exc)
kept = entry.dirty and face.points[0, 0] == 4242
os.fsync, os.replace = real_fsync, real_replace
doc.save(entry)  # writable again: the edit reaches disk
print(json.dumps({"message": message, "kept": bool(kept)}))
"""


PREDICT_FULL = r"""
import errno, os, sys
def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
os.fsync = full
from model.cli.predict import main
sys.exit(main(sys.argv[1:]))
"""


OUTSIDE_EDIT = r"""
import sys, json
from dataclasses import replace
from pathlib import Path
from drr_studio.document import Document
from model.pts import write_pts, read_pts
folder = Path(sys.argv[1])
doc = Document.from_paths([folder])
entry = doc.entries[0]
doc.load_annotations(entry)
theirs = read_pts(folder / "pic00000.pts") + 9
write_pts(folder / "pic00000.pts", theirs)  # another program, while the picture is open
face = entry.faces[0]
pts = face.points.copy(); pts[5] += 3
doc.set_face_state(entry, face, replace(face.state(), points=pts))
doc.save(entry)
print(json.dumps({"kept": [p.name for p in doc.outside_edits]}))
"""


CORRUPT_LOAD = r"""
import sys, json
from pathlib import Path
from drr_studio.document import Document
from model.images import read_image
folder = Path(sys.argv[1])
doc = Document.from_paths([folder])
entry = doc.entries[0]
problems = doc.load_annotations(entry)
read_image(entry.path)  # the picture still opens
other = doc.entries[1]
doc.load_annotations(other)
doc.mark_dirty(other)
doc.save(other)  # saving another picture leaves the bad file alone
print(json.dumps({"problems": problems}))
"""


GONE_PICTURE = r"""
import sys, json, os
from dataclasses import replace
from pathlib import Path
from drr_studio.document import Document
from model.images import read_image, ImageError
folder = Path(sys.argv[1])
doc = Document.from_paths([folder])
entry = doc.entries[0]
doc.load_annotations(entry)
if sys.argv[2] == "delete":
    entry.path.unlink()
else:
    entry.path.rename(entry.path.with_name("renamed.png"))
try:
    read_image(entry.path)
    message = "read?!"
except ImageError as exc:
    message = str(exc)
face = entry.faces[0]
pts = face.points.copy(); pts[0] += 2
doc.set_face_state(entry, face, replace(face.state(), points=pts))
doc.save(entry)  # the person's edit of it still reaches disk
print(json.dumps({"message": message, "dirty": entry.dirty}))
"""


HOLD_LOCK = r"""
import sys, time
from pathlib import Path
from model.annotation_files import lock_folder
print(lock_folder(Path(sys.argv[1])), flush=True)
time.sleep(60)
"""


BIG_FOLDER = r"""
import json, os, resource, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
t0 = time.perf_counter()
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from drr_studio._qt.main_window import MainWindow
w = MainWindow([Path(sys.argv[1])], settings=QSettings(sys.argv[2], QSettings.Format.IniFormat))
w.show()
def until(cond, limit=300):
    end = time.perf_counter() + limit
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
until(lambda: w.document.entries and w.document.entries[0].predicted)
first = time.perf_counter() - t0
switches = []
for i in range(1, 21):
    t = time.perf_counter()
    w.go_to(i)
    app.processEvents()
    switches.append(time.perf_counter() - t)
print(json.dumps({"first": first, "switch_ms": 1000 * sorted(switches)[len(switches) // 2],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "n": len(w.document)}))
"""
