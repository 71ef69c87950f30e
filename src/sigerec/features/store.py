"""Write a modality's feature matrix, mean-filling items that could not be encoded.

Beside ``<modality>_feat.npy`` go ``<modality>_feat.json`` (encoder, source, dimension,
coverage) and ``<modality>_feat.missing.tsv`` (the items that got the mean vector), so that
every number trained on these features can say where they came from and how complete they are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sigerec.atomic_io import atomic_write
from sigerec.errors import SigerecError

FEATURE_SUFFIX = "_feat.npy"
METADATA_SUFFIX = "_feat.json"
MISSING_SUFFIX = "_feat.missing.tsv"


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
    if not modality.replace("_", "").replace("-", "").isalnum():
        raise SigerecError(f"modality name {modality!r} must be letters, digits, '-' or '_' (it names the file).")
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
    base = Path(dataset_dir) / modality
    atomic_write(Path(f"{base}{FEATURE_SUFFIX}"), lambda p: np.save(p, matrix))
    lines = ["itemID\traw_id"] + [f"{item}\t{raw_id(item)}" for item in missing]
    atomic_write(Path(f"{base}{MISSING_SUFFIX}"), lambda p: p.write_text("\n".join(lines) + "\n"))
    atomic_write(Path(f"{base}{METADATA_SUFFIX}"), lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    return report


def read_feature_metadata(dataset_dir: Path, modality: str) -> dict | None:
    """The ``<modality>_feat.json`` written with the features, if any."""
    path = Path(dataset_dir) / f"{modality}{METADATA_SUFFIX}"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def source_files(metadata: dict) -> list[str]:
    """The input files a feature file was made from, as recorded in its metadata.

    Encoders of one item file record ``source`` as a path; the knowledge-graph encoder reads
    two files and records ``{"kg_file": ..., "link_file": ..., <checksums>}``.
    """
    source = metadata.get("source")
    if isinstance(source, dict):
        return [str(value) for key, value in source.items() if key.endswith("_file")]
    return [str(source)] if source else []
