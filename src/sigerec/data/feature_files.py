"""The item feature files of a dataset folder (MMRec's ``<modality>_feat.npy``), read and written here only.

A folder holds any number of modalities, three files each:
- ``<modality>_feat.npy``: the features, a numeric array ``[n_items, dim]`` whose row i is item i,
  every value finite; loaded as float32 (``sigerec encode`` writes float32);
- ``<modality>_feat.json``: provenance, written beside the features by ``sigerec encode``:
  a JSON object with the encoder, its ``source`` (a path, or a dict whose ``*_file`` keys are
  paths), ``dim``, ``n_items`` and coverage (``encoded``, ``mean_filled``, ``coverage``);
- ``<modality>_feat.missing.tsv``: the items that got the mean vector, ``itemID<TAB>raw_id``.
Feature files saved by hand (``numpy.save``) have no provenance; readers call it unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sigerec.errors import SigerecError
from sigerec.safe_write import write_folder

FEATURE_SUFFIX = "_feat.npy"
PROVENANCE_SUFFIX = "_feat.json"
MISSING_ITEMS_SUFFIX = "_feat.missing.tsv"
SAVE_FEATURES_HINT = "Save the features with numpy.save(path, array), a float array [n_items, dim]."


def feature_file(folder: Path, modality: str) -> Path:
    """``<folder>/<modality>_feat.npy``."""
    return Path(folder) / f"{modality}{FEATURE_SUFFIX}"


def provenance_file(folder: Path, modality: str) -> Path:
    """``<folder>/<modality>_feat.json``, the provenance written beside the features."""
    return Path(folder) / f"{modality}{PROVENANCE_SUFFIX}"


def missing_items_file(folder: Path, modality: str) -> Path:
    """``<folder>/<modality>_feat.missing.tsv``, the mean-filled items."""
    return Path(folder) / f"{modality}{MISSING_ITEMS_SUFFIX}"


def feature_files(folder: Path) -> dict[str, Path]:
    """Modality -> ``<modality>_feat.npy`` of every feature file of the folder, by file name."""
    paths = sorted(Path(folder).glob(f"*{FEATURE_SUFFIX}"))
    return {path.name.removesuffix(FEATURE_SUFFIX): path for path in paths}


def read_feature_file(path: Path, n_items: int) -> np.ndarray:
    """The float32 ``[n_items, dim]`` features of one file, or an error that names the file and the fix."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SigerecError(f"{path}: cannot be read as a NumPy .npy array ({error}). {SAVE_FEATURES_HINT}") from None
    if array.ndim != 2:
        raise SigerecError(
            f"{path}: expected a 2-d array [items, dim], found shape {array.shape}. {SAVE_FEATURES_HINT}"
        )
    if array.shape[0] != n_items:
        raise SigerecError(
            f"{path}: {array.shape[0]} rows but the dataset has {n_items} items; row i must be "
            "item i. Re-encode the features for this dataset (`sigerec encode`)."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise SigerecError(f"{path}: dtype {array.dtype} is not numeric. {SAVE_FEATURES_HINT}")
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad_row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise SigerecError(
            f"{path}, row {bad_row} (item {bad_row}): contains NaN or inf "
            f"({int((~finite).any(axis=1).sum())} rows affected). Replace them, e.g. with the mean vector."
        )
    return array


def read_features(folder: Path, n_items: int) -> dict[str, np.ndarray]:
    """Every ``<modality>_feat.npy`` of the folder by modality, checked against the item count."""
    return {modality: read_feature_file(path, n_items) for modality, path in feature_files(folder).items()}


def write_feature_file(
    folder: Path, modality: str, features: np.ndarray, provenance: dict, missing_items: dict[int, str]
) -> None:
    """Write the modality's three files: features, mean-filled items (id -> raw id), provenance.

    The three appear together: the dataset folder is rebuilt beside itself with the new files
    (its other files hard-linked, not copied) and swapped in one step (``write_folder``), so a
    kill leaves the old three or the new three, never new features beside old provenance.
    """
    if not modality.replace("_", "").replace("-", "").isalnum():
        raise SigerecError(f"modality name {modality!r} must be letters, digits, '-' or '_' (it names the file).")
    lines = ["itemID\traw_id"] + [f"{item}\t{raw_id}" for item, raw_id in missing_items.items()]
    text = json.dumps(provenance, indent=2) + "\n"

    def build(staging: Path) -> None:
        np.save(feature_file(staging, modality), features)
        missing_items_file(staging, modality).write_text("\n".join(lines) + "\n")
        provenance_file(staging, modality).write_text(text)

    write_folder(folder, build, keep=lambda name: True)


def read_provenance(folder: Path, modality: str) -> dict | None:
    """The modality's ``<modality>_feat.json``, or None when there is none or it cannot be read."""
    path = provenance_file(folder, modality)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def source_files(provenance: dict) -> list[str]:
    """The input files a feature file was made from, as its provenance records them.

    Encoders of one item file record ``source`` as a path; the knowledge-graph encoder reads
    two files and records ``{"kg_file": ..., "link_file": ..., <checksums>}``.
    """
    source = provenance.get("source")
    if isinstance(source, dict):
        return [str(value) for key, value in source.items() if key.endswith("_file")]
    return [str(source)] if source else []
