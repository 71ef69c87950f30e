"""``sigerec export``, ``recommend`` and ``similar``: from a trained run to recommendations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sigerec.cli.errors import report_errors, warn
from sigerec.errors import SigerecError

console = Console()
IndexOption = Annotated[str, typer.Option("--index", help="auto | exact | faiss | faiss-ivf.")]
KOption = Annotated[int, typer.Option("-k", "--k", help="How many items.")]


@report_errors
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder (runs/<model>-<data>-<time>).")],
    out: Annotated[Path, typer.Option("--out", help="The model folder to write.")],
    items: Annotated[Path | None, typer.Option(help="Item file with titles (CSV, TSV, Parquet, JSONL).")] = None,
    id_col: Annotated[str | None, typer.Option(help="Column of --items holding the item ids.")] = None,
    title_col: Annotated[str | None, typer.Option(help="Column of --items holding the titles.")] = None,
    checkpoint: Annotated[str, typer.Option(help="best (best valid epoch) or last.")] = "best",
    force: Annotated[bool, typer.Option(help="Replace an existing, non-empty --out.")] = False,
) -> None:
    """Export a trained run into a self-contained model folder for recommend, similar and serve.

    Example: sigerec export runs/lightgcn-baby-<time> --out models/baby
    """
    from sigerec.serving.model_folder import export_run

    if checkpoint not in ("best", "last"):
        raise SigerecError(f"--checkpoint must be best or last, got {checkpoint!r}.")
    path = export_run(run_dir, out, items, id_col, title_col, checkpoint, force, warn=warn)
    console.print(f"exported {run_dir} ({checkpoint} checkpoint) to {path}")


@report_errors
def recommend_command(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `sigerec export`.")],
    user: Annotated[str | None, typer.Option(help="Raw id of a known user.")] = None,
    items: Annotated[str | None, typer.Option(help="Comma-separated raw ids of items a new user liked.")] = None,
    k: KOption = 10,
    index: IndexOption = "auto",
) -> None:
    """Top-k items for a known user (--user), or for a new user from liked items (--items).

    Example: sigerec recommend models/baby --user 42 -k 5
    """
    if (user is None) == (items is None):
        raise SigerecError("give exactly one of --user RAW_ID or --items RAW_ID,RAW_ID,...")
    service = _service(model_dir, index)
    if user is not None:
        results = _call(service.for_user, user, k)
        title = f"top {k} for user {user}"
    else:
        liked = [item.strip() for item in items.split(",") if item.strip()]
        results = _call(service.for_items, liked, k)
        title = f"top {k} for a new user who liked {', '.join(liked)}"
    _print(results, title)


@report_errors
def similar_command(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `sigerec export`.")],
    item: Annotated[str, typer.Option(help="Raw id of an item.")],
    k: KOption = 10,
    index: IndexOption = "auto",
) -> None:
    """The k items whose vectors are closest (cosine) to an item's.

    Example: sigerec similar models/baby --item B000056JHM -k 5
    """
    service = _service(model_dir, index)
    _print(_call(service.similar_items, item, k), f"{k} items similar to {item}")


def _service(model_dir: Path, index: str):
    from sigerec.serving.model_folder import ModelFolder
    from sigerec.serving.service import RecommendationService

    return RecommendationService(ModelFolder.load(model_dir), index)


def _call(method, argument, k: int):
    try:
        return method(argument, k)
    except ValueError as error:  # bad k or an empty list: a usage error, not a crash
        raise SigerecError(str(error)) from None


def _print(results, title: str) -> None:
    table = Table(title=title)
    for column in ("rank", "item", "score", "title"):
        table.add_column(column)
    for rank, result in enumerate(results, 1):
        table.add_row(str(rank), result.item_id, f"{result.score:.4f}", result.title or "")
    console.print(table)


def register_export_commands(app: typer.Typer) -> None:
    app.command("export")(export_command)
    app.command("recommend")(recommend_command)
    app.command("similar")(similar_command)
