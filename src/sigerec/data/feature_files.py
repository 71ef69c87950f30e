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

from sigerec.data.tabular import one_line
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
    for path in paths:
        if path.name == FEATURE_SUFFIX:
            raise SigerecError(f"{path}: a feature file needs a modality name, <modality>{FEATURE_SUFFIX}; rename it.")
    return {path.name.removesuffix(FEATURE_SUFFIX): path for path in paths}


# dtype kinds read as features: float, signed and unsigned integers (bool, complex, text, dates are not numbers here).
FEATURE_DTYPE_KINDS = "fiu"


def read_feature_file(path: Path, n_items: int) -> np.ndarray:
    """The float32 ``[n_items, dim]`` features of one file, or an error that names the file and the fix.

    The header is checked before any data is read, so a damaged or foreign file costs no memory
    (a header may declare any shape) and object arrays are refused without unpickling.
    """
    shape, dtype, data_offset = _npy_header(path)
    if dtype.hasobject:
        raise SigerecError(
            f"{path}: cannot be read as a NumPy .npy array of numbers (it holds Python objects, which would "
            f"need unpickling). {SAVE_FEATURES_HINT}"
        )
    if len(shape) != 2:
        raise SigerecError(f"{path}: expected a 2-d array [items, dim], found shape {shape}. {SAVE_FEATURES_HINT}")
    if shape[0] != n_items:
        raise SigerecError(
            f"{path}: {shape[0]} rows but the dataset has {n_items} items; row i must be "
            "item i. Re-encode the features for this dataset (`sigerec encode`)."
        )
    if shape[1] == 0:
        raise SigerecError(
            f"{path}: the array has 0 columns (shape {shape}); features need dim >= 1. {SAVE_FEATURES_HINT}"
        )
    if dtype.kind not in FEATURE_DTYPE_KINDS:
        raise SigerecError(f"{path}: dtype {dtype} is not numeric. {SAVE_FEATURES_HINT}")
    size, expected = path.stat().st_size, data_offset + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        state = "cut short" if size < expected else "followed by other data"
        raise SigerecError(
            f"{path}: {size} bytes, but its header describes {expected}; the file is {state}. {SAVE_FEATURES_HINT}"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise SigerecError(
            f"{path}: cannot be read as a NumPy .npy array ({one_line(error)}). {SAVE_FEATURES_HINT}"
        ) from None
    _check_finite(path, array)
    return array.astype(np.float32, copy=False)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, where the data starts) from a ``.npy`` file's header, without reading the data."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in {(1, 0), (2, 0)}:  # 3.0 is only written for structured dtypes, never numbers
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _fortran_order, dtype = read_header(handle)
            return tuple(shape), dtype, handle.tell()
    except (OSError, ValueError, EOFError, SyntaxError) as error:
        raise SigerecError(
            f"{path}: cannot be read as a NumPy .npy array ({one_line(error)}). {SAVE_FEATURES_HINT}"
        ) from None


def _check_finite(path: Path, array: np.ndarray) -> None:
    """Every value finite, also once stored as float32 (float64 values beyond ~3.4e38 become inf)."""
    finite = np.isfinite(array) if array.dtype.kind == "f" else np.ones(array.shape, dtype=bool)
    problem = "contains NaN or inf"
    if finite.all():
        with np.errstate(over="ignore"):
            finite = np.isfinite(array.astype(np.float32))
        problem = f"holds values too large for float32 (beyond {np.finfo(np.float32).max:.3g})"
    if not finite.all():
        bad_rows = ~finite.all(axis=1)
        bad_row = int(np.flatnonzero(bad_rows)[0])
        raise SigerecError(
            f"{path}, row {bad_row} (item {bad_row}): {problem} ({int(bad_rows.sum())} rows affected). "
            "Replace them, e.g. with the mean vector."
        )


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
    """The modality's ``<modality>_feat.json``, or None when there is none or it is not a readable JSON object."""
    path = provenance_file(folder, modality)
    if not path.exists():
        return None
    try:
        provenance = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # ValueError: not JSON, or not UTF-8 text
        return None
    return provenance if isinstance(provenance, dict) else None


def source_files(provenance: dict) -> list[str]:
    """The input files a feature file was made from, as its provenance records them.

    Encoders of one item file record ``source`` as a path; the knowledge-graph encoder reads
    two files and records ``{"kg_file": ..., "link_file": ..., <checksums>}``.
    """
    source = provenance.get("source")
    if isinstance(source, dict):
        return [str(value) for key, value in source.items() if key.endswith("_file")]
    return [str(source)] if source else []
