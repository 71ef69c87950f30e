"""Numbers that describe a dataset folder (``sigerec data stats``), as a plain JSON-able dict.

Counts describe the data as the loader hands it to models (after MMRec's drops), plus
what the loader drops and what models cannot learn: users with held-out rows but no
training rows (counted in the raw file), items with training rows (warm) and items seen
only in valid/test (cold items, e.g. of a ``--split cold-items`` import).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sigerec.data.atomic import (
    SPLIT_LABELS,
    dataset_name,
    drop_like_mmrec,
    find_interaction_file,
    read_interactions,
)
from sigerec.data.builtin import resolve_data_path
from sigerec.data.feature_files import read_features, read_provenance, source_files
from sigerec.data.splitting import TRAIN
from sigerec.data.synthetic_folder import read_marker
from sigerec.errors import SigerecError


def dataset_stats(data: str | Path) -> dict:
    """Statistics of a dataset folder or built-in dataset name (e.g. ``baby``)."""
    folder = resolve_data_path(data)
    path = find_interaction_file(folder)
    raw_users, raw_items, raw_labels = read_interactions(path)
    # Sizes as the loader sets them: the largest id + 1 over the whole file, before drops.
    n_users, n_items = int(raw_users.max()) + 1, int(raw_items.max()) + 1
    users, items, labels, report = drop_like_mmrec(raw_users, raw_items, raw_labels)
    if len(users) == 0:
        raise SigerecError(f"{path}: no user has a training row (x_label 0), so nothing is left to describe.")
    rows_per_user = np.bincount(users)
    rows_per_user = rows_per_user[rows_per_user > 0]
    return {
        "name": dataset_name(path),
        "path": str(path),
        "users": n_users,
        "items": n_items,
        "interactions": len(users),
        "density": len(users) / (n_users * n_items),
        **{split: int((labels == label).sum()) for label, split in SPLIT_LABELS.items()},
        "duplicate_rows_dropped": report.duplicate_pairs,
        "users_without_train": _users_without_train(raw_users, raw_labels),
        "warm_items": _warm_items(items, labels),
        "cold_items": _cold_items(items, labels),
        "interactions_per_user_mean": float(rows_per_user.mean()),
        "interactions_per_user_median": float(np.median(rows_per_user)),
        "features": _feature_stats(folder, n_items),
        "synthetic": read_marker(folder),  # synthetic.json of `sigerec data synth`; None for real data
    }


def _users_without_train(users: np.ndarray, labels: np.ndarray) -> int:
    """Users with valid/test rows but no train row; the loader drops their rows."""
    with_train = np.unique(users[labels == TRAIN])
    return int(np.setdiff1d(np.unique(users), with_train).size)


def _warm_items(items: np.ndarray, labels: np.ndarray) -> int:
    """Items with at least one training row (after the loader's drops)."""
    return int(np.unique(items[labels == TRAIN]).size)


def _cold_items(items: np.ndarray, labels: np.ndarray) -> int:
    """Items that appear in valid/test but never in train: no model sees them interacted with."""
    return int(np.setdiff1d(np.unique(items[labels != TRAIN]), np.unique(items[labels == TRAIN])).size)


def _feature_stats(folder: Path, n_items: int) -> dict[str, dict]:
    """Per modality: dimension and coverage, the share of items with real content.

    Features written by ``sigerec encode`` record which items were mean-filled, so their
    coverage is exact; for other files it is the share of rows that are not all zeros.
    """
    stats = {}
    for modality, features in read_features(folder, n_items).items():
        provenance = read_provenance(folder, modality) or {}
        recorded = provenance.get("coverage")
        if provenance.get("n_items") == n_items and _is_share(recorded):
            coverage, source = float(recorded), " + ".join(source_files(provenance))
        else:
            coverage, source = float(np.any(features != 0, axis=1).mean()), ""
        stats[modality] = {"dim": int(features.shape[1]), "coverage": coverage, "source": source}
    return stats


def _is_share(value) -> bool:
    """A number in [0, 1]: a provenance file edited by hand may hold anything."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
