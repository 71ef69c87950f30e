"""Crash-safe writes shared by every command that writes: one file, or a whole folder.

A file is written beside its target under a hidden temporary name and renamed onto it; a
folder is built beside its target as a hidden staging folder and swapped with it in one
rename (Linux ``renameat2(RENAME_EXCHANGE)``). So a process killed at any moment leaves the
old file or folder or the new one, never half of one (an "atomic write" in the file-system
sense). Not to be confused with ``sigerec.data.atomic``, which reads MMRec's "atomic files",
the ``.inter`` interaction format.

Temporary names carry the writer's process id and start time; the next write in the same
folder removes what a killed writer left there, never what a live one is writing. Errors
keep the name of the file or folder the user asked for (``OSError.filename``), so the command
line can say which output could not be written (``sigerec.cli.errors``).

Tests kill a command at a chosen write step: with ``SIGEREC_KILL_AT_WRITE_STEP=N`` in its
environment, the process sends itself SIGKILL at its N-th step (every step is also appended to
the file named by ``SIGEREC_WRITE_STEP_LOG``, so a test can count a command's steps first).
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None

KILL_STEP_VARIABLE = "SIGEREC_KILL_AT_WRITE_STEP"
STEP_LOG_VARIABLE = "SIGEREC_WRITE_STEP_LOG"
# Leftovers are named ``.<output name><mark><pid>-<start time>...``.
TEMPORARY_MARK = ".sigerec-tmp-"
STAGING_MARK = ".sigerec-staging-"
ASIDE_MARK = ".sigerec-old-"
_MARKS = (TEMPORARY_MARK, STAGING_MARK, ASIDE_MARK)
# numpy.save and scipy.sparse.save_npz append their suffix to a name that lacks it.
_KEPT_SUFFIXES = (".npy", ".npz")
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
        prefix = f".{path.name}{TEMPORARY_MARK}{_process_tag()}."
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
            _flush(temporary)
            temporary.chmod(_mode_of(path))
            _step("written", path)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _flush_folder(path.parent)
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
    target = _real_path(Path(target))
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
            _flush_tree(staging)
            _step("built", target)
            with _folder_lock(home):
                if in_place:
                    _replace_entries(staging, target, keep)
                else:
                    if keep is not None and target.is_dir():
                        _carry_over(target, staging, keep)
                    _copy_mode(target, staging)
                    _swap(staging, target)
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
            _flush_tree(staging)
            _copy_mode(None, staging)
            for name in itertools.chain([first], names):
                if _rename_if_free(staging, parent / name):
                    _flush_folder(parent)
                    _step("created", parent / name)
                    return parent / name
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    raise FileExistsError(errno.EEXIST, "every name is taken", str(parent))


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
        name = entry.name
        owner = _owner(name) if name.startswith(".") else None
        if owner is None or _alive(*owner):
            continue
        if ASIDE_MARK in name:
            original = entry.with_name(name[1:].split(ASIDE_MARK)[0])
            if not original.exists():
                entry.rename(original)
                continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# --- naming the output in errors ---------------------------------------------------------

# Less free space than this when a write fails for no stated reason: the disk is full.
NEARLY_FULL_BYTES = 64 << 20


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
        if named is None or any(mark in str(named) for mark in _MARKS):
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


# --- processes and their leftovers -------------------------------------------------------


def _process_tag() -> str:
    """``<pid>-<start time>``: tells this process from a later one that reuses its id."""
    return f"{os.getpid()}-{_start_time(os.getpid()) or 0}"


def _owner(name: str) -> tuple[int, int] | None:
    """The (pid, start time) a leftover's name carries, or None for a name not made here."""
    for mark in _MARKS:
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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- folders ---------------------------------------------------------------------------


def _real_path(target: Path) -> Path:
    """The folder's own path: a symlinked output folder is replaced where it lives, and the link stays."""
    return target.resolve()


def _staging_folder(target: Path, home: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=home, prefix=f".{target.name}{STAGING_MARK}{_process_tag()}."))


def _replace_entries(staging: Path, target: Path, keep: Callable[[str], bool] | None) -> None:
    """Move what ``staging`` (inside ``target``) holds into ``target`` entry by entry, then drop the
    old entries ``keep`` does not keep."""
    written = {entry.name for entry in staging.iterdir()}
    for entry in staging.iterdir():
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink() and not _exchange(entry, destination):
            shutil.rmtree(destination)
        if not destination.exists():
            entry.rename(destination)
        elif not destination.is_dir():
            os.replace(entry, destination)
    for entry in target.iterdir():
        if entry.name in written or entry == staging or _owner(entry.name) or (keep is not None and keep(entry.name)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    _flush_folder(target)


def _carry_over(old: Path, staging: Path, keep: Callable[[str], bool]) -> None:
    """Hard-link (or copy) into ``staging`` the kept entries of ``old`` that ``build`` did not write."""
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


def _copy_mode(old: Path | None, staging: Path) -> None:
    """The new folder gets the old one's permissions (a fresh one the umask's), not mkdtemp's 0700."""
    staging.chmod(old.stat().st_mode & 0o7777 if old is not None and old.is_dir() else 0o777 & ~_umask())


def _mode_of(path: Path) -> int:
    """The permissions a rewritten file keeps (a new one the umask's), not mkstemp's 0600."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; afterwards ``staging`` holds the old folder (if there was one).

    A process working inside ``target`` follows it into the new folder.
    """
    inside = _working_folder_inside(target)
    if not target.exists():
        if not _rename_if_free(staging, target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    elif not _exchange(staging, target):
        # No atomic swap here: move the old folder aside first; remove_leftovers moves it back
        # if the process dies between the two renames.
        aside = target.with_name(f".{target.name}{ASIDE_MARK}{_process_tag()}")
        target.rename(aside)
        staging.rename(target)
        aside.rename(staging)
    _flush_folder(target.parent)
    if inside is not None:
        os.chdir(target / inside if (target / inside).is_dir() else target)


def _working_folder_inside(target: Path) -> Path | None:
    try:
        return Path.cwd().relative_to(target)
    except (ValueError, OSError):
        return None


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _renameat2(source: Path, destination: Path, flags: int) -> int:
    """0, or the errno of Linux's renameat2 (ENOSYS where there is none)."""
    if not sys.platform.startswith("linux"):
        return errno.ENOSYS
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        return errno.ENOSYS
    result = function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), flags)
    return 0 if result == 0 else ctypes.get_errno()


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; False where the system cannot."""
    error = _renameat2(first, second, _RENAME_EXCHANGE)
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    if error:
        raise OSError(error, os.strerror(error), str(second))
    return True


def _rename_if_free(source: Path, destination: Path) -> bool:
    """Rename a folder to ``destination`` unless that exists; False if it does."""
    error = _renameat2(source, destination, _RENAME_NOREPLACE)
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
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


@contextmanager
def _folder_lock(folder: Path):
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


# --- durability -------------------------------------------------------------------------


def _flush(path: Path) -> None:
    """Push a written file to the disk before it is renamed into place (a full disk shows here)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    except OSError as error:
        error.filename = error.filename or str(path)
        raise
    finally:
        os.close(handle)


def _flush_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                _flush(Path(root, name))


def _flush_folder(folder: Path) -> None:
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
