"""What an operator sets for ``sigerec serve``, with every default in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sigerec.errors import SigerecError
from sigerec.serving.service import MAX_K

# The key can come from a file (``--api-key-file``) or from this environment variable.
API_KEY_VARIABLE = "SIGEREC_API_KEY"
# `--workers N` passes the key file's path (not the key) to the worker processes through this.
API_KEY_FILE_VARIABLE = "SIGEREC_API_KEY_FILE"
CORS_VARIABLE = "SIGEREC_CORS_ORIGINS"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class ServerSettings:
    """Limits, authentication and logging of the HTTP server (``sigerec serve --help`` shows them)."""

    api_key: str | None = None  # None: no authentication (warned about beyond loopback)
    cors_origins: tuple[str, ...] = ()  # browsers on these origins may call the API; none by default
    access_log: bool = True  # one JSON line per request on stderr
    max_k: int = MAX_K  # the largest k a request may ask for
    max_items: int = 1000  # the most liked items in one POST /recommendations
    max_new_items: int = 1000  # the most new items in one POST /items
    max_id_length: int = 1024  # the longest raw id accepted in a request body
    max_body_bytes: int = 64 * 1024  # larger request bodies answer 413
    max_new_items_body_bytes: int = 4 * 1024 * 1024  # POST /items: up to 1,000 items with long texts
    index: str = "auto"  # how the top-k items are found: auto | exact | faiss | faiss-ivf
    reload_by_supervisor: bool = False  # --workers N: the supervisor restarts workers to reload


def read_api_key(key_file: str | Path | None) -> str | None:
    """The API key from ``key_file``, else from ``SIGEREC_API_KEY``, else None (no authentication)."""
    if key_file is not None:
        path = Path(key_file)
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise SigerecError(f"--api-key-file {path}: cannot be read ({error}).") from None
        source = f"--api-key-file {path}"
    else:
        key = os.environ.get(API_KEY_VARIABLE, "").strip()
        source = API_KEY_VARIABLE
        if not key:
            return None
    if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key) or not key.isprintable():
        raise SigerecError(
            f"{source}: the API key must be at least {MIN_KEY_LENGTH} printable characters without spaces; "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return key


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")
