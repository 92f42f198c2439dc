"""The app's shape, checked on its source (issue 33): Qt code changes the documents (pictures and
clips) only through their methods (which announce every change), never by writing their fields
or into the dicts and sets they hold."""

from __future__ import annotations

import ast
from pathlib import Path

QT = Path(__file__).resolve().parents[1] / "drr_studio" / "_qt"
# the fields of drr_studio.faces' records (ImageEntry, Face) that views show
FIELDS = {"faces", "points", "status", "box", "occluded", "placed", "source", "result", "annotation", "dirty",
          "predicted", "error", "size", "loaded", "deleted", "saved_status", "unreadable", "disk_stamp",
          # drr_studio.clip_document.ClipDocument's
          "model", "keys", "bases", "cuts", "approved", "tracked"}
MUTATORS = {"pop", "popitem", "clear", "update", "add", "setdefault", "append", "remove", "discard", "extend",
            "insert", "__setitem__"}


# what a document or one of its records is called where Qt code holds one
DOCUMENTS = {"doc", "document", "entry", "face", "clip", "_clip"}


def _foreign_field(node: ast.AST) -> ast.Attribute | None:
    """The first `x.field` (x a document or record, not plain `self`) on the way down an
    expression like `self.doc.keys[t][f]` or `entry.faces`: the document's field it reaches into."""
    found = None
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        if (found is None and isinstance(node, ast.Attribute) and node.attr in FIELDS
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
            found = node
        elif found is not None and isinstance(node, ast.Attribute) and node.attr in DOCUMENTS:
            return found
        node = node.func if isinstance(node, ast.Call) else node.value
    return found if found is not None and isinstance(node, ast.Name) and node.id in DOCUMENTS else None


def field_writes(path: Path) -> list[str]:
    """`x.field = ...` (and +=), `x.field[k] = ...` and `x.field.pop(...)`-like calls where x is
    not `self`: a write into another object's record."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign | ast.AnnAssign) else []
        for t in targets:
            for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(el, ast.Attribute) and el.attr in FIELDS and not (
                        isinstance(el.value, ast.Name) and el.value.id == "self"):
                    out.append(f"{path.name}:{el.lineno}: {ast.unparse(el)} = ...")
                elif isinstance(el, ast.Subscript) and _foreign_field(el) is not None:
                    out.append(f"{path.name}:{el.lineno}: {ast.unparse(el)} = ...")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS
                and _foreign_field(node.func.value) is not None):
            out.append(f"{path.name}:{node.lineno}: {ast.unparse(node.func)}(...)")
    return out


def test_qt_code_never_writes_the_documents_fields():
    writes = [w for p in sorted(QT.glob("*.py")) for w in field_writes(p)]
    assert writes == [], "write through the document's methods instead:\n" + "\n".join(writes)


def test_the_check_finds_such_a_write(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(entry, face):\n    entry.dirty = True\n    face.points, x = None, 1\n    self.points = 2\n"
                   "    self.doc.keys[1][2] = 3\n    self.doc.approved.get(1, {}).pop(2)\n    self.doc.cuts.add(4)\n"
                   "    self.points[1] = 2\n    self._editing.clear()\n    n = self.doc.keys[1]\n"
                   "    items.points.clear()\n    entry.faces[0] = face\n")
    assert sorted(w.split(": ", 1)[1] for w in field_writes(bad)) == sorted([
        "entry.dirty = ...", "face.points = ...", "self.doc.keys[1][2] = ...", "self.doc.approved.get(1, {}).pop(...)",
        "self.doc.cuts.add(...)", "entry.faces[0] = ..."])
