"""The app's shape, checked on its source (issue 33): Qt code changes the document only through
its methods (which announce every change), never by writing a picture's or a face's fields."""

from __future__ import annotations

import ast
from pathlib import Path

QT = Path(__file__).resolve().parents[1] / "drr_studio" / "_qt"
# the fields of drr_studio.faces' records (ImageEntry, Face) that views show
FIELDS = {"faces", "points", "status", "box", "occluded", "placed", "source", "result", "annotation", "dirty",
          "predicted", "error", "size", "loaded", "deleted", "saved_status", "unreadable", "disk_stamp"}


def field_writes(path: Path) -> list[str]:
    """`x.field = ...` (and +=) where x is not `self`: a write into another object's record."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign | ast.AnnAssign) else []
        for t in targets:
            for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if (isinstance(el, ast.Attribute) and el.attr in FIELDS
                        and not (isinstance(el.value, ast.Name) and el.value.id == "self")):
                    out.append(f"{path.name}:{el.lineno}: {ast.unparse(el)} = ...")
    return out


def test_qt_code_never_writes_the_documents_fields():
    writes = [w for p in sorted(QT.glob("*.py")) for w in field_writes(p)]
    assert writes == [], "write through the document's methods instead:\n" + "\n".join(writes)


def test_the_check_finds_such_a_write(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(entry, face):\n    entry.dirty = True\n    face.points, x = None, 1\n    self.points = 2\n")
    assert [w.split(": ", 1)[1] for w in field_writes(bad)] == ["entry.dirty = ...", "face.points = ..."]
