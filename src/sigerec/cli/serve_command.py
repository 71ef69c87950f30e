"""``sigerec serve``: answer recommendation requests over HTTP from an exported model folder."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from sigerec.cli.errors import report_errors
from sigerec.errors import SigerecError


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


@report_errors
def serve_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder made by `sigerec export`.")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes, each with its own copy of the model.")] = 1,
    index: Annotated[
        str, typer.Option(help="auto | exact | faiss | faiss-ivf: how the top-k items are found.")
    ] = "auto",
    access_log: Annotated[bool, typer.Option(help="Log one line per request.")] = True,
) -> None:
    """Serve a model's recommendations over HTTP (FastAPI + uvicorn) until Ctrl+C.

    Example: sigerec serve models/lightgcn-clothing --port 8000, then
    curl 'http://127.0.0.1:8000/users/A1KLRMWW2FWPL4/recommendations?k=10'.
    Routes: GET /users/{id}/recommendations, POST /recommendations {"items": [...], "k": 10},
    GET /items/{id}/similar, GET /model, GET /health; interactive docs at /docs.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from sigerec.serving.app import (
        INDEX_VARIABLE,
        MODEL_DIR_VARIABLE,
        create_app,
        freeze_loaded_objects,
        use_one_thread_per_request,
    )
    from sigerec.serving.model_folder import ModelFolder
    from sigerec.serving.service import RecommendationService

    # Load once here in every case, so that a bad folder or index fails before the server starts.
    service = RecommendationService(ModelFolder.load(model_dir), index=index)
    metadata = service.metadata()
    sock = listening_socket(host, port)
    use_one_thread_per_request()

    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    typer.echo(
        f"serving {metadata['model']} trained on {metadata['dataset']} "
        f"({metadata['n_users']:,} users, {metadata['n_items']:,} items, index {metadata['index']}) from {model_dir}",
        err=True,
    )
    typer.echo(f"listening on {url} (API docs: {url}/docs); Ctrl+C stops", err=True)
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "info"}
    # What uvicorn.run does, but on our socket; Ctrl+C is the normal way to stop, so exit code 0.
    try:
        if workers == 1:
            app = create_app(service)
            freeze_loaded_objects()
            server = uvicorn.Server(uvicorn.Config(app, **options))
            server.run(sockets=[sock])
            if not server.started:
                raise SigerecError(f"the server on {url} stopped at start-up; see uvicorn's message above.")
        else:
            # Each worker process builds its own app, which uvicorn can only do from an import string.
            del service
            os.environ[MODEL_DIR_VARIABLE] = str(Path(model_dir).resolve())
            os.environ[INDEX_VARIABLE] = index
            config = uvicorn.Config(
                "sigerec.serving.app:app_from_environment", factory=True, workers=workers, **options
            )
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal once it has shut down cleanly


def register_serve_command(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
