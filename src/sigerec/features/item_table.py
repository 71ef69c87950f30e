"""Match the rows of a user's item file (CSV, Parquet, JSON lines) to a dataset's item ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.data.id_maps import ITEM_MAP_FILE, item_raw_ids
from sigerec.data.tabular import RawTable, column, first_bad_row, read_table
from sigerec.errors import SigerecError


@dataclass
class MatchedItems:
    """Which row of the item file describes which dataset item (first row wins)."""

    table: RawTable
    rows: np.ndarray  # [n_matched] row of the table
    items: np.ndarray  # [n_matched] dataset item id described by that row
    n_items: int
    raw_item_ids: np.ndarray | None  # raw id of each dataset item, when the folder has a map
    unknown_rows: int  # rows naming an id the dataset does not have
    duplicate_rows: int  # later rows repeating an id already seen

    def raw_id(self, item: int) -> str:
        return str(item) if self.raw_item_ids is None else str(self.raw_item_ids[item])

    def notes(self) -> list[str]:
        notes = []
        if self.unknown_rows:
            notes.append(
                f"{self.table.path}: {self.unknown_rows} rows name items that are not in the dataset; ignored."
            )
        if self.duplicate_rows:
            notes.append(
                f"{self.table.path}: {self.duplicate_rows} rows repeat an item id; the first row of each is used."
            )
        return notes


def match_items(
    path: str | Path, dataset_dir: str | Path, n_items: int, id_col: str, needed: list[str]
) -> MatchedItems:
    """Read ``path`` and map its ``id_col`` to dataset item ids.

    With an item map (``i_id_mapping.csv``, written by ``sigerec data import``) the file's ids
    are raw ids; without one (MMRec's own folders) they are the dataset's item ids.
    """
    table = read_table(Path(path))
    ids = column(table, id_col, "--id-col")
    for name in needed:
        column(table, name, "the column options (--text-cols, --image-col, --category-col)")  # fails early
    raw_item_ids = item_raw_ids(dataset_dir, n_items)
    if raw_item_ids is not None:
        lookup = pd.Series(np.arange(len(raw_item_ids)), index=pd.Index(raw_item_ids.astype(str)))
        lookup = lookup[~lookup.index.duplicated()]
        items = lookup.reindex(ids.to_numpy()).to_numpy()
        known = ~np.isnan(items)
    else:
        numeric = pd.to_numeric(ids, errors="coerce").to_numpy(dtype=float)
        not_integer = ~np.isfinite(numeric) | (numeric != np.round(numeric))
        if not_integer.any():
            raise first_bad_row(
                table,
                not_integer,
                id_col,
                ids,
                f"is not an integer item id. {Path(dataset_dir) / ITEM_MAP_FILE} does not exist, so ids must be "
                "the dataset's item ids (0, 1, ...); import the interactions with `sigerec data import` to map raw ids",
            )
        items = numeric
        known = (numeric >= 0) & (numeric < n_items)
    items = np.where(known, items, -1).astype(np.int64)
    candidate_rows = np.flatnonzero(known)
    _, first = np.unique(items[candidate_rows], return_index=True)
    rows = np.sort(candidate_rows[first])
    if len(rows) == 0:
        raise SigerecError(
            f"{table.path}: no row's '{id_col}' matches an item of {dataset_dir}. Check --id-col"
            + (
                f" (ids are looked up in {ITEM_MAP_FILE})."
                if raw_item_ids is not None
                else " (ids must be 0..n_items-1)."
            )
        )
    return MatchedItems(
        table=table,
        rows=rows,
        items=items[rows],
        n_items=n_items,
        raw_item_ids=raw_item_ids,
        unknown_rows=int((~known).sum()),
        duplicate_rows=int(len(candidate_rows) - len(rows)),
    )
