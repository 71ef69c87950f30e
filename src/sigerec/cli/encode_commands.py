"""``sigerec encode ...``: item text, images, category labels and knowledge graphs into ``<modality>_feat.npy`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sigerec.cli.errors import report_errors, warn
from sigerec.data.feature_files import feature_file, missing_items_file
from sigerec.errors import SigerecError

encode_app = typer.Typer(
    help="Encode item text, images, category labels and knowledge graphs into feature files (offline).",
    epilog="Example: sigerec encode text items.jsonl --data data/mine --id-col item --text-cols title,description",
    no_args_is_help=True,
)
console = Console()

# Options every encode command takes.
ItemsFile = Annotated[Path, typer.Argument(help="Item metadata: CSV, TSV, Parquet, JSON lines or RecBole .item.")]
DatasetOption = Annotated[str, typer.Option("--data", help="Dataset folder (or built-in name) whose items to encode.")]
IdColumn = Annotated[
    str, typer.Option("--id-col", help="Column with the item id (raw id when the folder has i_id_mapping.csv).")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _encode(items_file: Path, data: str, id_col: str, modality: str, encoder, batch_size: int, quiet: bool) -> dict:
    """Run one encoder over the item file into ``<data>/<modality>_feat.npy`` and print the report."""
    from sigerec.features.encode import encode_item_file

    if batch_size < 1:
        raise SigerecError(f"--batch-size must be positive, got {batch_size}.")
    report = encode_item_file(items_file, data, id_col, modality, encoder, batch_size, warn=warn, quiet=quiet)
    _print_report(report)
    return report


def _print_report(report: dict) -> None:
    timing = report["timing"]
    rate = timing["items_per_second"]
    console.print(
        f"wrote {feature_file(Path(), report['modality']).name}: {report['n_items']:,} items x {report['dim']} dims; "
        f"encoded {report['encoded']:,} ({report['coverage']:.1%} coverage), mean-filled {report['mean_filled']:,} "
        f"({report['items_not_in_file']:,} not in the file, {report['empty_or_unreadable']:,} empty or unreadable; "
        f"ids in {missing_items_file(Path(), report['modality']).name})",
        highlight=False,
    )
    if timing["batches_reused"]:
        console.print(f"resumed: {timing['batches_reused']} of {timing['batches']} batches came from the cache")
    if rate:
        console.print(f"{rate:.1f} items/s", highlight=False)


def _columns(option: str) -> list[str]:
    columns = [c.strip() for c in option.split(",") if c.strip()]
    if not columns:
        raise SigerecError("--text-cols needs at least one column name, e.g. --text-cols title,description.")
    return columns


@encode_app.command("text")
@report_errors
def encode_text_command(
    items_file: ItemsFile,
    data: DatasetOption,
    id_col: IdColumn,
    text_cols: Annotated[
        str,
        typer.Option("--text-cols", help="Columns joined in this order, as MMRec: title,brand,categories,description."),
    ] = "title,brand,categories,description",
    modality: Annotated[str, typer.Option(help="Name of the feature file: <modality>_feat.npy.")] = "text",
    batch_size: Annotated[int, typer.Option(help="Items per batch (also the unit of resume).")] = 64,
    model_path: Annotated[
        Path | None,
        typer.Option(help="Local sentence-transformers model folder (default: the bundled all-MiniLM-L6-v2)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Encode item text with all-MiniLM-L6-v2 into <data>/<modality>_feat.npy (384-d).

    Items missing from the file or with empty text get the mean vector (MMRec's rule) and
    are listed in <modality>_feat.missing.tsv. An interrupted run continues from its cache.

    Example: sigerec encode text items.jsonl --data data/baby --id-col asin --text-cols title,description
    """
    from sigerec.features.text import TextEncoder

    _encode(items_file, data, id_col, modality, TextEncoder(_columns(text_cols), model_path), batch_size, quiet)


@encode_app.command("image")
@report_errors
def encode_image_command(
    items_file: ItemsFile,
    data: DatasetOption,
    id_col: IdColumn,
    image_col: Annotated[str, typer.Option("--image-col", help="Column with each item's image file path.")],
    images_root: Annotated[Path | None, typer.Option(help="Folder that relative image paths start from.")] = None,
    modality: Annotated[str, typer.Option(help="Name of the feature file: <modality>_feat.npy.")] = "image",
    batch_size: Annotated[int, typer.Option(help="Images per batch (also the unit of resume).")] = 32,
    weights_path: Annotated[
        Path | None, typer.Option(help="Local EfficientNet-Lite0 .pth weights (default: the bundled ImageNet weights).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Encode item images with EfficientNet-Lite0 (ImageNet) into pooled 1280-d vectors.

    Items missing from the file, or whose image is missing or cannot be decoded, get the mean
    vector (MMRec's rule) and are listed in <modality>_feat.missing.tsv. An interrupted run
    continues from its cache.

    Example: sigerec encode image items.csv --data data/shop --id-col sku --image-col photo --images-root photos/
    """
    from sigerec.features.image import ImageEncoder

    if images_root is not None and not images_root.is_dir():
        raise SigerecError(f"--images-root {images_root}: no such folder.")
    _encode(items_file, data, id_col, modality, ImageEncoder(image_col, images_root, weights_path), batch_size, quiet)


@encode_app.command("categories")
@report_errors
def encode_categories_command(
    items_file: ItemsFile,
    data: DatasetOption,
    id_col: IdColumn,
    category_col: Annotated[
        str, typer.Option("--category-col", help="Column listing each item's labels, e.g. 'Action Comedy'.")
    ],
    separator: Annotated[
        str, typer.Option("--separator", help="Text between two labels (default: a space, as RecBole token_seq).")
    ] = " ",
    modality: Annotated[str, typer.Option(help="Name of the feature file: <modality>_feat.npy.")] = "category",
    quiet: Quiet = False,
) -> None:
    """Encode item category labels as multi-hot vectors into <data>/<modality>_feat.npy.

    One column per label of the sorted vocabulary (recorded in <modality>_feat.json); items
    missing from the file or without a label get the mean vector and are listed in
    <modality>_feat.missing.tsv.

    Example: sigerec encode categories ml-100k.item --data data/ml100k --id-col item_id --category-col class --modality genre
    """
    from sigerec.features.categorical import CategoryEncoder

    report = _encode(items_file, data, id_col, modality, CategoryEncoder(category_col, separator), 4096, quiet)
    console.print(f"{report['dim']} categories: {', '.join(report['encoder']['vocabulary'])}", highlight=False)


@encode_app.command("kg")
@report_errors
def encode_knowledge_graph_command(
    kg_file: Annotated[Path, typer.Argument(help="Triples with columns head_id, relation_id, tail_id (RecBole .kg).")],
    link_file: Annotated[
        Path, typer.Option("--link", help="Item-to-entity links with columns item_id, entity_id (RecBole .link).")
    ],
    data: DatasetOption,
    modality: Annotated[str, typer.Option(help="Name of the feature file: <modality>_feat.npy.")] = "kg",
    dim: Annotated[int, typer.Option(help="Dimensions kept by the truncated SVD.")] = 128,
    min_entity_items: Annotated[
        int, typer.Option(help="Drop graph facts shared by fewer dataset items than this.")
    ] = 2,
    tfidf: Annotated[bool, typer.Option(help="TF-IDF weighting of the facts before the reduction.")] = True,
) -> None:
    """Encode a knowledge graph's one-hop facts of each item into <data>/<modality>_feat.npy.

    Each linked item's facts (actor X, genre Y, director Z, ...) form a TF-IDF multi-hot row,
    reduced by a deterministic truncated SVD. Items that are not linked, or share no fact with
    another item, get the mean vector and are listed in <modality>_feat.missing.tsv.
    The link file's item_id is the raw item id (the one in i_id_mapping.csv, if the folder has it).

    Example: sigerec encode kg ml-100k.kg --link ml-100k.link --data data/ml100k --dim 128
    """
    from sigerec.features.knowledge_graph import encode_knowledge_graph

    report = encode_knowledge_graph(kg_file, link_file, data, modality, dim, min_entity_items, tfidf=tfidf, warn=warn)
    console.print(
        f"wrote {feature_file(data, modality).name}: {report['n_items']:,} items x {report['dim']} dims from "
        f"{report['features_kept']:,} shared facts; encoded {report['encoded']:,} ({report['coverage']:.1%} coverage), "
        f"mean-filled {report['mean_filled']:,} (ids in {missing_items_file(data, modality).name})",
        highlight=False,
    )
