"""Turn a user's interaction file into an MMRec dataset folder (``sigerec data import``).

Reads CSV (delimiter sniffed), TSV, Parquet or RecBole atomic files, then applies the same
steps as MMRec's preprocessing notebooks, in the same order: rating filter, duplicate
pairs, iterative k-core, ids renumbered from 0 in order of first appearance (maps saved as
``u_id_mapping.csv``/``i_id_mapping.csv``), per-user split (or, for item cold-start, a
split of whole items). The result is written as
``<name>.inter`` so that :func:`sigerec.data.atomic.load_dataset` reads it. Every problem
with the input is a :class:`SigerecError` naming the file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.data.atomic import ITEM_COLUMN, LABEL_COLUMN, SPLIT_LABELS, USER_COLUMN
from sigerec.data.feature_files import feature_file, feature_files, missing_items_file, read_provenance
from sigerec.data.id_maps import ITEM_MAP_FILE, RAW_ID_COLUMN, USER_MAP_FILE, item_raw_ids
from sigerec.data.kcore import kcore_filter
from sigerec.data.splitting import (
    TRAIN,
    UNRECOGNISED_LABEL,
    SplitMethod,
    SplitResult,
    cold_item_count,
    cold_item_split,
    labels_from_column,
    mmrec_split,
    temporal_leave_one_out_split,
)
from sigerec.data.tabular import (
    RawTable,
    column,
    first_bad_row,
    id_column,
    number_column,
    read_table,
    timestamp_column,
)
from sigerec.errors import SigerecError
from sigerec.safe_write import remove_leftovers, write_folder

RATING_COLUMN = "rating"
TIME_COLUMN = "timestamp"
DEFAULT_LABEL_COLUMN = LABEL_COLUMN


@dataclass(frozen=True)
class ImportOptions:
    """What to read from the source file and how to filter and split it."""

    user_col: str
    item_col: str
    time_col: str | None = None
    rating_col: str | None = None
    min_rating: float | None = None
    label_col: str | None = None  # only for SplitMethod.NONE; default x_label
    split: SplitMethod = SplitMethod.MMREC
    seed: int = 0
    cold_fraction: float = 0.2  # only for SplitMethod.COLD_ITEMS: share of all items held out
    cold_only_with_content: str | None = None  # a modality whose features are already in the folder
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    sep: str | None = None  # None: sniff comma, tab or semicolon from the header


@dataclass
class ImportSummary:
    """What the import read, dropped and wrote; the CLI prints it."""

    source: Path
    interaction_file: Path
    options: ImportOptions
    rows_read: int
    dropped_below_min_rating: int = 0
    dropped_duplicates: int = 0
    dropped_by_kcore: int = 0
    n_users: int = 0
    n_items: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    cold_items: dict[str, int] = field(default_factory=dict)  # valid/test -> items held out (cold-items split)
    warnings: list[str] = field(default_factory=list)

    @property
    def interactions(self) -> int:
        return sum(self.split_sizes.values())

    def dropped_text(self) -> str:
        """E.g. '44,625 below --min-rating 4, 0 repeated pairs, 0 by k-core'."""
        parts = []
        if self.options.min_rating is not None:
            parts.append(f"{self.dropped_below_min_rating:,} below --min-rating {self.options.min_rating:g}")
        parts.append(f"{self.dropped_duplicates:,} repeated pairs")
        parts.append(f"{self.dropped_by_kcore:,} by k-core")
        return ", ".join(parts)


def import_interactions(
    source: str | Path, out_dir: str | Path, options: ImportOptions, name: str | None = None, force: bool = False
) -> ImportSummary:
    """Read, filter, renumber and split ``source``; write ``out_dir/<name>.inter`` and the id maps."""
    source, out_dir = Path(source), Path(out_dir)
    interaction_file = out_dir / f"{name or out_dir.resolve().name}.inter"
    _check_options(options)
    table = read_table(source, options.sep)
    rows = _interaction_rows(table, options)
    summary = ImportSummary(source, interaction_file, options, rows_read=len(rows))

    rows = _filter(rows, options, summary)

    # Renumber after filtering, in order of first appearance, as MMRec's 0rating2inter does.
    user_ids, raw_users = pd.factorize(rows["user"])
    item_ids, raw_items = pd.factorize(rows["item"])
    split = _split(rows, user_ids, item_ids, options, _content_items(out_dir, raw_items, options))
    if split.users_only_in_train:
        summary.warnings.append(
            f"{split.users_only_in_train} users have fewer than 3 interactions after filtering; all their "
            "rows stay in train, so they are never evaluated."
        )
    summary.warnings.extend(_users_without_train_warning(user_ids, split.labels))
    summary.split_sizes = {split_name: int((split.labels == label).sum()) for label, split_name in SPLIT_LABELS.items()}
    if options.split is SplitMethod.COLD_ITEMS:
        summary.cold_items = {
            split_name: len(np.unique(item_ids[split.labels == label]))
            for label, split_name in SPLIT_LABELS.items()
            if split_name != "train"
        }
    _check_splits_not_empty(source, summary.split_sizes, options)
    summary.n_users, summary.n_items = len(raw_users), len(raw_items)

    output = _output_frame(rows, user_ids, item_ids, split.labels)
    files = {
        interaction_file: _tsv(output),
        out_dir / USER_MAP_FILE: _id_map_tsv(raw_users, USER_COLUMN),
        out_dir / ITEM_MAP_FILE: _id_map_tsv(raw_items, ITEM_COLUMN),
    }
    summary.warnings.extend(_write_dataset(out_dir, files, force))
    return summary


# --- validating columns ----------------------------------------------------------------


def _interaction_rows(table: RawTable, options: ImportOptions) -> pd.DataFrame:
    """user, item (str) and the optional rating, timestamp (float) and label columns, validated."""
    rows = pd.DataFrame(
        {
            "user": id_column(table, options.user_col, "--user-col"),
            "item": id_column(table, options.item_col, "--item-col"),
        }
    )
    if options.rating_col:
        rows[RATING_COLUMN] = number_column(table, options.rating_col, "--rating-col")
    if options.time_col:
        rows[TIME_COLUMN] = timestamp_column(table, options.time_col)
    if options.split is SplitMethod.NONE:
        rows[LABEL_COLUMN] = _given_labels(table, options.label_col or DEFAULT_LABEL_COLUMN)
    return rows


NOT_A_SPLIT_LABEL = (
    "is not a split label; --split none needs 0/1/2 or train/valid/test "
    "(or choose --split mmrec or temporal-loo to make a split)"
)


def _given_labels(table: RawTable, name: str) -> np.ndarray:
    values = column(table, name, "--label-col (for --split none)")
    labels = labels_from_column(values)
    bad = labels == UNRECOGNISED_LABEL
    if bad.any():
        raise first_bad_row(table, bad, name, values, NOT_A_SPLIT_LABEL)
    return labels


def _check_options(options: ImportOptions) -> None:
    if options.min_rating is not None and not options.rating_col:
        raise SigerecError("--min-rating needs --rating-col: name the column that holds the ratings.")
    if options.split is SplitMethod.TEMPORAL_LOO and not options.time_col:
        raise SigerecError("--split temporal-loo orders each user's rows by time: give --time-col.")
    if options.split is SplitMethod.COLD_ITEMS and not 0 < options.cold_fraction < 1:
        raise SigerecError(f"--cold-fraction is {options.cold_fraction:g}; give a share of the items between 0 and 1.")
    if options.cold_only_with_content and options.split is not SplitMethod.COLD_ITEMS:
        raise SigerecError("--cold-only-with-content restricts the cold items of --split cold-items; add that option.")
    if options.min_user_interactions < 0 or options.min_item_interactions < 0:
        raise SigerecError("--min-user-interactions and --min-item-interactions must be 0 or more.")


# --- filtering and splitting ------------------------------------------------------------


def _filter(rows: pd.DataFrame, options: ImportOptions, summary: ImportSummary) -> pd.DataFrame:
    """Rating threshold, then repeated pairs, then k-core (MMRec's order), counting each in ``summary``."""
    if options.min_rating is not None:
        keep = rows[RATING_COLUMN].to_numpy() >= options.min_rating
        summary.dropped_below_min_rating = int((~keep).sum())
        rows = rows[keep]

    repeated = _repeated_pairs(rows, by_time=options.time_col is not None)
    summary.dropped_duplicates = int(repeated.sum())
    rows = rows[~repeated]
    if summary.dropped_duplicates:
        earliest = f"the earliest by '{options.time_col}'" if options.time_col else "the first in the file"
        summary.warnings.append(
            f"{summary.source}: dropped {summary.dropped_duplicates} repeated (user, item) rows, keeping {earliest}."
        )

    if options.min_user_interactions > 1 or options.min_item_interactions > 1:
        core = kcore_filter(
            pd.factorize(rows["user"])[0],
            pd.factorize(rows["item"])[0],
            options.min_user_interactions,
            options.min_item_interactions,
        )
        summary.dropped_by_kcore = core.removed_rows
        rows = rows[core.keep]
    if len(rows) == 0:
        raise SigerecError(
            f"{summary.source}: no interactions are left after filtering ({summary.rows_read:,} read; "
            f"dropped {summary.dropped_text()}). "
            "Lower --min-rating or the --min-user-interactions/--min-item-interactions thresholds."
        )
    return rows


def _repeated_pairs(rows: pd.DataFrame, by_time: bool) -> np.ndarray:
    """Rows repeating an earlier (user, item) pair; "earlier" by time when there is a time column."""
    ordered = rows.sort_values(TIME_COLUMN, kind="stable") if by_time else rows
    repeated = ordered.duplicated(subset=["user", "item"], keep="first")
    return repeated.reindex(rows.index).to_numpy()


def _split(
    rows: pd.DataFrame,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    options: ImportOptions,
    content_items: np.ndarray | None,
) -> SplitResult:
    if options.split is SplitMethod.COLD_ITEMS:
        _check_cold_item_count(int(content_items.sum()) if content_items is not None else None, options, item_ids)
        return cold_item_split(item_ids, options.cold_fraction, options.seed, eligible=content_items)
    if options.split is SplitMethod.MMREC:
        return mmrec_split(user_ids, options.seed)
    if options.split is SplitMethod.TEMPORAL_LOO:
        return temporal_leave_one_out_split(user_ids, rows[TIME_COLUMN].to_numpy())
    return SplitResult(labels=rows[LABEL_COLUMN].to_numpy(dtype=np.int8), users_only_in_train=0)


def _content_items(out_dir: Path, raw_items, options: ImportOptions) -> np.ndarray | None:
    """Per new item code: whether the --out folder's features of the modality hold its content.

    Content is known only once ``sigerec encode`` has run, and it runs on an imported folder;
    so cold items with content are drawn by importing again into that folder. Items are matched
    by raw id (through the folder's current item map), so the new numbering need not equal the old.
    The encoder lists the items it mean-filled (no content) in ``<modality>_feat.missing.tsv``.
    """
    modality = options.cold_only_with_content
    if not modality:
        return None
    features, missing = feature_file(out_dir, modality), missing_items_file(out_dir, modality)
    old_raw_ids = item_raw_ids(out_dir) if features.exists() and missing.exists() else None
    if old_raw_ids is None:
        raise SigerecError(
            f"{out_dir}: --cold-only-with-content {modality} reads {features.name}, {missing.name} and "
            f"{ITEM_MAP_FILE} there, which are missing. Import into --out, encode the {modality} features "
            "(sigerec encode ...), then import again with --split cold-items --force."
        )
    encoded_items = (read_provenance(out_dir, modality) or {}).get("n_items", len(old_raw_ids))
    if encoded_items != len(old_raw_ids):
        raise SigerecError(
            f"{features}: encoded for {encoded_items} items, but {out_dir / ITEM_MAP_FILE} maps {len(old_raw_ids):,}; "
            f"re-encode {modality} for the dataset there first."
        )
    try:
        mean_filled = pd.read_csv(missing, sep="\t", dtype={"itemID": np.int64}, usecols=["itemID"])["itemID"]
    except (ValueError, pd.errors.ParserError) as error:
        raise SigerecError(f"{missing}: not an itemID<TAB>raw_id list ({error}); re-encode {modality}.") from None
    if len(mean_filled) and not (0 <= mean_filled.min() and mean_filled.max() < len(old_raw_ids)):
        raise SigerecError(f"{missing}: item ids outside the folder's {ITEM_MAP_FILE}; re-encode {modality}.")
    with_content = set(np.delete(old_raw_ids, mean_filled.to_numpy()).tolist())
    return np.array([raw_id in with_content for raw_id in raw_items], dtype=bool)


def _check_cold_item_count(n_candidates: int | None, options: ImportOptions, item_ids: np.ndarray) -> None:
    n_items = int(item_ids.max()) + 1
    n_cold = cold_item_count(n_items, options.cold_fraction)
    if n_cold < 2 or n_cold >= n_items:
        raise SigerecError(
            f"--cold-fraction {options.cold_fraction:g} of {n_items:,} items holds out {n_cold:,}; "
            "a cold-items split needs at least 2 cold items (one valid, one test) and one warm item."
        )
    if n_candidates is not None and n_candidates < n_cold:
        raise SigerecError(
            f"--cold-fraction {options.cold_fraction:g} asks for {n_cold:,} cold items, but only {n_candidates:,} "
            f"items have {options.cold_only_with_content} content; lower --cold-fraction."
        )


def _users_without_train_warning(user_ids: np.ndarray, labels: np.ndarray) -> list[str]:
    """A cold-items split (or a given split) can leave users whose every item is held out."""
    has_train = np.zeros(int(user_ids.max()) + 1, dtype=bool)
    has_train[user_ids[labels == TRAIN]] = True
    without = int((~has_train).sum())
    if not without:
        return []
    message = (
        f"{without:,} users have no training row (all their items are held out); the loader drops their "
        "valid/test rows, as MMRec does, so they are never evaluated."
    )
    return [message]


def _check_splits_not_empty(source: Path, sizes: dict[str, int], options: ImportOptions) -> None:
    empty = [name for name, size in sizes.items() if size == 0]
    if not empty:
        return
    if options.split is SplitMethod.COLD_ITEMS:
        fix = "the cold items have no interactions there; raise --cold-fraction or try another --seed"
    elif options.split is SplitMethod.NONE:
        fix = f"the column '{options.label_col or DEFAULT_LABEL_COLUMN}' needs rows of each of train/valid/test (0/1/2)"
    else:
        fix = (
            "no user has the 3 interactions needed for a valid and a test row; lower --min-rating "
            "or the k-core thresholds"
        )
    raise SigerecError(f"{source}: the {options.split.value} split leaves {' and '.join(empty)} empty: {fix}.")


# --- writing --------------------------------------------------------------------------


def _output_frame(rows: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """``userID itemID [rating] [timestamp] x_label``, each user's rows grouped, train first (as MMRec's files)."""
    output = pd.DataFrame({USER_COLUMN: user_ids, ITEM_COLUMN: item_ids})
    for optional in (RATING_COLUMN, TIME_COLUMN):
        if optional in rows:
            output[optional] = _integers_if_whole(rows[optional].to_numpy())
    output[LABEL_COLUMN] = labels
    order = np.lexsort((labels, user_ids))  # stable: within a label, the split's own order is kept
    return output.iloc[order]


def _integers_if_whole(values: np.ndarray) -> np.ndarray:
    """Write 4 and 881250949 rather than 4.0 and 881250949.0 when nothing is fractional."""
    # Only where int64 holds them exactly: 1e19 would wrap to a negative number.
    whole = np.all(values == np.round(values)) and (len(values) == 0 or np.abs(values).max() < 2**53)
    return values.astype(np.int64) if whole else values


def _tsv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(sep="\t", index=False, lineterminator="\n").encode("utf-8")


def _id_map_tsv(raw_ids, id_column: str) -> bytes:
    """``raw_id<TAB><id_column>`` rows, the raw id quoted (CSV style) when it holds a tab, a quote or a
    line break. A lone CR counts as a line break for readers, though pandas' writer leaves it unquoted."""
    ids = pd.Series(raw_ids, dtype=object).astype(str)
    special = ids.str.contains('[\t"\r\n]', regex=True)
    ids[special] = '"' + ids[special].str.replace('"', '""', regex=False) + '"'
    rows = ids + "\t" + pd.Series(np.arange(len(ids))).astype(str) + "\n"
    return (f"{RAW_ID_COLUMN}\t{id_column}\n" + "".join(rows)).encode("utf-8")


def _write_dataset(out_dir: Path, files: dict[Path, bytes], force: bool) -> list[str]:
    """Write the files unless the folder holds a different dataset (then only with ``force``).

    The folder is replaced in one step (``write_folder``): a kill leaves the old dataset or the
    new one, never a new ``.inter`` beside old id maps. Its other files (features, caches) stay.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SigerecError(f"{out_dir}: exists and is not a folder; choose another --out.")
    other_inters = [p for p in sorted(out_dir.glob("*.inter")) + sorted(out_dir.glob("*.inter.gz")) if p not in files]
    changed = [p for p, content in files.items() if not p.exists() or p.read_bytes() != content]
    if not changed and not other_inters:  # the same dataset is there already: nothing to write
        remove_leftovers(out_dir.resolve().parent)  # but what a killed earlier import left goes
        return []
    conflicts = other_inters + [p for p in changed if p.exists()]
    notes = []
    if conflicts:
        if not force:
            raise SigerecError(
                f"{out_dir}: already holds a different dataset ({', '.join(p.name for p in conflicts)}). "
                "Choose another --out folder, or pass --force to replace it."
            )
        notes.append(f"{out_dir}: replaced the dataset that was there ({', '.join(p.name for p in conflicts)}).")
        features = [path.name for path in feature_files(out_dir).values()]
        if features and out_dir / ITEM_MAP_FILE in changed:  # the same items re-split keep their features
            notes.append(
                f"{out_dir}: {', '.join(features)} were made for the old item ids; re-encode them for this dataset."
            )

    def build(staging: Path) -> None:
        for path, content in files.items():
            (staging / path.name).write_bytes(content)

    write_folder(out_dir, build, keep=lambda name: not name.endswith((".inter", ".inter.gz")))
    return notes
