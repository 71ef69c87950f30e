"""Batched, resumable encoding: each finished batch is cached on disk, so an interrupted
``sigerec encode`` continues where it stopped and produces the same output."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sigerec.safe_write import atomic_write

# encode_batch(payloads) -> (vectors [n, dim] float32, ok [n] bool); rows with ok False
# (empty text, unreadable image) are mean-filled later.
BatchEncoder = Callable[[Sequence], tuple[np.ndarray, np.ndarray]]
CACHE_FOLDER = ".sigerec-cache"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BatchCache:
    """One ``.npz`` per finished batch under ``<dataset>/.sigerec-cache/<modality>-<key hash>/``.

    The key holds everything that determines the output (model, source file digest, columns,
    batch size, item order), so a changed input never reuses stale batches.
    """

    def __init__(self, dataset_dir: Path, modality: str, key: dict):
        text = json.dumps(key, sort_keys=True, default=str)
        self.folder = Path(dataset_dir) / CACHE_FOLDER / f"{modality}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / "key.json", lambda path: path.write_text(text))

    def _path(self, index: int) -> Path:
        return self.folder / f"batch-{index:06d}.npz"

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        path = self._path(index)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return stored["vectors"], stored["ok"]
        except (OSError, ValueError, KeyError):
            return None  # a batch cut off mid-write is simply encoded again

    def save(self, index: int, vectors: np.ndarray, ok: np.ndarray) -> None:
        atomic_write(self._path(index), lambda path: np.savez(path, vectors=vectors, ok=ok))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def encode_in_batches(
    payloads: Sequence, encode_batch: BatchEncoder, batch_size: int, cache: BatchCache, label: str, quiet: bool = False
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Encode ``payloads`` batch by batch (cached ones are reused); returns vectors, ok and timing."""
    n_batches = -(-len(payloads) // batch_size)
    vector_parts, ok_parts = [], []
    reused, encoded_items, seconds = 0, 0, 0.0
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=quiet,
    )
    with progress:
        task = progress.add_task(label, total=len(payloads), rate="")
        for index in range(n_batches):
            batch = payloads[index * batch_size : (index + 1) * batch_size]
            cached = cache.load(index)
            if cached is not None and len(cached[1]) == len(batch):
                vectors, ok = cached
                reused += 1
            else:
                started = time.perf_counter()
                vectors, ok = encode_batch(batch)
                seconds += time.perf_counter() - started
                encoded_items += len(batch)
                vectors = np.asarray(vectors, dtype=np.float32)
                ok = np.asarray(ok, dtype=bool)
                cache.save(index, vectors, ok)
            vector_parts.append(vectors)
            ok_parts.append(ok)
            rate = f"{encoded_items / seconds:.0f} items/s" if seconds > 0 else ""
            progress.update(task, advance=len(batch), rate=rate)
    timing = {
        "batches": n_batches,
        "batches_reused": reused,
        "items_encoded_now": encoded_items,
        "encode_seconds": seconds,
        "items_per_second": encoded_items / seconds if seconds > 0 else None,
    }
    return np.concatenate(vector_parts), np.concatenate(ok_parts), timing
