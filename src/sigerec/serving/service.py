"""Recommendations from an exported model, by raw ids: what the CLI and the HTTP API call.

- ``for_user``: a known user's vector against all items, the user's training items excluded.
- ``for_items``: a new user known only by liked items is folded in as the mean of those items'
  vectors (the user side of one propagation step, up to normalisation); the liked items are
  excluded. Exact for no model, but needs no retraining and works for every model.
- ``similar_items``: cosine similarity between item vectors (so popular items with long vectors
  do not top every list), the item itself excluded.

The service is read-only after construction, so concurrent requests need no locks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sigerec.errors import SigerecError
from sigerec.serving.model_folder import ModelFolder
from sigerec.serving.retrieval import build_index

MAX_K = 1000


class UnknownIdError(SigerecError):
    """A raw user or item id the model does not know (HTTP 404)."""


@dataclass
class Recommendation:
    item_id: str
    score: float
    title: str | None


class RecommendationService:
    """Top-k recommendations and similar items of one exported model."""

    def __init__(self, folder: ModelFolder, index: str = "auto"):
        self.folder = folder
        self.max_k = MAX_K
        self.user_rows = {str(raw): row for row, raw in enumerate(folder.user_ids)}
        self.item_rows = {str(raw): row for row, raw in enumerate(folder.item_ids)}
        self.index = build_index(folder.item_vectors, index)
        norms = np.linalg.norm(folder.item_vectors, axis=1, keepdims=True)
        self.unit_item_vectors = (folder.item_vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        self.similarity_index = build_index(self.unit_item_vectors, self.index.kind)

    def for_user(self, user_id: str, k: int = 10) -> list[Recommendation]:
        row = self._row(self.user_rows, user_id, "user")
        self._check_k(k)
        seen = self.folder.seen.indices[self.folder.seen.indptr[row] : self.folder.seen.indptr[row + 1]]
        return self._results(*self.index.search(self.folder.user_vectors[row], k, seen))

    def for_items(self, item_ids: list[str], k: int = 10) -> list[Recommendation]:
        if not item_ids:
            raise ValueError("give at least one liked item id.")
        self._check_k(k)
        rows = np.unique([self._row(self.item_rows, item, "item") for item in item_ids])
        query = self.folder.item_vectors[rows].mean(axis=0)
        return self._results(*self.index.search(query, k, rows))

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        row = self._row(self.item_rows, item_id, "item")
        self._check_k(k)
        return self._results(*self.similarity_index.search(self.unit_item_vectors[row], k, np.array([row])))

    def metadata(self) -> dict:
        manifest = self.folder.manifest
        return {
            "model": manifest.get("model"),
            "dataset": manifest.get("dataset"),
            "format_version": manifest.get("format_version"),
            "created": manifest.get("created"),
            "n_users": len(self.folder.user_ids),
            "n_items": len(self.folder.item_ids),
            "dim": int(self.folder.item_vectors.shape[1]),
            "index": self.index.kind,
            "has_titles": self.folder.titles is not None,
            "max_k": self.max_k,
            "metrics": manifest.get("metrics", {}),
            "new_item_fields": self._new_item_fields(),
        }

    def _new_item_fields(self) -> list[str] | None:
        """The fields ``POST /items`` needs per item; None when the model cannot take new items."""
        from sigerec.serving.cold_items import new_item_spec

        try:
            return list(new_item_spec(self.folder)["fields"])
        except SigerecError:
            return None

    def _row(self, rows: dict[str, int], raw_id: str, kind: str) -> int:
        row = rows.get(str(raw_id))
        if row is None:
            raise UnknownIdError(f"unknown {kind} id {raw_id!r}: the model has no {kind} with this raw id.")
        return row

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.max_k:
            raise ValueError(f"k must be between 1 and {self.max_k}, got {k}.")

    def _results(self, items: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
        titles = self.folder.titles
        return [
            Recommendation(
                item_id=str(self.folder.item_ids[item]),
                score=float(score),
                title=(titles[item] or None) if titles is not None else None,
            )
            for item, score in zip(items.tolist(), scores.tolist())
        ]
