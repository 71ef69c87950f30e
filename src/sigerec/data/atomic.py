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

import codecs
import csv
import gzip
import io
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.data.dataset import Dataset
from sigerec.data.feature_files import read_features
from sigerec.data.tabular import one_line, quoted
from sigerec.errors import SigerecError

USER_COLUMN = "userID"
ITEM_COLUMN = "itemID"
LABEL_COLUMN = "x_label"
REQUIRED_COLUMNS = (USER_COLUMN, ITEM_COLUMN, LABEL_COLUMN)
SPLIT_LABELS = {0: "train", 1: "valid", 2: "test"}
# Ids index int32 sparse matrices and embedding tables; larger ones are not MMRec ids.
MAX_ID = np.iinfo(np.int32).max - 1
# Above SPARSE_ID_SLACK, the largest id may be at most SPARSE_ID_FACTOR x the distinct ids
# (see _far_beyond_the_other_ids): one stray huge id would otherwise size tables in gigabytes.
SPARSE_ID_FACTOR = 10
SPARSE_ID_SLACK = 1_000_000


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
    """Every value of the file as text, columns named by the header, indexed by line number (header = line 1).

    The careful path: it counts every line's tab-separated values before pandas splits the lines,
    because pandas silently turns an extra value on the first row into an index (shifting every
    column by one) and pads a missing one.
    """
    data = _read_text_bytes(path)
    values, blank = _line_layout(data)
    lines = np.flatnonzero(~blank) + 1  # the line number of every line that holds something
    if len(lines) == 0:
        raise SigerecError(f"{path}: the file is empty; it needs a header 'userID itemID x_label' and rows.")
    header_line = int(lines[0])
    header = [name.strip() for name in _line_text(data, header_line).split("\t")]
    _check_columns(header, path, header_line)
    wrong = lines[values[lines - 1] != len(header)]
    if len(wrong):
        line = int(wrong[0])
        raise SigerecError(
            f"{path}, line {line}: {values[line - 1]} tab-separated values, but the header (line {header_line}) "
            f"has {len(header)}. Every line needs one tab-separated value per header column."
        )
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep="\t",
            header=None,
            names=range(len(header)),
            dtype=str,
            na_filter=False,
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=True,
            engine="c",
            encoding="utf-8",
        )
    except pd.errors.ParserError as error:
        raise SigerecError(f"{path}: cannot be read as a tab-separated file ({one_line(error)}).") from None
    if len(frame) != len(lines):  # pandas saw other lines than the count above: never seen, but never trusted
        raise SigerecError(f"{path}: cannot be read as a tab-separated file (its lines are ambiguous).")
    frame = frame.iloc[1:]
    frame.index = lines[1:]
    frame.columns = header
    frame.attrs["header_line"] = header_line
    return frame


def _read_text_bytes(path: Path) -> bytes:
    """The file's bytes (unzipped for ``.gz``), checked to be UTF-8, without a byte-order mark and
    with every line ending (CRLF, or a lone CR) made LF, so that line numbers mean one thing."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        fix = "; a .gz name needs gzip content, complete (a copy cut short ends early)" if path.suffix == ".gz" else ""
        raise SigerecError(f"{path}: cannot be read ({one_line(error)}){fix}.") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SigerecError(
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8 text, so this is not a "
            "tab-separated .inter file. Save it as UTF-8 text, or convert it with `sigerec data import`."
        ) from None
    return data


def _line_layout(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Per line: its number of tab-separated values, and whether it is blank (empty or spaces only).

    Blank lines are skipped, as pandas skips them; vectorised, as files have millions of lines.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buffer == ord("\n"))
    if not data.endswith(b"\n"):
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)

    def per_line(byte: str) -> np.ndarray:
        positions = np.flatnonzero(buffer == ord(byte))
        return np.searchsorted(positions, ends) - np.searchsorted(positions, starts)

    return per_line("\t") + 1, per_line(" ") == ends - starts


def _line_text(data: bytes, line: int) -> str:
    """Line ``line`` (1-based) of LF-separated ``data``."""
    start = 0
    for _ in range(line - 1):
        start = data.index(b"\n", start) + 1
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)].decode("utf-8")


def _check_columns(header: list[str], path: Path, line: int) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    repeated = [c for c in REQUIRED_COLUMNS if header.count(c) > 1]
    if repeated:
        raise SigerecError(
            f"{path}, line {line}: the header names {', '.join(repr(c) for c in repeated)} more than once; "
            "keep one column of each name."
        )
    if not missing:
        return
    import difflib

    if len(header) == 1 and any(sep in header[0] for sep in (" ", ",", ";")):
        raise SigerecError(
            f"{path}, line {line}: the header {header[0]!r} is not tab separated. Separate the columns "
            "with tabs, or convert the file with `sigerec data import`."
        )
    # A column that is already one of the required names is no rename candidate for another.
    unclaimed = [c for c in header if c not in REQUIRED_COLUMNS]
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, unclaimed, n=1, cutoff=0.5)
        hints.append(f"'{column}'" + (f" (found {quoted(close[0])}: rename it)" if close else ""))
    raise SigerecError(
        f"{path}, line {line}: missing column(s) {', '.join(hints)}. The header has "
        f"{header}; an MMRec .inter file needs 'userID itemID x_label', tab separated."
    )


def parse_id_column(values: pd.Series, path: Path, column: str, allowed: set[int] | None = None) -> np.ndarray:
    """Non-negative integer ids, or an error naming the first bad line (``values`` is indexed by line)."""
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
            f"{path}, line {values.index[position]}, column '{column}': {shown!r} is not {expected}. "
            f"{int(bad.sum())} row(s) have this problem; fix or remove them."
        )
    return numeric.to_numpy(dtype=np.int64)


def _far_beyond_the_other_ids(ids: np.ndarray) -> np.ndarray:
    """Ids so far beyond the number of distinct ids that tables sized by the largest would not fit.

    Sizes are the largest id + 1 (as MMRec's), so one stray id 2147483646 would make every
    [n_users, n_items] matrix and embedding table take gigabytes; MMRec's ids count from 0
    without gaps, and small datasets (up to SPARSE_ID_SLACK ids) may have any gaps.
    """
    if int(ids.max()) + 1 <= SPARSE_ID_SLACK:
        return np.zeros(len(ids), dtype=bool)
    return ids + 1 > SPARSE_ID_FACTOR * len(pd.unique(ids)) + SPARSE_ID_SLACK


def _check_ids_are_dense(ids: np.ndarray, lines: pd.Index, path: Path, column: str) -> None:
    far = _far_beyond_the_other_ids(ids)
    if far.any():
        position = int(np.flatnonzero(far)[0])
        raise SigerecError(
            f"{path}, line {lines[position]}, column '{column}': id {ids[position]} is far beyond the "
            f"{len(pd.unique(ids)):,} distinct ids of the column, and tables are sized by the largest id. "
            "Ids count from 0 without large gaps (as MMRec numbers them); renumber them, e.g. with "
            "`sigerec data import`."
        )


def read_interactions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, labels) of an ``.inter`` file, validated."""
    parsed = _read_clean_integers(path)
    if parsed is not None:
        return parsed
    frame = _read_table(path)
    if len(frame) == 0:
        raise SigerecError(
            f"{path}: the file has a header but no interaction rows; add one 'userID<TAB>itemID<TAB>x_label' "
            f"row per interaction after line {frame.attrs['header_line']}."
        )
    users = parse_id_column(frame[USER_COLUMN], path, USER_COLUMN)
    items = parse_id_column(frame[ITEM_COLUMN], path, ITEM_COLUMN)
    labels = parse_id_column(frame[LABEL_COLUMN], path, LABEL_COLUMN, allowed=set(SPLIT_LABELS))
    _check_ids_are_dense(users, frame.index, path, USER_COLUMN)
    _check_ids_are_dense(items, frame.index, path, ITEM_COLUMN)
    return users, items, labels


def _read_clean_integers(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The three columns parsed straight to integers, or None when anything is unusual.

    Parsing every value as text first (what the checks below need to name a bad line) takes
    about 7 GB and minutes for 30M rows; a well-formed file, the usual case, does not need it.
    Any surprise (a bad or non-integer value, a missing, repeated or extra field, a column
    named twice, damaged gzip) returns None and the careful path reads the file again and
    explains the problem, so both paths accept exactly the same files.
    """
    try:
        frame = pd.read_csv(path, sep="\t", engine="c", quoting=csv.QUOTE_NONE)
        # Every line holds one tab fewer than it has values. A short line leaves a NaN (checked
        # below); a long one would not show: pandas makes an index of the first value of a longer
        # first row (shifting every column) and drops an empty last value. Hence the tab count.
        tabs = _count_tabs(path)
    except Exception:  # noqa: BLE001 (whatever failed, the careful path reports it precisely)
        return None
    renamed_twice = any(re.fullmatch(rf"({'|'.join(REQUIRED_COLUMNS)})\.\d+", str(c)) for c in frame.columns)
    required = set(REQUIRED_COLUMNS) <= set(frame.columns)
    if renamed_twice or not required or len(frame) == 0 or frame.isna().to_numpy().any():
        return None
    if tabs != (len(frame.columns) - 1) * (len(frame) + 1):
        return None
    columns = [frame[name].to_numpy() for name in REQUIRED_COLUMNS]
    # Integers, or floats with integral values ("1.0", "1e3", as the careful path accepts them);
    # any other dtype means text somewhere ("True", which pandas would read as 1 if asked for integers).
    if not all(c.dtype == np.int64 or (c.dtype == np.float64 and (c == np.round(c)).all()) for c in columns):
        return None
    if any(np.abs(c).max() > MAX_ID for c in columns):  # checked before the cast: 1e300 has no int64
        return None
    users, items, labels = (c.astype(np.int64) for c in columns)
    if min(users.min(), items.min()) < 0 or not np.isin(labels, list(SPLIT_LABELS)).all():
        return None
    if _far_beyond_the_other_ids(users).any() or _far_beyond_the_other_ids(items).any():
        return None
    return users, items, labels


def _count_tabs(path: Path) -> int:
    """Tabs in the (unzipped) file, read in chunks: no copy of the file is held in memory."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
        return sum(chunk.count(b"\t") for chunk in iter(lambda: handle.read(1 << 24), b""))


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
