"""The raw-id maps saved beside a dataset (MMRec's ``u_id_mapping.csv`` / ``i_id_mapping.csv``).

Each is tab separated with two columns: the raw id (named ``raw_id`` by ``sigerec data
import``; MMRec's own folders name it ``asin`` or ``user_id``) and the dataset id, counting
0, 1, 2, ... Raw ids stay strings so that '007' is never read as 7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.errors import SigerecError

USER_MAP_FILE = "u_id_mapping.csv"
ITEM_MAP_FILE = "i_id_mapping.csv"
RAW_ID_COLUMN = "raw_id"


def read_id_mapping(path: str | Path) -> np.ndarray:
    """Raw ids (strings, exactly as in the source file) indexed by the dataset id."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise SigerecError(f"{path}: cannot be read as an id map ({error}).") from None
    new_ids = pd.to_numeric(frame.iloc[:, -1], errors="coerce").to_numpy() if frame.shape[1] == 2 else None
    if new_ids is None or not np.array_equal(new_ids, np.arange(len(frame))):
        raise SigerecError(
            f"{path}: expected two tab-separated columns, the raw id and the dataset id counting 0, 1, 2, ... "
            "Rebuild it with `sigerec data import`."
        )
    return frame.iloc[:, 0].to_numpy(dtype=object)


def item_raw_ids(dataset_dir: str | Path) -> np.ndarray | None:
    """The raw item ids of a dataset folder, or None when it has no item map (ids are raw)."""
    path = Path(dataset_dir) / ITEM_MAP_FILE
    return read_id_mapping(path) if path.exists() else None
