"""``sigerec data ...`` commands (import, stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sigerec.cli.errors import report_errors, warn
from sigerec.data.id_maps import ITEM_MAP_FILE, USER_MAP_FILE
from sigerec.data.importer import ImportOptions, ImportSummary, import_interactions
from sigerec.data.splitting import SplitMethod
from sigerec.data.stats import dataset_stats

data_app = typer.Typer(
    help="Import interaction files and inspect datasets.",
    epilog="Example: sigerec data import ratings.csv --user-col user --item-col item --out data/mine; sigerec data stats data/mine",
    no_args_is_help=True,
)


@data_app.command("import")
@report_errors
def import_command(
    file: Annotated[
        Path, typer.Argument(help="CSV, TSV, Parquet or RecBole atomic (.inter) file.", show_default=False)
    ],
    user_col: Annotated[str, typer.Option(help="Column holding user ids (kept as strings).", show_default=False)],
    item_col: Annotated[str, typer.Option(help="Column holding item ids (kept as strings).", show_default=False)],
    out: Annotated[Path, typer.Option(help="Dataset folder to write.", show_default=False)],
    split: Annotated[
        SplitMethod,
        typer.Option(
            help="mmrec: MMRec's per-user random 8:1:1; temporal-loo: last two by time; none: use --label-col."
        ),
    ] = SplitMethod.MMREC,
    seed: Annotated[int, typer.Option(help="Seed of the mmrec split's shuffle.")] = 0,
    time_col: Annotated[str | None, typer.Option(help="Column of Unix times or ISO dates.")] = None,
    rating_col: Annotated[str | None, typer.Option(help="Column of numeric ratings.")] = None,
    min_rating: Annotated[
        float | None, typer.Option(help="Keep rows rated at least this (needs --rating-col).")
    ] = None,
    label_col: Annotated[
        str | None, typer.Option(help="Column of 0/1/2 or train/valid/test for --split none (default: x_label).")
    ] = None,
    min_user_interactions: Annotated[int, typer.Option(help="k-core: users need at least this many rows.")] = 0,
    min_item_interactions: Annotated[int, typer.Option(help="k-core: items need at least this many rows.")] = 0,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the --out folder's name).")] = None,
    sep: Annotated[str | None, typer.Option(help="Force the delimiter of a text file (e.g. ';' or tab).")] = None,
    force: Annotated[bool, typer.Option(help="Replace a different dataset already in --out.")] = False,
) -> None:
    """Import an interaction file as an MMRec dataset folder (<name>.inter + id maps).

    Keeps rows rated >= --min-rating, drops repeated (user, item) pairs
    (keeping the earliest), applies the k-core, renumbers ids from 0 and
    splits each user's rows. Example:

        sigerec data import ml-100k.inter --user-col user_id \\
          --item-col item_id --time-col timestamp --rating-col rating \\
          --min-rating 4 --split mmrec --seed 999 --out data/ml100k
    """
    if label_col and split is not SplitMethod.NONE:
        warn(f"--label-col is only read with --split none; ignored for --split {split.value}.")
    options = ImportOptions(
        user_col=user_col,
        item_col=item_col,
        time_col=time_col,
        rating_col=rating_col,
        min_rating=min_rating,
        label_col=label_col,
        split=split,
        seed=seed,
        min_user_interactions=min_user_interactions,
        min_item_interactions=min_item_interactions,
        sep=sep,
    )
    summary = import_interactions(file, out, options, name=name, force=force)
    for message in summary.warnings:
        warn(message)
    _print_import_summary(summary)


def _print_import_summary(summary: ImportSummary) -> None:
    console = Console(highlight=False, soft_wrap=True)
    split = summary.options.split
    seed = f" (seed {summary.options.seed})" if split is SplitMethod.MMREC else ""
    sizes = ", ".join(f"{name} {size:,}" for name, size in summary.split_sizes.items())
    console.print(f"read {summary.rows_read:,} rows from {summary.source}")
    console.print(f"dropped {summary.dropped_text()}")
    console.print(f"{summary.n_users:,} users, {summary.n_items:,} items, {summary.interactions:,} interactions")
    console.print(f"split {split.value}{seed}: {sizes}")
    console.print(f"wrote {summary.interaction_file} (+ {USER_MAP_FILE}, {ITEM_MAP_FILE})")


@data_app.command("stats")
@report_errors
def stats_command(
    data: Annotated[
        str, typer.Argument(help="Dataset folder or built-in dataset name (e.g. baby).", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Describe a dataset: sizes, density, split sizes, cold users/items and feature coverage.

    Example:

        sigerec data stats data/ml100k

        sigerec data stats baby --json
    """
    stats = dataset_stats(data)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"dataset {stats['name']} ({stats['path']})")
    table = Table("statistic", "value")
    for key, value in stats.items():
        if key in {"name", "path", "features"}:
            continue
        table.add_row(key.replace("_", " "), _format(value))
    for modality, feature in stats["features"].items():
        source = f", from {feature['source']}" if feature.get("source") else ""
        table.add_row(f"{modality} features", f"dim {feature['dim']}, coverage {feature['coverage']:.1%}{source}")
    if not stats["features"]:
        table.add_row("features", "none (no <modality>_feat.npy files)")
    console.print(table, soft_wrap=False)


def _format(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.6f}" if value < 0.01 else f"{value:,.2f}"
