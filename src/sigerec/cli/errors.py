"""Turn errors a user can act on into one clear message, never a traceback.

Bad input (``SigerecError``) exits with code 2. A file that cannot be written (a full disk, a
failing disk, missing permissions, a read-only file system) exits with code 1 and names the
file and what to do; every writer replaces its outputs only once they are complete
(``sigerec.safe_write``), so earlier outputs are still there.
"""

from __future__ import annotations

import errno
import functools
import sys

from rich.console import Console
from rich.markup import escape

from sigerec.errors import SigerecError

USAGE_ERROR_EXIT_CODE = 2
WRITE_ERROR_EXIT_CODE = 1
INTERRUPTED_EXIT_CODE = 130
_stderr = Console(stderr=True)

RUN_AGAIN = "then run the same command again (a training run continues with sigerec train --resume RUN_DIR)"
# What each system error means to the user and what to do about it.
WRITE_PROBLEMS = {
    errno.ENOSPC: f"the disk is full. Free space there, {RUN_AGAIN}",
    errno.EDQUOT: f"your disk quota is used up. Free space or ask for a larger quota, {RUN_AGAIN}",
    errno.EFBIG: (
        f"the file is larger than this process may write (see `ulimit -f`) or than the file system allows; "
        f"raise the limit or write elsewhere, {RUN_AGAIN}"
    ),
    errno.EIO: f"the disk or network file system reported an input/output error. Check it (e.g. dmesg), {RUN_AGAIN}",
    errno.EACCES: f"permission denied. Check that you may write there (ls -ld), or write elsewhere, {RUN_AGAIN}",
    errno.EPERM: f"the operation is not permitted there. Check the permissions, or write elsewhere, {RUN_AGAIN}",
    errno.EROFS: f"the file system is read-only. Write to another folder, {RUN_AGAIN}",
}
KEPT = "Earlier outputs were left as they were."
# SQLite (the Optuna study of `sigerec tune`) reports a full disk in its own words.
SQLITE_FULL = "database or disk is full"


def report_errors(command):
    """Decorator for CLI commands: SigerecError -> exit 2, a failed write -> exit 1, both one message."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SigerecError as error:
            _error(str(error))
            sys.exit(USAGE_ERROR_EXIT_CODE)
        except KeyboardInterrupt:
            _stderr.print(
                "interrupted; run the same command again to finish (a training run: sigerec train --resume RUN_DIR)"
            )
            sys.exit(INTERRUPTED_EXIT_CODE)
        except Exception as error:
            message = write_error_message(error)
            if message is None:
                raise
            _error(message)
            sys.exit(WRITE_ERROR_EXIT_CODE)

    return wrapper


def write_error_message(error: BaseException) -> str | None:
    """The message of a write the system refused (full disk, I/O error, permissions), else None.

    Other errors, bugs included, keep their traceback.
    """
    if isinstance(error, OSError) and error.errno in WRITE_PROBLEMS:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}cannot write: {WRITE_PROBLEMS[error.errno]}. {KEPT}"
    cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps sqlite3's error
    if type(cause).__module__ == "sqlite3" and SQLITE_FULL in str(cause):
        return f"the tuning study's database cannot be written: {WRITE_PROBLEMS[errno.ENOSPC]}. {KEPT}"
    return None


def _error(message: str) -> None:
    # The message is text, not markup: `pip install 'sigerec[ray]'` must print its brackets.
    _stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning line on stderr (dropped rows and similar notes)."""
    _stderr.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
