"""Read MMRec-style dataset folders: ``<name>.inter`` plus ``<modality>_feat.npy`` files.

"Atomic files" is RecBole's name for its data files, one per kind of data (``.inter``,
``.user``, ``.item``, ``.kg``, ...), of which MMRec keeps ``.inter``; the word has nothing to do
with the crash-safe writes of ``sigerec.safe_write``.

A folder holds one interaction file (``<name>.inter``, optionally gzip-compressed as
``<name>.inter.gz``), tab separated with header ``userID itemID [rating] [timestamp]
x_label`` (0/1/2 = train/valid/test, LF or CRLF line endings), and any number of feature
files whose rows are items (their format: ``feature_files.py``). Everything is validated when
it is loaded, at the boundary, so that models and trainers can trust the data.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.data.dataset import Dataset
from sigerec.data.feature_files import read_features
from sigerec.errors import SigerecError

USER_COLUMN = "userID"
ITEM_COLUMN = "itemID"
LABEL_COLUMN = "x_label"
REQUIRED_COLUMNS = (USER_COLUMN, ITEM_COLUMN, LABEL_COLUMN)
SPLIT_LABELS = {0: "train", 1: "valid", 2: "test"}
# Ids index int32 sparse matrices and embedding tables; larger ones are not MMRec ids.
MAX_ID = np.iinfo(np.int32).max - 1


@dataclass
class LoadReport:
    """What loading dropped, as MMRec does, so it can be reported rather than lost."""

    duplicate_pairs: int = 0
    rows_of_users_without_train: int = 0

    def warnings(self, path: Path) -> list[str]:
        notes = []
        if self.duplicate_pairs:
            notes.append(
                f"{path}: dropped {self.duplicate_pairs} duplicate (userID, itemID) rows "
                "(the first occurrence is kept, as MMRec does)."
            )
        if self.rows_of_users_without_train:
            notes.append(
                f"{path}: dropped {self.rows_of_users_without_train} valid/test rows of users "
                "with no training rows (they cannot be ranked; MMRec drops them too)."
            )
        return notes


def find_interaction_file(folder: Path) -> Path:
    """The single ``*.inter`` (or ``*.inter.gz``) file of a dataset folder."""
    if not folder.is_dir():
        raise SigerecError(
            f"{folder}: no such dataset folder. Give a folder holding <name>.inter "
            "(see `sigerec data import` to make one from CSV or Parquet)."
        )
    candidates = sorted(list(folder.glob("*.inter")) + list(folder.glob("*.inter.gz")))
    if not candidates:
        raise SigerecError(
            f"{folder}: no <name>.inter file found. A dataset folder needs one tab-separated "
            "interaction file with header 'userID itemID x_label'."
        )
    if len(candidates) > 1:
        names = ", ".join(c.name for c in candidates)
        raise SigerecError(f"{folder}: several interaction files ({names}); keep exactly one.")
    return candidates[0]


def dataset_name(interaction_file: Path) -> str:
    return interaction_file.name.removesuffix(".gz").removesuffix(".inter")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            # CRLF files (as upstream Clothing/Sports/TikTok) are handled by the C parser.
            frame = pd.read_csv(handle, sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise SigerecError(f"{path}: the file is empty; it needs a header 'userID itemID x_label' and rows.") from None
    except UnicodeDecodeError:
        raise SigerecError(_not_utf8_message(path)) from None
    except (OSError, pd.errors.ParserError) as error:
        raise SigerecError(
            f"{path}: cannot be read as a tab-separated file ({str(error).strip()}). Every line needs one "
            "tab-separated value per header column; a .gz name needs gzip content."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if not missing:
        return
    import difflib

    if len(frame.columns) == 1 and any(sep in frame.columns[0] for sep in (" ", ",", ";")):
        raise SigerecError(
            f"{path}, line 1: the header {frame.columns[0]!r} is not tab separated. Separate the columns "
            "with tabs, or convert the file with `sigerec data import`."
        )
    # A column that is already one of the required names is no rename candidate for another.
    unclaimed = [c for c in frame.columns if c not in REQUIRED_COLUMNS]
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, unclaimed, n=1, cutoff=0.5)
        hints.append(f"'{column}'" + (f" (found '{close[0]}': rename it)" if close else ""))
    raise SigerecError(
        f"{path}, line 1: missing column(s) {', '.join(hints)}. The header has "
        f"{list(frame.columns)}; an MMRec .inter file needs 'userID itemID x_label', tab separated."
    )


def parse_id_column(values: pd.Series, path: Path, column: str, allowed: set[int] | None = None) -> np.ndarray:
    """Non-negative integer ids, or an error naming the first bad line (header is line 1)."""
    stripped = values.str.strip()
    numeric = pd.to_numeric(stripped, errors="coerce")
    bad = numeric.isna() | (numeric < 0) | (numeric != numeric.round()) | (numeric > MAX_ID)
    if allowed is not None:
        bad |= ~numeric.isin(list(allowed))
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        shown = values.iloc[position]
        if allowed is not None:
            expected = "one of " + "/".join(str(a) for a in sorted(allowed)) + " (train/valid/test)"
        else:
            expected = f"a non-negative integer id (at most {MAX_ID})"
        raise SigerecError(
            f"{path}, line {position + 2}, column '{column}': {shown!r} is not {expected}. "
            f"{int(bad.sum())} row(s) have this problem; fix or remove them."
        )
    return numeric.to_numpy(dtype=np.int64)


def read_interactions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, labels) of an ``.inter`` file, validated."""
    parsed = _read_clean_integers(path)
    if parsed is not None:
        return parsed
    frame = _read_table(path)
    _check_columns(frame, path)
    if len(frame) == 0:
        raise SigerecError(
            f"{path}: the file has a header but no interaction rows; add one 'userID<TAB>itemID<TAB>x_label' "
            "row per interaction after line 1."
        )
    users = parse_id_column(frame[USER_COLUMN], path, USER_COLUMN)
    items = parse_id_column(frame[ITEM_COLUMN], path, ITEM_COLUMN)
    labels = parse_id_column(frame[LABEL_COLUMN], path, LABEL_COLUMN, allowed=set(SPLIT_LABELS))
    return users, items, labels


def _read_clean_integers(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The three columns parsed straight to integers, or None when anything is unusual.

    Parsing every value as text first (what the checks below need to name a bad line) takes
    about 7 GB and minutes for 30M rows; a well-formed file, the usual case, does not need it.
    Any surprise (a bad value, a missing column, CRLF, gzip) returns None and the careful
    path reads the file again and explains the problem.
    """
    try:
        frame = pd.read_csv(path, sep="\t", dtype=np.int64, engine="c")
    except (ValueError, OverflowError, OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if not set(REQUIRED_COLUMNS) <= set(frame.columns):
        return None
    columns = [frame[name].to_numpy() for name in (USER_COLUMN, ITEM_COLUMN, LABEL_COLUMN)]
    users, items, labels = columns
    if len(frame) == 0 or min(users.min(), items.min()) < 0 or max(users.max(), items.max()) > MAX_ID:
        return None
    if not np.isin(labels, list(SPLIT_LABELS)).all():
        return None
    return users, items, labels


def _not_utf8_message(path: Path) -> str:
    """Where the first byte that is not UTF-8 sits (line numbers count the header as 1)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return (
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8 text, so this is not a "
            "tab-separated .inter file. Save it as UTF-8 text, or convert it with `sigerec data import`."
        )
    return f"{path}: not UTF-8 text. Save it as UTF-8 text, or convert it with `sigerec data import`."


def drop_like_mmrec(
    users: np.ndarray, items: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LoadReport]:
    """Drop repeated pairs and valid/test rows of users without training rows, counting both."""
    report = LoadReport()
    keys = users * (int(items.max()) + 1) + items
    _, first = np.unique(keys, return_index=True)
    keep = np.zeros(len(users), dtype=bool)
    keep[first] = True
    report.duplicate_pairs = int(len(users) - keep.sum())
    users, items, labels = users[keep], items[keep], labels[keep]
    # np.unique reorders; restore file order so everything downstream is stable.
    order = np.argsort(np.flatnonzero(keep), kind="stable")
    users, items, labels = users[order], items[order], labels[order]
    has_train = np.zeros(int(users.max()) + 1, dtype=bool)
    has_train[users[labels == 0]] = True
    orphan = ~has_train[users]
    report.rows_of_users_without_train = int(orphan.sum())
    return users[~orphan], items[~orphan], labels[~orphan], report


def load_dataset(folder: str | Path, warn=None) -> Dataset:
    """Load and validate an MMRec-style folder into a :class:`Dataset`.

    ``warn`` receives one message per kind of dropped row (default: ``warnings.warn``).
    """
    folder = Path(folder)
    path = find_interaction_file(folder)
    users, items, labels = read_interactions(path)
    # Ids are contiguous from 0 in MMRec files; the sizes are the largest id + 1 over the
    # whole file, before any drop (as MMRec), so feature rows still match every item id.
    n_users = int(users.max()) + 1
    n_items = int(items.max()) + 1
    users, items, labels, report = drop_like_mmrec(users, items, labels)
    for message in report.warnings(path):
        if warn is None:
            import warnings

            warnings.warn(message, stacklevel=2)
        else:
            warn(message)
    splits = {}
    for label, split in SPLIT_LABELS.items():
        rows = labels == label
        if not rows.any():
            raise SigerecError(
                f"{path}: the {split} split is empty (no rows with x_label={label}). "
                "Every dataset needs train, valid and test rows; re-split with `sigerec data import --split mmrec`."
            )
        splits[split] = Dataset.interaction_matrix(users[rows], items[rows], n_users, n_items)
    features = read_features(folder, n_items)
    return Dataset(
        name=dataset_name(path),
        n_users=n_users,
        n_items=n_items,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        features=features,
        path=folder,
    )
