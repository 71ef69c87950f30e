"""The model being served, and switching to a new one without a failed request.

A reload loads and checks the new model folder beside the old one (in a worker thread, so the
old model keeps answering), then replaces one reference. Each request reads that reference
once when it starts (``holder.current``), so requests already in flight finish on the model
they started with; the old model is freed when the last of them ends. A folder that fails its
checks is refused and the old model keeps serving. Adding items (``POST /items``) swaps in the
served model with the items appended the same way, one writer at a time.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime
import gc
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigerec.errors import SigerecError
from sigerec.serving.cold_items import new_item_spec
from sigerec.serving.model_folder import ModelFolder
from sigerec.serving.new_items import EncoderPaths, add_items, add_items_to_folder, items_table
from sigerec.serving.service import RecommendationService


@dataclass(frozen=True)
class LoadedModel:
    """One loaded model folder: the service answering from it and what ``GET /model`` says."""

    service: RecommendationService
    model_dir: Path | None
    version: str  # 16 hex digits of the manifest's sha256: changes with every export
    loaded_at: str

    @classmethod
    def of_service(cls, service: RecommendationService) -> LoadedModel:
        """A service built in memory (tests, benchmarks): its folder path, if any, is reloadable."""
        return cls(service, service.folder.path, manifest_version(service.folder.manifest), _now())

    def metadata(self) -> dict:
        return {**self.service.metadata(), "version": self.version, "loaded_at": self.loaded_at}

    def example_ids(self) -> tuple[str, str]:
        """A real user id and item id, for the examples in the OpenAPI schema."""
        folder = self.service.folder
        return str(folder.user_ids[0]), str(folder.item_ids[0])

    def example_new_item(self) -> dict:
        """A new item for ``POST /items``' example: the fields the model's export records."""
        record = self.service.folder.manifest.get("cold_items") or {}
        fields = record.get("fields") or ["item_id"]
        return {name: "new-item-1" if i == 0 else f"{name} of the new item" for i, name in enumerate(fields)}


def load_model(model_dir: str | Path, index: str = "auto", max_k: int | None = None) -> LoadedModel:
    """Load ``model_dir`` and check that it answers; raises SigerecError naming what is wrong."""
    model_dir = Path(model_dir).resolve()
    folder = ModelFolder.load(model_dir)
    if len(folder.user_ids) == 0 or len(folder.item_ids) == 0:
        raise SigerecError(f"{model_dir}: the model has no users or no items; export a trained run.")
    for name, vectors in (("user", folder.user_vectors), ("item", folder.item_vectors)):
        if not np.isfinite(vectors).all():
            raise SigerecError(f"{model_dir}: the {name} vectors hold NaN or inf; the run diverged, train it again.")
    service = RecommendationService(folder, index=index)
    if max_k is not None:
        service.max_k = max_k
    # A trial request of each kind, so that a folder which loads but cannot answer is refused here.
    service.for_user(str(folder.user_ids[0]), 1)
    service.similar_items(str(folder.item_ids[0]), 1)
    return LoadedModel(service, model_dir, manifest_version(folder.manifest), _now())


def manifest_version(manifest: dict) -> str:
    """The manifest's digest: it lists every file's sha256 and the export time, so any new
    export, even of the same run, gets a new version."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class ModelHolder:
    """The current model and its atomic replacement; reloads run one at a time."""

    def __init__(self, model: LoadedModel, index: str = "auto", max_k: int | None = None):
        self.current = model
        self.index = index
        self.max_k = max_k
        self._reloading = asyncio.Lock()

    async def reload(self, model_dir: str | Path | None = None) -> LoadedModel:
        """Load ``model_dir`` (default: the folder being served, read again) and swap it in."""
        async with self._reloading:
            target = Path(model_dir) if model_dir is not None else self.current.model_dir
            if target is None:
                raise SigerecError("this model was not loaded from a folder, so there is nothing to read again.")
            new = await asyncio.to_thread(load_model, target, self.index, self.max_k)
            self.current = new  # one reference assignment: each request sees old or new, whole
            gc.collect()  # the old model's arrays go as soon as no request holds them
            return_freed_memory()
            return new

    async def add_items(self, records: list[dict], encoder_paths: EncoderPaths | None = None) -> LoadedModel:
        """Append new items (``serving/new_items.py``) to the served model, save the folder's new
        version (when served from a folder) and swap it in; requests in flight finish on the old."""
        async with self._reloading:
            new = await asyncio.to_thread(self._with_items, self.current, records, encoder_paths)
            self.current = new  # the old model's arrays go when its last request ends
            return new

    def _with_items(self, current: LoadedModel, records: list[dict], encoder_paths: EncoderPaths | None) -> LoadedModel:
        folder = current.service.folder
        spec = new_item_spec(folder)
        title_col = spec.get("title_col")
        table = items_table(records, spec["fields"], [title_col] if title_col else [])
        if current.model_dir is None:  # built in memory (tests, benchmarks): nothing to save
            new_folder = add_items(folder, table, encoder_paths)
        else:
            new_folder = add_items_to_folder(current.model_dir, table, encoder_paths, current=folder)
        service = RecommendationService(new_folder, index=self.index)
        service.max_k = current.service.max_k
        return LoadedModel(service, current.model_dir, manifest_version(new_folder.manifest), _now())


def return_freed_memory() -> None:
    """Give memory freed by the old model back to the system (glibc's ``malloc_trim``).

    Without it glibc keeps the freed heap for reuse: resident memory rose by about 20 MB over
    the first reloads of a Baby-sized model, then stayed there; with it, by 1 MB. Nothing on
    other C libraries, where the function does not exist.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
