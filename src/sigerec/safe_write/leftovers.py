"""What a killed writer leaves behind, whose it is, and its removal by the next write.

Temporary files and staging folders are named ``.<output name><mark><pid>-<start time>.<random>``:
the process id with the process's start time tells a writer that is gone from a live one, even
where process ids are reused (a container's first process is number 1 every time).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TEMPORARY_MARK = ".sigerec-tmp-"
STAGING_MARK = ".sigerec-staging-"
ASIDE_MARK = ".sigerec-old-"
MARKS = (TEMPORARY_MARK, STAGING_MARK, ASIDE_MARK)


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
        if owner is None or _alive(*owner):
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
    """``<pid>-<start time>``: tells this process from a later one that reuses its id."""
    return f"{os.getpid()}-{_start_time(os.getpid()) or 0}"


def owner_of(name: str) -> tuple[int, int] | None:
    """The (pid, start time) a leftover's name carries, or None for a name not made here."""
    if not name.startswith("."):
        return None
    for mark in MARKS:
        if mark in name:
            pid, _, start = name.split(mark, 1)[1].split(".", 1)[0].partition("-")
            if pid.isdigit() and start.isdigit():
                return int(pid), int(start)
    return None


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), None if it is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else int(fields[19])  # a zombie has finished


def _alive(pid: int, start: int) -> bool:
    if Path("/proc/self/stat").exists():
        return _start_time(pid) == start if start else _start_time(pid) is not None
    try:  # no /proc (macOS): the process id alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
