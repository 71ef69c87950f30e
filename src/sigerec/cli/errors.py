"""Turn user-facing errors into a clear message and exit code 2, never a traceback."""

from __future__ import annotations

import functools
import sys

from rich.console import Console
from rich.markup import escape

from sigerec.errors import SigerecError

USAGE_ERROR_EXIT_CODE = 2
_stderr = Console(stderr=True)


def report_errors(command):
    """Decorator for CLI commands: SigerecError -> 'error: ...' on stderr, exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SigerecError as error:
            # The message is text, not markup: `pip install 'sigerec[ray]'` must print its brackets.
            _stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            sys.exit(USAGE_ERROR_EXIT_CODE)
        except KeyboardInterrupt:
            _stderr.print("interrupted; a run resumes from its last checkpoint with `sigerec train --resume RUN_DIR`")
            sys.exit(130)

    return wrapper


def warn(message: str) -> None:
    """A warning line on stderr (dropped rows and similar notes)."""
    _stderr.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
