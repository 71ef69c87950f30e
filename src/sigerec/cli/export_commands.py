"""``sigerec export``, ``recommend``, ``similar`` and ``add-items``: from a trained run to recommendations."""

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


@report_errors
def add_items_command(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `sigerec export`.")],
    items_file: Annotated[Path, typer.Argument(help="The new items: CSV, TSV, Parquet or JSON lines.")],
    id_col: Annotated[
        str | None, typer.Option(help="Column of the new items' ids (default: the recorded one).")
    ] = None,
    text_cols: Annotated[
        str | None, typer.Option(help="The text columns, as encoded for the model (default: the recorded ones).")
    ] = None,
    image_col: Annotated[str | None, typer.Option(help="The image column (default: the recorded one).")] = None,
    title_col: Annotated[str | None, typer.Option(help="Column of titles (default: the recorded one).")] = None,
    text_model: Annotated[
        Path | None, typer.Option(help="Local copy of the text encoder, when the recorded path does not exist here.")
    ] = None,
    image_model: Annotated[
        Path | None, typer.Option(help="Local EfficientNet-Lite0 weights, when the recorded path does not exist here.")
    ] = None,
) -> None:
    """Add new items to an exported model without retraining; the folder is rewritten atomically.

    Each item is encoded with the encoders the model's features were made with and gets the
    vector of the model's cold-item rule (the mean vector of its most similar warm items).
    Needs a content model trained with cold_item_rule=warm_neighbours.

    Example: sigerec add-items models/ml100k new_movies.csv --id-col item_id
    """
    from sigerec.data.tabular import read_table
    from sigerec.serving.cold_items import new_item_spec
    from sigerec.serving.model_folder import ModelFolder
    from sigerec.serving.new_items import EncoderPaths, add_items_to_folder

    folder = ModelFolder.load(model_dir)
    spec = new_item_spec(folder)
    _check_recorded_columns(spec, text_cols, image_col)
    table = read_table(items_file)
    if id_col is not None and id_col != spec["id_col"]:
        if id_col not in table.frame.columns:
            raise SigerecError(f"{items_file}: no column '{id_col}' (--id-col).")
        frame = table.frame.drop(columns=[spec["id_col"]], errors="ignore").rename(columns={id_col: spec["id_col"]})
        table.frame = frame
    new = add_items_to_folder(model_dir, table, EncoderPaths(text_model, image_model), title_col, current=folder)
    added = len(table.frame)
    console.print(f"added {added} items to {model_dir}: {len(new.item_ids)} items now")


def _check_recorded_columns(spec: dict, text_cols: str | None, image_col: str | None) -> None:
    """Explicit columns must be those the model's features were encoded from: other columns
    would give vectors the model's neighbours were never compared with."""
    encoders = [e for e in spec["encoders"].values() if e is not None]
    if text_cols is not None:
        given = [c.strip() for c in text_cols.split(",") if c.strip()]
        recorded = [e["columns"] for e in encoders if e["kind"] == "text"]
        if given not in recorded:
            expected = " or ".join(",".join(r) for r in recorded) or "none (the model has no text modality)"
            raise SigerecError(
                f"--text-cols {text_cols}: the model's text features were encoded from {expected}; "
                "give the new items those columns, in that order."
            )
    if image_col is not None:
        recorded = [e["image_col"] for e in encoders if e["kind"] == "image"]
        if image_col not in recorded:
            expected = " or ".join(recorded) or "none (the model has no image modality)"
            raise SigerecError(f"--image-col {image_col}: the model's image features were encoded from {expected}.")


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
    app.command("add-items")(add_items_command)
