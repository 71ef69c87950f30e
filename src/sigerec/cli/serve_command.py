"""``sigerec serve``: answer recommendation requests over HTTP from an exported model folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from sigerec.cli.errors import report_errors
from sigerec.errors import SigerecError


@report_errors
def serve_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder made by `sigerec export`.")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes, each with its own copy of the model.")] = 1,
    index: Annotated[
        str, typer.Option(help="auto | exact | faiss | faiss-ivf: how the top-k items are found.")
    ] = "auto",
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding the API key; every route but /health then needs it "
            "('Authorization: Bearer KEY' or 'X-API-Key: KEY'). Default: the SIGEREC_API_KEY variable, else none."
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Let browser pages from this origin call the API (repeatable); CORS is off without it."),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log one JSON line per request on stderr.")] = True,
    text_model: Annotated[
        Path | None,
        typer.Option(
            help="Local copy of the text encoder for POST /items, when the path the export recorded is missing."
        ),
    ] = None,
    image_model: Annotated[
        Path | None,
        typer.Option(help="Local EfficientNet-Lite0 weights for POST /items, when the recorded path is missing."),
    ] = None,
) -> None:
    """Serve a model's recommendations over HTTP (FastAPI + uvicorn) until Ctrl+C.

    Example: sigerec serve models/lightgcn-clothing --port 8000, then
    curl 'http://127.0.0.1:8000/users/A1KLRMWW2FWPL4/recommendations?k=10'.
    Routes: GET /users/{id}/recommendations, POST /recommendations {"items": [...], "k": 10},
    GET /items/{id}/similar, GET /model, GET /metrics, GET /health, POST /admin/reload,
    POST /items (new items without retraining; needs the API key);
    interactive docs at /docs (offline). SIGHUP or POST /admin/reload switches to a new export
    of the folder without dropping a request.
    """
    from sigerec.serving.new_items import IMAGE_MODEL_VARIABLE, TEXT_MODEL_VARIABLE
    from sigerec.serving.server import run_server
    from sigerec.serving.settings import ServerSettings, read_api_key

    # Through the environment, so every worker process the server starts finds them too.
    for option, path, variable in (
        ("--text-model", text_model, TEXT_MODEL_VARIABLE),
        ("--image-model", image_model, IMAGE_MODEL_VARIABLE),
    ):
        if path is not None:
            if not path.exists():
                raise SigerecError(f"{option} {path}: no such file or folder; give a local copy of the encoder.")
            os.environ[variable] = str(path.resolve())

    settings = ServerSettings(
        api_key=read_api_key(api_key_file),
        cors_origins=tuple(cors_origin or ()),
        access_log=access_log,
        index=index,
        reload_by_supervisor=workers > 1,
    )
    run_server(model_dir, host=host, port=port, workers=workers, settings=settings, api_key_file=api_key_file)


def register_serve_command(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
