"""``sigerec serve``: answer recommendation requests over HTTP from an exported model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sigerec.cli.errors import report_errors


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
    from sigerec.serving.server import run_server

    run_server(model_dir, host=host, port=port, workers=workers, index=index, access_log=access_log)


def register_serve_command(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
