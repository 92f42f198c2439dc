"""One definition of every option: a dataclass field made with `option()` carries its
command-line help, and `add_options()` turns such fields into argparse flags. TrainOptions
(train.py), FineTuneOptions (finetune.py) and DRRConfig (config.py) are the only places an
option's name, default and meaning are written."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

# Test-time mirror averaging (each face also run mirrored, the two shapes averaged at every step:
# more accurate points, about twice the network time) is on by default, everywhere: the
# Predictor, drr-predict (--no-mirror-average), the app's Model menu and its saved setting. A
# model whose layout has no left/right order cannot mirror (model.layout.can_mirror).
MIRROR_AVERAGE = True


def option(default: Any, help: str, *, flag: str | None = None, choices: tuple | None = None,
           nargs: int | None = None, metavar: str | None = None) -> Any:
    """A dataclass field with command-line metadata (flag defaults to --field-name)."""
    meta = {"help": help, "flag": flag, "choices": choices, "nargs": nargs, "metavar": metavar}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_options(ap: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                defaults: Any | None = None, prefix: str = "") -> list[str]:
    """A flag for every field of cls made with option(). The parsed value is None when the flag
    is not given, so that only given flags override the dataclass (see given()). defaults: an
    instance whose values the help shows (default: cls's own). Returns the fields added."""
    shown = defaults if defaults is not None else None
    added = []
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        value = getattr(shown, f.name) if shown is not None else (
            f.default if f.default is not dataclasses.MISSING else f.default_factory())
        kw: dict[str, Any] = {"dest": prefix + f.name, "default": None}
        if isinstance(value, bool):
            # a flag that turns a default-off option on, or a --no-... flag that turns it off
            kw.update(action="store_const", const=not value)
            text = f.metadata["help"]
        else:
            kind = type(value[0]) if isinstance(value, tuple) else type(value)
            kw.update(type=kind if kind in (int, float, str) else str)
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if f.metadata.get("nargs"):
                kw["nargs"] = f.metadata["nargs"]
            kw["metavar"] = f.metadata.get("metavar") or (None if kw.get("choices") else f.name.upper())
            text = f"{f.metadata['help']} (default: {value if value not in ('', None) else 'none'})"
        ap.add_argument(flag_of(f), help=text, **kw)
        added.append(f.name)
    return added


def given(ns: argparse.Namespace, names: list[str], prefix: str = "") -> dict[str, Any]:
    """The options among names that were given on the command line."""
    out = {}
    for n in names:
        v = getattr(ns, prefix + n)
        if v is not None:
            out[n] = tuple(v) if isinstance(v, list) else v
    return out
