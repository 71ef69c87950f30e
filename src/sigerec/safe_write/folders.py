"""The file-system steps under the crash-safe writes: renames that swap two folders or never
replace one, carrying files over by hard link, permissions, locks and flushing to disk."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from sigerec.safe_write.leftovers import ASIDE_MARK, owner_of, process_tag

_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP)


def swap(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; afterwards ``staging`` holds the old folder (if there was one).

    A process working inside ``target`` follows it into the new folder.
    """
    inside = _working_folder_inside(target)
    if not target.exists():
        if not rename_if_free(staging, target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    elif not exchange(staging, target):
        # No atomic swap here: move the old folder aside first; remove_leftovers moves it back
        # if the process dies between the two renames.
        aside = target.with_name(f".{target.name}{ASIDE_MARK}{process_tag()}")
        target.rename(aside)
        staging.rename(target)
        aside.rename(staging)
    flush_folder(target.parent)
    if inside is not None:
        os.chdir(target / inside if (target / inside).is_dir() else target)


def _working_folder_inside(target: Path) -> Path | None:
    try:
        return Path.cwd().relative_to(target)
    except (ValueError, OSError):
        return None


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; False where the system cannot."""
    error = _renameat2(first, second, _RENAME_EXCHANGE)
    if error in _UNSUPPORTED:
        return False
    if error:
        raise OSError(error, os.strerror(error), str(second))
    return True


def rename_if_free(source: Path, destination: Path) -> bool:
    """Rename a folder to ``destination`` unless that exists; False if it does."""
    error = _renameat2(source, destination, _RENAME_NOREPLACE)
    if error in _UNSUPPORTED:
        try:
            destination.mkdir()  # reserves the name; renaming onto an empty folder replaces it
        except FileExistsError:
            return False
        source.rename(destination)
        return True
    if error == errno.EEXIST:
        return False
    if error:
        raise OSError(error, os.strerror(error), str(destination))
    return True


def _renameat2(source: Path, destination: Path, flags: int) -> int:
    """0, or the errno of Linux's renameat2 (ENOSYS where there is none)."""
    if not sys.platform.startswith("linux"):
        return errno.ENOSYS
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is None:
        return errno.ENOSYS
    result = function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), flags)
    return 0 if result == 0 else ctypes.get_errno()


def replace_entries(staging: Path, target: Path, keep: Callable[[str], bool] | None) -> None:
    """Move what ``staging`` (inside ``target``) holds into ``target`` entry by entry, then drop the
    old entries ``keep`` does not keep: for a folder that cannot be renamed (a mount point)."""
    written = {entry.name for entry in staging.iterdir()}
    for entry in staging.iterdir():
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink() and not exchange(entry, destination):
            shutil.rmtree(destination)
        if not destination.exists():
            entry.rename(destination)
        elif not destination.is_dir():
            os.replace(entry, destination)
    for entry in target.iterdir():
        if entry.name in written or entry == staging or owner_of(entry.name) or (keep is not None and keep(entry.name)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    flush_folder(target)


def carry_over(old: Path, staging: Path, keep: Callable[[str], bool]) -> None:
    """Hard-link (or copy) into ``staging`` the kept entries of ``old`` that are not there yet."""
    for entry in old.iterdir():
        destination = staging / entry.name
        if destination.exists() or destination.is_symlink() or not keep(entry.name):
            continue
        if entry.is_symlink() or not entry.is_dir():
            _link_or_copy(entry, destination)
        else:
            shutil.copytree(entry, destination, symlinks=True, copy_function=_link_or_copy)


def _link_or_copy(source, destination) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), destination)
        return
    try:
        os.link(source, destination)
    except OSError:  # no hard links on this file system
        shutil.copy2(source, destination)


@contextmanager
def folder_lock(folder: Path):
    """Serialise swaps in one folder, so two writers of one dataset folder keep each other's files."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network ones): go on unlocked
            pass
        yield
    finally:
        os.close(handle)


# --- permissions ------------------------------------------------------------------------


def copy_mode(old: Path | None, staging: Path) -> None:
    """The new folder gets the old one's permissions (a fresh one the umask's), not mkdtemp's 0700."""
    staging.chmod(old.stat().st_mode & 0o7777 if old is not None and old.is_dir() else 0o777 & ~_umask())


def mode_of(path: Path) -> int:
    """The permissions a rewritten file keeps (a new one the umask's), not mkstemp's 0600."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# --- durability -------------------------------------------------------------------------


def flush(path: Path) -> None:
    """Push a written file to the disk before it is renamed into place (a full disk shows here)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    except OSError as error:
        error.filename = error.filename or str(path)
        raise
    finally:
        os.close(handle)


def flush_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                flush(Path(root, name))


def flush_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (some systems cannot sync a folder: then nothing)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
