"""What a killed writer leaves behind, whose it is, and its removal by the next write.

Temporary files and staging folders are named
``.<output name><mark><pid>-<start time>-<host>.<random>``: the process id with the process's
start time tells a writer that is gone from a live one, even where process ids are reused (a
container's first process is number 1 every time). Another machine's processes cannot be
asked (several Ray nodes write run folders into one shared folder), so its leftovers go only
once nothing has touched them for a day.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
from pathlib import Path

TEMPORARY_MARK = ".sigerec-tmp-"
STAGING_MARK = ".sigerec-staging-"
ASIDE_MARK = ".sigerec-old-"
MARKS = (TEMPORARY_MARK, STAGING_MARK, ASIDE_MARK)
# A leftover of another machine untouched this long is one of a writer that is gone.
FOREIGN_LEFTOVER_SECONDS = 24 * 3600
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def remove_leftovers(folder: Path) -> None:
    """Remove the temporary files and staging folders that killed writers left in ``folder``.

    Only those of processes that are gone: a live writer's are left alone. A folder moved
    aside by a writer killed mid-swap (on systems without an atomic swap) is moved back.
    """
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return
    for entry in entries:
        owner = owner_of(entry.name)
        if owner is None or _alive(*owner, entry):
            continue
        if ASIDE_MARK in entry.name:
            original = entry.with_name(entry.name[1:].split(ASIDE_MARK)[0])
            if not original.exists():
                entry.rename(original)
                continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def process_tag() -> str:
    """``<pid>-<start time>-<host>``: tells this process from a later one that reuses its id."""
    return f"{os.getpid()}-{_start_time(os.getpid()) or 0}-{HOST}"


def owner_of(name: str) -> tuple[int, int, str] | None:
    """The (pid, start time, host) a leftover's name carries, or None for a name not made here."""
    if not name.startswith("."):
        return None
    for mark in MARKS:
        if mark in name:
            tag = name.split(mark, 1)[1].split(".", 1)[0].split("-")
            if len(tag) == 3 and tag[0].isdigit() and tag[1].isdigit():
                return int(tag[0]), int(tag[1]), tag[2]
    return None


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), None if it is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else int(fields[19])  # a zombie has finished


def _alive(pid: int, start: int, host: str, entry: Path) -> bool:
    if host != HOST:
        try:
            return time.time() - entry.lstat().st_mtime < FOREIGN_LEFTOVER_SECONDS
        except OSError:
            return True
    if Path("/proc/self/stat").exists():
        return _start_time(pid) == start if start else _start_time(pid) is not None
    try:  # no /proc (macOS): the process id alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
