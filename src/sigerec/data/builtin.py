"""Datasets shipped inside the package, addressable by name (``--data baby``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUILTIN_DATASETS = ("baby",)


def builtin_dataset_path(name: str) -> Path | None:
    """The folder of a built-in dataset, or None when ``name`` is not one."""
    if name not in BUILTIN_DATASETS:
        return None
    return Path(str(resources.files("sigerec") / "datasets" / name))


def resolve_data_path(data: str | Path) -> Path:
    """An existing folder wins; otherwise a built-in dataset name; otherwise the path as given
    (the loader then reports it as missing)."""
    path = Path(data)
    if path.exists():
        return path
    builtin = builtin_dataset_path(str(data))
    return builtin if builtin is not None else path
