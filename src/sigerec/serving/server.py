"""The server process behind ``sigerec serve``: socket, threads, garbage collector and workers.

``app.py`` holds the routes; this module starts them in one process or in N uvicorn workers,
each of which builds its own app from the environment (``app_from_environment``).
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import socket
import sys
from pathlib import Path

from fastapi import FastAPI

from sigerec.errors import SigerecError
from sigerec.serving.app import create_app
from sigerec.serving.model_holder import load_model
from sigerec.serving.settings import (
    API_KEY_FILE_VARIABLE,
    API_KEY_VARIABLE,
    CORS_VARIABLE,
    ServerSettings,
    is_loopback,
    read_api_key,
)

# `sigerec serve --workers N` starts N processes, each of which builds its app from these.
MODEL_DIR_VARIABLE = "SIGEREC_MODEL_DIR"
INDEX_VARIABLE = "SIGEREC_INDEX"
ACCESS_LOG_VARIABLE = "SIGEREC_ACCESS_LOG"
WORKER_START_SECONDS = 120

logger = logging.getLogger("sigerec.serving")


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound here rather than by uvicorn, for two reasons.

    A busy port becomes one clear error before anything starts. And the socket is created with
    ``proto=IPPROTO_TCP``: asyncio turns on TCP_NODELAY only for connections accepted from such a
    socket, while uvicorn's own socket for ``--workers > 1`` has proto 0, so every keep-alive
    answer then waited ~40 ms for the client's delayed ACK (uvicorn issue #3149: with --workers 2,
    one client of benchmarks/serving_load.py measured 44 ms per request instead of 1.7 ms).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise SigerecError(f"port {port} on {host} is in use; pick another with --port.") from None
        raise SigerecError(f"cannot listen on {host}:{port} ({error.strerror}); check --host and --port.") from None
    sock.set_inheritable(True)  # worker processes receive it
    return sock


def freeze_loaded_objects() -> None:
    """Move everything loaded so far (the model) out of the garbage collector's sight.

    The model lives as long as the server process, so scanning it again in every collection
    only adds latency spikes: freezing took p99 at 8 clients from 18 to under 10 ms. For
    server processes only (it is never undone).
    """
    gc.collect()
    gc.freeze()


def use_one_thread_per_request() -> None:
    """Limit BLAS and OpenMP to one thread in this process and in the workers it starts.

    A ranking is one matrix-vector product over the catalogue, too small to gain from a second
    thread, and concurrent requests already use the cores. With OpenBLAS's default of a thread
    per core, a 23,033 x 64 product on 2 busy cores had a p99 of 9-12 ms instead of 0.2 ms.
    """
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"  # read by libraries loaded later, e.g. in worker processes
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy is already loaded here; without threadpoolctl its threads stay
        logger.warning("threadpoolctl is not installed: BLAS keeps one thread per core (pip install threadpoolctl)")
        return
    threadpool_limits(1)


def configure_access_log(enabled: bool) -> None:
    """JSON access lines (``request_guard``) on stderr, one per request, instead of uvicorn's."""
    access = logging.getLogger("sigerec.access")
    access.setLevel(logging.INFO if enabled else logging.WARNING)
    access.propagate = False
    if enabled and not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
    serving = logging.getLogger("sigerec.serving")
    if not serving.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        serving.addHandler(handler)
        serving.setLevel(logging.INFO)
        serving.propagate = False


def settings_from_environment() -> ServerSettings:
    """The settings `run_server` passes to ``--workers N`` processes through the environment."""
    key_file = os.environ.get(API_KEY_FILE_VARIABLE)
    origins = tuple(o for o in os.environ.get(CORS_VARIABLE, "").split(",") if o)
    return ServerSettings(
        api_key=read_api_key(key_file),
        cors_origins=origins,
        access_log=os.environ.get(ACCESS_LOG_VARIABLE, "1") == "1",
        index=os.environ.get(INDEX_VARIABLE, "auto"),
        reload_by_supervisor=True,
    )


def app_from_environment() -> FastAPI:
    """Uvicorn factory used by ``sigerec serve --workers N``: each worker loads the model folder
    named by ``SIGEREC_MODEL_DIR`` with the settings of `settings_from_environment`."""
    model_dir = os.environ.get(MODEL_DIR_VARIABLE)
    if not model_dir:
        raise SigerecError(f"set {MODEL_DIR_VARIABLE} to a model folder, or start the server with `sigerec serve`.")
    settings = settings_from_environment()
    configure_access_log(settings.access_log)
    model = load_model(model_dir, settings.index, settings.max_k)
    use_one_thread_per_request()  # after the service, so that FAISS's OpenMP, if loaded, is limited too
    app = create_app(model, settings=settings)
    freeze_loaded_objects()
    return app


def run_server(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: ServerSettings | None = None,
    api_key_file: str | Path | None = None,
) -> None:
    """Serve the model folder ``model_dir`` until Ctrl+C, in this process or in ``workers`` processes.

    The folder is loaded and checked here first in every case, so that a bad folder, index or
    key fails before the server starts; with several workers this copy is dropped (each worker
    loads its own). SIGHUP reloads the folder: in this process, or (``--workers N``) by uvicorn
    replacing each worker with a new one that is ready before the old one stops.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = settings or ServerSettings()
    model = load_model(model_dir, settings.index, settings.max_k)
    metadata = model.metadata()
    sock = listening_socket(host, port)
    use_one_thread_per_request()
    configure_access_log(settings.access_log)

    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    print(
        f"serving {metadata['model']} trained on {metadata['dataset']} "
        f"({metadata['n_users']:,} users, {metadata['n_items']:,} items, index {metadata['index']}, "
        f"version {metadata['version']}) from {model_dir}",
        file=sys.stderr,
    )
    if settings.api_key is None and not is_loopback(host):
        print(
            f"WARNING: listening on {host} without an API key: anyone who can reach this port can query the model. "
            f"Pass --api-key-file FILE (or set {API_KEY_VARIABLE}).",
            file=sys.stderr,
        )
    print(f"listening on {url} (API docs: {url}/docs); Ctrl+C stops, SIGHUP reloads the model", file=sys.stderr)
    # Our own JSON access log replaces uvicorn's.
    options = {"host": host, "port": port, "access_log": False, "log_level": "info"}
    # What uvicorn.run does, but on our socket; Ctrl+C is the normal way to stop, so exit code 0.
    try:
        if workers == 1:
            app = create_app(model, settings=settings, handle_sighup=True)
            freeze_loaded_objects()
            server = uvicorn.Server(uvicorn.Config(app, **options))
            server.run(sockets=[sock])
            if not server.started:
                raise SigerecError(f"the server on {url} stopped at start-up; see uvicorn's message above.")
        else:
            # Each worker process builds its own app, which uvicorn can only do from an import string.
            del model
            os.environ[MODEL_DIR_VARIABLE] = str(Path(model_dir).resolve())
            os.environ[INDEX_VARIABLE] = settings.index
            os.environ[ACCESS_LOG_VARIABLE] = "1" if settings.access_log else "0"
            os.environ[CORS_VARIABLE] = ",".join(settings.cors_origins)
            if api_key_file is not None:
                os.environ[API_KEY_FILE_VARIABLE] = str(Path(api_key_file).resolve())
            config = uvicorn.Config(
                "sigerec.serving.server:app_from_environment",
                factory=True,
                workers=workers,
                # On a reload (SIGHUP) uvicorn gives each new worker this long to load the model
                # before it gives up and keeps the old one; its default of 5 s is too short for
                # a large catalogue on a busy machine.
                timeout_worker_healthcheck=WORKER_START_SECONDS,
                **options,
            )
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal once it has shut down cleanly
