"""Which running app edits a folder's annotations (a lock file, taken over when its process is gone)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..pts import atomic_write_text

LOCK_FILE = ".drr-studio.lock"  # which running app edits a folder's annotations


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def lock_folder(folder: Path) -> str | None:
    """Claim a folder of annotations for this process. Returns a warning naming the other app
    when one that still runs holds it (both would save the same files); a lock left by a process
    that is gone (a crash, kill -9) is taken over silently. Never raises: a folder where the lock
    cannot be written (read-only) just goes unlocked."""
    import socket

    path = Path(folder) / LOCK_FILE
    host = socket.gethostname()
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
        pid, their_host = int(held.get("pid", 0)), str(held.get("host", ""))
    except (OSError, ValueError, AttributeError, TypeError):
        pid, their_host = 0, ""
    if pid and pid != os.getpid() and (their_host != host or _process_alive(pid)):
        where = "" if their_host == host else f" on {their_host}"
        return (f"Another DRR Studio (process {pid}{where}) has {folder} open: edits saved by both "
                f"would overwrite each other. Close one of them (or delete {path} if it is stale).")
    try:
        atomic_write_text(path, json.dumps({"pid": os.getpid(), "host": host}) + "\n")
    except OSError:
        pass
    return None


def unlock_folder(folder: Path) -> None:
    """Give up this process's claim on a folder (leaves another process's lock alone)."""
    path = Path(folder) / LOCK_FILE
    try:
        if int(json.loads(path.read_text(encoding="utf-8")).get("pid", 0)) == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError, TypeError):
        pass
