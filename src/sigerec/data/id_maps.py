"""The raw-id maps saved beside a dataset (MMRec's ``u_id_mapping.csv`` / ``i_id_mapping.csv``).

Each is tab separated with two columns: the raw id (named ``raw_id`` by ``sigerec data
import``; MMRec's own folders name it ``asin`` or ``user_id``) and the dataset id, counting
0, 1, 2, ... Raw ids stay strings so that '007' is never read as 7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.data.tabular import one_line
from sigerec.errors import SigerecError

USER_MAP_FILE = "u_id_mapping.csv"
ITEM_MAP_FILE = "i_id_mapping.csv"
RAW_ID_COLUMN = "raw_id"
REBUILD_HINT = "Rebuild it with `sigerec data import`."


def read_id_mapping(path: str | Path) -> np.ndarray:
    """Raw ids (strings, exactly as in the source file) indexed by the dataset id."""
    path = Path(path)
    try:
        # The header is read as a row, so that a line with a third value is an error rather than
        # an index pandas would make of its first value (shifting the raw id by one column).
        # Blank lines are rows too (and refused): data import never writes one, and a raw id
        # holding a carriage return, written unquoted, reads as a line break plus the rest of the id.
        # A text handle, so that Python decodes the whole file strictly (pandas decodes values
        # after removing quotes, where a stray byte can join the next into a valid character).
        with open(path, encoding="utf-8", newline="") as handle:
            frame = pd.read_csv(handle, sep="\t", header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except UnicodeDecodeError:
        raise SigerecError(f"{path}: not UTF-8 text, so not an id map. {REBUILD_HINT}") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise SigerecError(f"{path}: cannot be read as an id map ({one_line(error)}). {REBUILD_HINT}") from None
    rows = frame.iloc[1:]
    expected = "two tab-separated columns, the raw id and the dataset id counting 0, 1, 2, ..."
    if frame.shape[1] != 2:
        raise SigerecError(f"{path}: {frame.shape[1]} columns; expected {expected} {REBUILD_HINT}")
    wrong = np.flatnonzero(rows.iloc[:, 1].str.strip().to_numpy() != np.arange(len(rows)).astype(str))
    if len(wrong):
        line, row = int(wrong[0]) + 2, rows.iloc[int(wrong[0])].tolist()
        raise SigerecError(f"{path}, line {line}: {row}; expected {expected} {REBUILD_HINT}")
    return rows.iloc[:, 0].to_numpy(dtype=object)


def item_raw_ids(dataset_dir: str | Path, n_items: int | None = None) -> np.ndarray | None:
    """The raw item ids of a dataset folder, or None when it has no item map (ids are raw).

    With ``n_items``, a map of another length is an error: item i would get another item's raw id
    (or none at all).
    """
    path = Path(dataset_dir) / ITEM_MAP_FILE
    if not path.exists():
        return None
    raw_ids = read_id_mapping(path)
    if n_items is not None and len(raw_ids) != n_items:
        raise SigerecError(f"{path}: maps {len(raw_ids)} item ids but the dataset has {n_items} items. {REBUILD_HINT}")
    return raw_ids
