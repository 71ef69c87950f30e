"""Write a synthetic dataset (``sigerec.data.synthetic``) as an ordinary dataset folder, labelled synthetic.

The folder is what ``sigerec data import`` and ``sigerec encode`` make: ``<name>.inter``
(``userID itemID x_label``, split per user by MMRec's rule) and ``<modality>_feat.npy`` with
its ``<modality>_feat.json`` provenance, plus ``synthetic.json``, the marker that says the data
is synthetic and records every parameter and the seed (``sigerec data stats`` shows it), and
optionally ``interactions.parquet``, the unsplit pairs for timing ``sigerec data import``.
Large outputs are streamed in chunks, so memory stays bounded at any size.
"""

from __future__ import annotations

import fnmatch
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import sigerec
from sigerec.data.atomic import ITEM_COLUMN, LABEL_COLUMN, SPLIT_LABELS, USER_COLUMN
from sigerec.data.feature_files import (
    FEATURE_SUFFIX,
    MISSING_ITEMS_SUFFIX,
    PROVENANCE_SUFFIX,
    feature_file,
    missing_items_file,
    provenance_file,
)
from sigerec.data.id_maps import ITEM_MAP_FILE, USER_MAP_FILE
from sigerec.data.synthetic import (
    ItemModel,
    SynthConfig,
    feature_chunks,
    interactions,
    item_model,
    user_model,
    validate,
)
from sigerec.errors import SigerecError
from sigerec.safe_write import write_folder

MARKER_FILE = "synthetic.json"
PARQUET_FILE = "interactions.parquet"
PARQUET_COLUMNS = ("user_id", "item_id")
ROWS_PER_WRITE = 1 << 20
NOTICE = (
    "SYNTHETIC DATA made by `sigerec data synth`: no real users, items or content. Interactions and "
    "features come from a cluster model with power-law popularity and activity; see 'parameters'."
)


@dataclass
class SynthSummary:
    """What was generated and written; the CLI prints it and ``synthetic.json`` keeps it."""

    folder: Path
    name: str
    config: SynthConfig
    users: int = 0
    items: int = 0
    interactions: int = 0
    users_short: int = 0  # users left with fewer interactions than their drawn activity
    split_sizes: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def interaction_file(self) -> Path:
        return self.folder / f"{self.name}.inter"


def default_name(folder: Path) -> str:
    """The folder's name, prefixed ``synthetic-`` unless it already says so: run folders show it."""
    base = folder.resolve().name
    return base if base.lower().startswith("synth") else f"synthetic-{base}"


def write_synthetic_dataset(
    config: SynthConfig, folder: str | Path, name: str | None = None, parquet: bool = False, force: bool = False
) -> SynthSummary:
    """Generate the dataset of ``config`` and write it to ``folder`` (see the module docstring).

    The files are written into a staging folder and swapped in with the folder in one step
    (``write_folder``): a kill leaves the folder as it was or the whole new dataset.
    """
    started = time.perf_counter()
    validate(config)
    folder = Path(folder)
    _check_folder(folder, force)
    summary = SynthSummary(folder, name or default_name(folder), config)
    items = item_model(config)

    def build(staging: Path) -> None:
        _write_interactions(summary, items, parquet, staging)
        for modality, dim in config.modalities:
            _write_features(feature_file(staging, modality), config, items, modality, dim)
            missing_items_file(staging, modality).write_text("itemID\traw_id\n")
            provenance = json.dumps(feature_provenance(config, dim), indent=2) + "\n"
            provenance_file(staging, modality).write_text(provenance)

    write_folder(folder, build, keep=lambda entry: not _is_dataset_file(entry))
    summary.seconds = time.perf_counter() - started
    return summary


def _write_interactions(summary: SynthSummary, items: ItemModel, parquet: bool, staging: Path) -> None:
    """Draw and split the interactions; write the marker, ``<name>.inter`` and the Parquet file."""
    config, folder = summary.config, summary.folder
    activity = user_model(config, items)
    users, item_ids, labels = interactions(config, items, activity)
    summary.users, summary.items, summary.interactions = config.users, config.items, len(users)
    summary.users_short = int((np.bincount(users, minlength=config.users) < activity.targets).sum())
    summary.split_sizes = {split: int((labels == label).sum()) for label, split in SPLIT_LABELS.items()}
    summary.files = [
        MARKER_FILE,
        summary.interaction_file.name,
        *([PARQUET_FILE] if parquet else []),
        *(feature_file(folder, modality).name for modality, _ in config.modalities),
    ]
    (staging / MARKER_FILE).write_text(json.dumps(marker(summary), indent=2) + "\n")
    _write_inter(staging / summary.interaction_file.name, users, item_ids, labels)
    if parquet:
        _write_parquet(staging / PARQUET_FILE, users, item_ids)


def marker(summary: SynthSummary) -> dict:
    """``synthetic.json``: the notice, every generation parameter and what was written."""
    parameters = asdict(summary.config)
    parameters["modalities"] = {name: dim for name, dim in summary.config.modalities}
    parameters["clusters"] = summary.config.n_clusters
    return {
        "synthetic": True,
        "notice": NOTICE,
        "generator": f"sigerec {sigerec.__version__} (sigerec data synth)",
        "parameters": parameters,
        "written": {
            "users": summary.users,
            "items": summary.items,
            "interactions": summary.interactions,
            "interactions_asked": summary.config.interactions,
            "users_short": summary.users_short,
            **summary.split_sizes,
            "split": "per user at random by MMRec's rule (8:1:1; 1 valid and 1 test below 10 rows)",
            "files": summary.files,
        },
    }


def feature_provenance(config: SynthConfig, dim: int) -> dict:
    """The ``<modality>_feat.json`` of a synthetic modality: every item covered, source synthetic."""
    return {
        "encoder": "synthetic",
        "source": f"synthetic (seed {config.seed})",
        "dim": dim,
        "n_items": config.items,
        "encoded": config.items,
        "mean_filled": 0,
        "coverage": 1.0,
    }


def read_marker(folder: str | Path) -> dict | None:
    """The folder's ``synthetic.json``, or None when it has none (real data) or it cannot be read."""
    path = Path(folder) / MARKER_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # ValueError covers bad JSON and bad UTF-8
        return None
    return content if isinstance(content, dict) and content.get("synthetic") else None


# --- writing ----------------------------------------------------------------------------------


DATASET_FILE_PATTERNS = (
    "*.inter",
    "*.inter.gz",
    f"*{FEATURE_SUFFIX}",
    f"*{PROVENANCE_SUFFIX}",
    f"*{MISSING_ITEMS_SUFFIX}",
    MARKER_FILE,
    PARQUET_FILE,
    USER_MAP_FILE,
    ITEM_MAP_FILE,
)


def _check_folder(folder: Path, force: bool) -> None:
    """Refuse a folder holding anything unless ``force`` (then its dataset files are replaced, the rest kept)."""
    if folder.exists() and not folder.is_dir():
        raise SigerecError(f"{folder}: exists and is not a folder; choose another --out.")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise SigerecError(
            f"{folder}: is not empty. Choose another --out folder, or pass --force to replace the "
            "dataset files there (interactions, features, id maps)."
        )


def _is_dataset_file(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in DATASET_FILE_PATTERNS)


def _write_inter(path: Path, users: np.ndarray, items: np.ndarray, labels: np.ndarray) -> None:
    """Tab-separated ``userID itemID x_label`` rows, written by Arrow's CSV writer in blocks."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with open(path, "wb") as handle:
        handle.write(f"{USER_COLUMN}\t{ITEM_COLUMN}\t{LABEL_COLUMN}\n".encode())
        for start in range(0, len(users), ROWS_PER_WRITE):
            rows = slice(start, start + ROWS_PER_WRITE)
            block = pa.table({USER_COLUMN: users[rows], ITEM_COLUMN: items[rows], LABEL_COLUMN: labels[rows]})
            pa_csv.write_csv(block, handle, options)


def _write_parquet(path: Path, users: np.ndarray, items: np.ndarray) -> None:
    """The unsplit pairs as ``user_id, item_id`` (int32), for ``sigerec data import``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(PARQUET_COLUMNS[0], pa.int32()), (PARQUET_COLUMNS[1], pa.int32())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(users), ROWS_PER_WRITE):
            rows = slice(start, start + ROWS_PER_WRITE)
            writer.write_table(pa.table([users[rows], items[rows]], schema=schema))


def _write_features(path: Path, config: SynthConfig, items: ItemModel, modality: str, dim: int) -> None:
    """A ``.npy`` file as ``numpy.save`` writes it, filled chunk by chunk (never whole in memory)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {**header, "shape": (config.items, dim)})
        handle.writelines(chunk.tobytes() for chunk in feature_chunks(config, items, modality, dim))
