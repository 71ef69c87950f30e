"""Where an item without interactions borrows its vector: its nearest warm items by content.

One rule, written once, for every model that scores cold items by neighbours and for serving
(``sigerec add-items``, ``POST /items``), so that an item added to a running server gets the
very vector the model would have scored it with in evaluation:

    v_i = mean over modalities m of ( mean of v_j over the k warm items j whose raw features
          x^m_j are most cosine-similar to x^m_i )

Averaging shortens vectors that point different ways, and a dot-product score favours long
vectors, so a plain mean ranks a new item below its own neighbours. ``norm="neighbours"``
keeps the mean's direction but gives it the mean length of the neighbours' vectors;
``norm="mean"`` keeps the plain mean.

Only warm items (with training interactions) are neighbours: cold ones have no trained vector
to lend. A modality where the item's features are all zero gives no neighbours; an item with
none in any modality gets an empty row (callers keep or refuse it). Ties between equally
similar warm items go to the lower item index, so the rule is deterministic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

NORMS = ("mean", "neighbours")
QUERY_CHUNK = 1024  # query rows per similarity block: bounds memory at 1024 x n_warm floats


def warm_neighbour_weights(
    query_features: list[np.ndarray],
    item_features: list[np.ndarray],
    warm_items: np.ndarray,
    n_items: int,
    k: int,
) -> sp.csr_matrix:
    """Rows [n_queries, n_items] that average, as above, the warm neighbours of each query.

    ``query_features[m]`` [n_queries, F_m] and ``item_features[m]`` [n_items, F_m] are the same
    modalities in the same order; ``warm_items`` are the indices of the warm items (the only
    nonzero columns). ``weights @ item_vectors`` gives the queries' vectors.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    n_queries = len(query_features[0]) if query_features else 0
    warm_items = np.asarray(warm_items, dtype=np.int64)
    total = sp.csr_matrix((n_queries, n_items), dtype=np.float64)
    modalities_with_neighbours = np.zeros(n_queries)
    for queries, items in zip(query_features, item_features):
        per_modality = _top_k_rows(_unit_rows(queries), _unit_rows(items[warm_items]), warm_items, n_items, k)
        total = total + per_modality
        modalities_with_neighbours += np.diff(per_modality.indptr) > 0
    scale = np.divide(1.0, modalities_with_neighbours, out=np.zeros(n_queries), where=modalities_with_neighbours > 0)
    return sp.csr_matrix(sp.diags(scale) @ total, dtype=np.float32)


def _top_k_rows(queries: np.ndarray, warm: np.ndarray, warm_items: np.ndarray, n_items: int, k: int) -> sp.csr_matrix:
    """Uniform weights 1/k over each query's k most similar warm rows (none for a zero query)."""
    k = min(k, len(warm_items))
    rows, columns = [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        block = queries[start : start + QUERY_CHUNK]
        similarity = block @ warm.T  # [chunk, n_warm]
        # Stable order on -similarity: the lower item index wins ties (warm_items is sorted).
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        has_content = np.abs(block).sum(axis=1) > 0
        for offset in np.flatnonzero(has_content):
            rows.append(np.full(k, start + offset))
            columns.append(warm_items[nearest[offset]])
    if not rows:
        return sp.csr_matrix((len(queries), n_items), dtype=np.float64)
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    return sp.csr_matrix((np.full(len(rows), 1.0 / k), (rows, columns)), shape=(len(queries), n_items))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def cold_item_weights(item_features: list[np.ndarray], warm: np.ndarray, k: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """The cold items (not ``warm``) that have content, and their neighbour weights (see above)."""
    cold = np.flatnonzero(~warm)
    weights = warm_neighbour_weights(
        [f[cold] for f in item_features], item_features, np.flatnonzero(warm), len(warm), k
    )
    keep = np.diff(weights.indptr) > 0
    return cold[keep], weights[keep]


def neighbour_vectors(weights, item_vectors, norm: str = "mean"):
    """The queries' vectors: ``weights @ item_vectors``, rescaled per ``norm`` (see above).

    Works alike on NumPy arrays with SciPy weights and on torch tensors with a
    ``SparseOperator``, so models and serving share it.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}.")
    means = weights @ item_vectors
    if norm == "mean":
        return means
    neighbour_lengths = weights @ _row_lengths(item_vectors)
    return means * (neighbour_lengths / (_row_lengths(means) + 1e-12))


def _row_lengths(vectors):
    return (vectors * vectors).sum(1, keepdims=True) ** 0.5
