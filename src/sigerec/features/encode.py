"""Encode a user's item file into a modality's features: match ids, encode in cached batches,
mean-fill the rest, write the matrix and its provenance. Shared by text and image encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from sigerec.data.atomic import load_dataset
from sigerec.data.builtin import resolve_data_path
from sigerec.data.tabular import RawTable
from sigerec.features.batches import BatchCache, encode_in_batches, file_digest
from sigerec.features.item_table import match_items
from sigerec.features.store import write_features


class ItemEncoder(Protocol):
    """What ``encode_item_file`` needs from a text or image encoder."""

    def prepare(self) -> None:
        """Load the model (kept out of the timed encoding; fails early on a bad model)."""

    def identity(self) -> dict:
        """Everything that determines the vectors (model, preprocessing), for cache keys and provenance."""

    def columns(self) -> list[str]:
        """Columns of the item file the encoder reads."""

    def payloads(self, table: RawTable, rows: np.ndarray) -> list:
        """One input per matched row (a text, an image path)."""

    def encode_batch(self, payloads: list) -> tuple[np.ndarray, np.ndarray]:
        """Vectors [n, dim] and ok [n] (False: empty or unreadable input, to be mean-filled)."""

    def cost(self, payload) -> int:
        """A sort key grouping inputs of similar cost into batches (e.g. text length)."""


def encode_item_file(
    items_file: str | Path,
    data: str | Path,
    id_col: str,
    modality: str,
    encoder: ItemEncoder,
    batch_size: int = 64,
    warn=None,
    quiet: bool = False,
) -> dict:
    """Write ``<data>/<modality>_feat.npy`` from ``items_file``; returns the written metadata."""
    dataset_dir = resolve_data_path(data)
    dataset = load_dataset(dataset_dir, warn=warn)
    matched = match_items(items_file, dataset_dir, dataset.n_items, id_col, encoder.columns())
    for note in matched.notes():
        if warn is not None:
            warn(note)
    payloads = encoder.payloads(matched.table, matched.rows)
    # Batches of similar length waste no time on padding (texts); the order is undone below.
    order = np.argsort([encoder.cost(p) for p in payloads], kind="stable")
    payloads = [payloads[i] for i in order]
    key = {
        "encoder": encoder.identity(),
        "source_sha256": file_digest(Path(items_file)),
        "id_col": id_col,
        "batch_size": batch_size,
        "items": matched.items.tolist(),
    }
    cache = BatchCache(dataset_dir, modality, key)
    encoder.prepare()
    vectors, ok, timing = encode_in_batches(
        payloads, encoder.encode_batch, batch_size, cache, f"encode {modality}", quiet
    )
    restore = np.empty_like(order)
    restore[order] = np.arange(len(order))
    vectors, ok = vectors[restore], ok[restore]
    metadata = {
        "source": str(Path(items_file).resolve()),
        "id_col": id_col,
        "encoder": encoder.identity(),
        "rows_matched": len(matched.items),
        "rows_unknown_id": matched.unknown_rows,
        "rows_repeated_id": matched.duplicate_rows,
        "empty_or_unreadable": int((~ok).sum()),
        "items_not_in_file": int(dataset.n_items - len(matched.items)),
        "timing": timing,
    }
    report = write_features(
        dataset_dir, modality, dataset.n_items, matched.items[ok], vectors[ok], metadata, raw_id=matched.raw_id
    )
    cache.remove()
    return report
