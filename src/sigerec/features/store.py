"""Write a modality's feature matrix, mean-filling items that could not be encoded.

The files and their format (``<modality>_feat.npy`` with its provenance ``<modality>_feat.json``
and the mean-filled items ``<modality>_feat.missing.tsv``) are ``sigerec.data.feature_files``';
this module decides what goes in them, so that every number trained on these features can say
where they came from and how complete they are.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sigerec.data.feature_files import write_feature_file
from sigerec.errors import SigerecError


def write_features(
    dataset_dir: Path,
    modality: str,
    n_items: int,
    items: np.ndarray,
    vectors: np.ndarray,
    metadata: dict,
    raw_id=str,
) -> dict:
    """Save ``vectors`` (rows for ``items``) as the modality's [n_items, dim] matrix.

    Items without a vector get the mean of the encoded vectors, as MMRec does for items
    without an image. Returns the metadata written (with counts and coverage).
    """
    if len(items) == 0:
        raise SigerecError(f"no item could be encoded for modality '{modality}'; nothing was written.")
    vectors = np.asarray(vectors, dtype=np.float32)
    matrix = np.empty((n_items, vectors.shape[1]), dtype=np.float32)
    encoded = np.zeros(n_items, dtype=bool)
    encoded[items] = True
    matrix[items] = vectors
    matrix[~encoded] = vectors.mean(axis=0)
    missing = np.flatnonzero(~encoded)
    report = {
        **metadata,
        "modality": modality,
        "dim": int(vectors.shape[1]),
        "n_items": int(n_items),
        "encoded": int(encoded.sum()),
        "mean_filled": len(missing),
        "coverage": float(encoded.mean()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_feature_file(dataset_dir, modality, matrix, report, {item: raw_id(item) for item in missing})
    return report
