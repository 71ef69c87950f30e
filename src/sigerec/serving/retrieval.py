"""Top-K retrieval by inner product, excluding given items, never sorting the whole catalogue.

- ``ExactIndex``: one matrix-vector product per query, then ``sigerec.ranking.top_k``, which
  narrows the scores to a few candidates and sorts those only. Right for catalogues that fit
  in memory (the usual case: 1M items x 64 floats is 256 MB).
- ``FaissIndex``: faiss-cpu inner-product indexes, ``"flat"`` (exact, BLAS plus a heap) or
  ``"ivf"`` (IndexIVFFlat: approximate, for very large catalogues; ``nprobe`` trades recall
  for speed). Excluded items are removed by over-fetching k + |excluded| and filtering.

Both return items ordered by score, equal scores by the lower item id (``sigerec.ranking``), so
exact FAISS and the matrix product give the same lists (tested); only items tied exactly at the
k-th score may be chosen differently, as FAISS picks which of them it returns.
"""

from __future__ import annotations

import numpy as np

from sigerec.errors import SigerecError
from sigerec.ranking import top_k

INDEX_KINDS = ("auto", "exact", "faiss", "faiss-ivf")
# "auto" keeps the exact product up to this many item-vector floats (about 1 GB), then IVF.
AUTO_EXACT_LIMIT = 256_000_000


class ExactIndex:
    """Top-k by a full matrix product over the (small enough) catalogue."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for one query vector: ``(items, scores)``, best first."""
        scores = self.vectors @ np.asarray(query, dtype=np.float32)  # [n_items]
        if exclude is not None and len(exclude):
            scores[exclude] = -np.inf
        available = len(scores) - (0 if exclude is None else len(np.unique(exclude)))
        return top_k(scores, min(k, available))


class FaissIndex:
    """Inner-product search with faiss-cpu (``pip install 'sigerec[serve]'``)."""

    def __init__(self, vectors: np.ndarray, kind: str = "flat", nlist: int | None = None, nprobe: int = 32):
        try:
            import faiss
        except ImportError:
            raise SigerecError("FAISS retrieval needs faiss-cpu: pip install 'sigerec[serve]'.") from None
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.n_items, dim = vectors.shape
        if kind == "flat":
            self.index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            # FAISS's guidance: about 4 sqrt(n) lists, but at least 39 training points per list.
            nlist = nlist or max(1, min(int(4 * np.sqrt(self.n_items)), self.n_items // 39))
            quantizer = faiss.IndexFlatIP(dim)
            self.index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            self.index.cp.seed = 0  # deterministic k-means
            self.index.train(vectors)
            self.index.nprobe = min(nprobe, nlist)
            self._quantizer = quantizer  # keep it alive as long as the index
        else:
            raise SigerecError(f"FAISS index kind must be 'flat' or 'ivf', got {kind!r}.")
        self.index.add(vectors)
        self.kind = "faiss" if kind == "flat" else "faiss-ivf"

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        excluded = set() if exclude is None else set(np.asarray(exclude).tolist())
        k = min(k, self.n_items - len(excluded))
        fetch = min(self.n_items, k + len(excluded))
        query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        while True:
            scores, items = self.index.search(query, fetch)
            keep = np.array([i >= 0 and i not in excluded for i in items[0].tolist()], dtype=bool)
            if keep.sum() >= k or fetch >= self.n_items:
                break
            fetch = min(self.n_items, 2 * fetch)  # IVF may return fewer than asked: look wider
        return top_k(scores[0][keep], k, ids=items[0][keep])  # FAISS orders equal scores arbitrarily


def build_index(vectors: np.ndarray, kind: str = "auto"):
    """An index over ``vectors`` of the given kind (see the module docstring)."""
    if kind not in INDEX_KINDS:
        raise SigerecError(f"index must be one of {', '.join(INDEX_KINDS)}, got {kind!r}.")
    if kind == "auto":
        kind = "exact" if vectors.size <= AUTO_EXACT_LIMIT else "faiss-ivf"
    if kind == "exact":
        return ExactIndex(vectors)
    return FaissIndex(vectors, "flat" if kind == "faiss" else "ivf")
