"""Crash-safe file writes shared by run folders, feature files and graph caches.

A file is written beside its target and renamed onto it, so a crash leaves the old file or the
new one, never half of one (an "atomic write" in the file-system sense). Not to be confused with
``sigerec.data.atomic``, which reads MMRec's "atomic files", the ``.inter`` interaction format.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temporary_path)`` and rename the result onto ``path``.

    A kill mid-write leaves the old file (or none), never half a file. The temporary name
    is unique, so two processes writing the same file do not collide, and it keeps the
    target's suffix because ``np.save``/``save_npz`` append one to names that lack it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
