"""Crash-safe writes shared by every command that writes: one file, or a whole folder.

A file is written beside its target under a hidden temporary name and renamed onto it; a
folder is built beside its target as a hidden staging folder and swapped with it in one
rename (Linux ``renameat2(RENAME_EXCHANGE)``). So a process killed at any moment leaves the
old file or folder or the new one, never half of one (an "atomic write" in the file-system
sense). Not to be confused with ``sigerec.data.atomic``, which reads MMRec's "atomic files",
the ``.inter`` interaction format.

What a killed writer leaves beside its output is removed by the next write there
(``leftovers``). Errors keep the name of the file or folder the user asked for
(``OSError.filename``), so the command line can say which output could not be written
(``sigerec.cli.errors``).

Tests kill a command at a chosen write step: with ``SIGEREC_KILL_AT_WRITE_STEP=N`` in its
environment, the process sends itself SIGKILL at its N-th step (every step is also appended to
the file named by ``SIGEREC_WRITE_STEP_LOG``, so a test can count a command's steps first).
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from sigerec.safe_write import folders
from sigerec.safe_write.leftovers import (
    ASIDE_MARK,
    MARKS,
    STAGING_MARK,
    TEMPORARY_MARK,
    process_tag,
    remove_leftovers,
)

try:
    import resource
except ImportError:  # Windows
    resource = None

__all__ = [
    "ASIDE_MARK",
    "STAGING_MARK",
    "TEMPORARY_MARK",
    "atomic_write",
    "create_folder",
    "remove_leftovers",
    "write_folder",
]

KILL_STEP_VARIABLE = "SIGEREC_KILL_AT_WRITE_STEP"
STEP_LOG_VARIABLE = "SIGEREC_WRITE_STEP_LOG"
# numpy.save and scipy.sparse.save_npz append their suffix to a name that lacks it.
_KEPT_SUFFIXES = (".npy", ".npz")
# Less free space than this when a write fails for no stated reason: the disk is full.
NEARLY_FULL_BYTES = 64 << 20
_steps_taken = 0


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temporary_path)`` and rename the result onto ``path``.

    A kill mid-write leaves the old file (or none), never half a file. The temporary name is
    unique (two processes writing the same file do not collide) and hidden, and it ends in
    ``.tmp`` (``.tmp.npy`` for numpy) so no reader's ``*.inter`` or ``*_feat.npy`` pattern picks it up.
    """
    path = Path(path)
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path.parent)
        suffix = ".tmp" + (path.suffix if path.suffix in _KEPT_SUFFIXES else "")
        prefix = f".{path.name}{TEMPORARY_MARK}{process_tag()}."
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
        os.close(handle)
        temporary = Path(name)
        try:
            _step("writing", path)
            try:
                write(temporary)
            except Exception as error:
                unexplained = None if isinstance(error, OSError) else _write_refused(temporary)
                if unexplained is None:
                    raise
                raise unexplained from error
            folders.flush(temporary)
            temporary.chmod(folders.mode_of(path))
            _step("written", path)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        folders.flush_folder(path.parent)
        _step("replaced", path)


def write_folder(target: Path, build: Callable[[Path], object], keep: Callable[[str], bool] | None = None) -> Path:
    """Replace the folder ``target`` (or create it) with what ``build(staging)`` writes, in one step.

    ``build`` fills an empty staging folder beside ``target``. Entries of the current
    ``target`` that ``build`` did not write are carried over (hard links, so no copying) when
    ``keep(name)`` says so; the others disappear with the old folder. The staging folder then
    swaps places with ``target`` in one rename, so a kill at any moment leaves the old folder or
    the new one; what is left beside it is removed by the next write there.

    A mount point (a Docker volume, say) cannot be renamed: there the staging folder is made
    inside it and its entries replace the old ones one by one, each whole.
    """
    target = Path(target).resolve()  # a symlinked folder is replaced where it lives; the link stays
    with _naming(target):
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(target))
        in_place = os.path.ismount(target)
        home = target if in_place else target.parent
        home.mkdir(parents=True, exist_ok=True)
        remove_leftovers(home)
        staging = _staging_folder(target, home)
        try:
            _step("building", target)
            with _naming_newest_file(staging):
                build(staging)
            folders.flush_tree(staging)
            _step("built", target)
            with folders.folder_lock(home):
                if in_place:
                    folders.replace_entries(staging, target, keep)
                else:
                    if keep is not None and target.is_dir():
                        folders.carry_over(target, staging, keep)
                    folders.copy_mode(target, staging)
                    folders.swap(staging, target)
            _step("swapped", target)
        finally:
            if staging.exists():  # the old folder after a swap, or an unfinished build
                shutil.rmtree(staging, ignore_errors=True)
        _step("cleaned", target)
    return target


def create_folder(parent: Path, names: Iterable[str], build: Callable[[Path], object]) -> Path:
    """Build a new folder and give it the first of ``names`` that is free; nothing is replaced.

    The folder appears with everything ``build`` wrote in it, or not at all.
    """
    parent = Path(parent)
    names = iter(names)
    first = next(names)
    with _naming(parent / first):
        parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(parent)
        staging = _staging_folder(parent / first, parent)
        try:
            _step("building", parent / first)
            with _naming_newest_file(staging):
                build(staging)
            folders.flush_tree(staging)
            folders.copy_mode(None, staging)
            for name in itertools.chain([first], names):
                if folders.rename_if_free(staging, parent / name):
                    folders.flush_folder(parent)
                    _step("created", parent / name)
                    return parent / name
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    raise FileExistsError(errno.EEXIST, "every name is taken", str(parent))


def _staging_folder(target: Path, home: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=home, prefix=f".{target.name}{STAGING_MARK}{process_tag()}."))


# --- naming the output in errors ---------------------------------------------------------


def _write_refused(temporary: Path) -> OSError | None:
    """The OSError behind a write that failed without one, if the disk is full or the file hit the
    size limit: ``torch.save`` raises ``RuntimeError("... unexpected pos ...")`` for both."""
    try:
        if shutil.disk_usage(temporary.parent).free < NEARLY_FULL_BYTES:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
        if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)) and temporary.stat().st_size >= limit:
            return OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    except OSError:
        pass
    return None


@contextmanager
def _naming(output: Path):
    """Give an OSError raised while writing ``output`` that name, not a temporary one."""
    try:
        yield
    except OSError as error:
        named = error.filename
        if named is None or any(mark in str(named) for mark in MARKS):
            error.filename = str(_inside_output(named, output))
        raise


@contextmanager
def _naming_newest_file(staging: Path):
    """An OSError without a file name, raised while a folder is built, names the file being written:
    the newest one (numpy, pyarrow and torch do not say which file they were writing)."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            written = [path for path in staging.rglob("*") if path.is_file()]
            if written:
                error.filename = str(max(written, key=lambda path: path.stat().st_mtime_ns))
        raise


def _inside_output(named: str | None, output: Path) -> Path:
    """``output/sub/file`` for a file of a staging folder, ``output`` for anything else."""
    if named is None or STAGING_MARK not in str(named):
        return output
    parts = Path(named).parts
    staged = next(i for i, part in enumerate(parts) if STAGING_MARK in part)
    return output.joinpath(*parts[staged + 1 :])


# --- the test hook ----------------------------------------------------------------------


def _step(label: str, path: Path) -> None:
    """A moment between two write steps, where a test may kill this process (module docstring)."""
    global _steps_taken
    log, kill_at = os.environ.get(STEP_LOG_VARIABLE), os.environ.get(KILL_STEP_VARIABLE)
    if not log and not kill_at:
        return
    _steps_taken += 1
    if log:
        with open(log, "a") as handle:
            handle.write(f"{_steps_taken}\t{label}\t{path}\n")
    if kill_at and int(kill_at) == _steps_taken:
        os.kill(os.getpid(), signal.SIGKILL)
