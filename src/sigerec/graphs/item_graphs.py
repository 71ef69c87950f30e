"""Item-item graphs shared by the multimodal models: modality kNN graphs and co-occurrence.

Built once per dataset (and cached, see ``graph_cache.py``), then frozen:
- ``knn_item_graph``: top-k cosine neighbours of each item's features (FREEDOM, MGCN,
  LATTICE and SIGE's semantic graphs S^m);
- ``cooccurrence_item_graph``: top-k items co-interacted by the most users (SIGE's C);
- ``normalize_graph``: D^-1/2 A D^-1/2 or D^-1 A with degrees from the row sums;
- ``mix_graphs``: weighted sums such as FREEDOM's 0.1 * image + 0.9 * text or SIGE's
  (1 - alpha) * S_hat^m + alpha * C_hat.

Every builder works on blocks of rows, so memory stays O(n_items x block_size): no dense
n_items x n_items matrix is ever formed. Ties in a top-k always go to the lower item id (the
library's one rule, ``sigerec.ranking``), so a graph does not depend on ``block_size``, on the
BLAS build or on the order of the work.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp

from sigerec.errors import SigerecError
from sigerec.graphs.adjacency import symmetric_normalize
from sigerec.ranking import top_k_entries, top_k_items

GraphNormalization = Literal["sym", "rw"]
CooccurrenceWeighting = Literal["count", "cosine"]
NORMALIZATIONS = typing.get_args(GraphNormalization)
COOCCURRENCE_WEIGHTINGS = typing.get_args(CooccurrenceWeighting)


def knn_item_graph(
    features: np.ndarray,
    k: int = 10,
    weighted: bool = False,
    block_size: int = 512,
    include_self: bool = True,
) -> sp.csr_matrix:
    """The top-k cosine neighbours of every item, as a sparse [n_items, n_items] graph.

    Row i holds the k items j with the largest cos(x_i, x_j) (the item itself included when
    ``include_self``; its similarity 1 puts it first unless another item has the same
    direction). Edge values are 1 (``weighted=False``) or the cosine (``weighted=True``).
    The graph is not symmetric: j among i's neighbours does not make i one of j's.

    This is the modality graph of LATTICE (Zhang et al., MM 2021: cosine similarity, then
    kNN sparsification), as MMRec builds it for the models that freeze it:
    - FREEDOM (Zhou and Shen, MM 2023): ``torch.topk`` on the full cosine matrix, self
      included, binary edges, then D^-1/2 A D^-1/2 with row-sum degrees (so every edge is
      1/k), then 0.1 * image + 0.9 * text: ``weighted=False``, then ``normalize_graph``
      and ``mix_graphs``.
    - MGCN (Yu et al., MM 2023) and LATTICE: the same top-k keeping the cosine values,
      then D^-1/2 A D^-1/2 with row-sum degrees: ``weighted=True``, then ``normalize_graph``.
    SIGE's semantic graphs S^m are the weighted variant by default (sige.md section 1).

    Where this differs from MMRec, on purpose:
    - Items whose features are all zero have similarity 0 to everything (MMRec divides by
      their zero norm and gets NaN rows); they have no neighbours and are nobody's.
    - Only positive similarities are edges: a row keeps fewer than k neighbours when fewer
      than k items are similar at all. With real features the top-10 cosines are positive,
      so the graphs coincide; a zero or negative weight would make a degree zero or negative
      and D^-1/2 undefined.
    - Ties go to the lower item id (``torch.topk`` breaks them arbitrarily). This matters for
      mean-filled features: every item without an image has the same vector.
    - Dot products are accumulated in float64 and rounded to float32. BLAS float32 kernels
      give identical vectors dot products that differ in the last bit depending on the
      column's position and the block size, which would break exact ties and make the graph
      depend on ``block_size``; float64 costs about twice the time of float32.

    ``k`` larger than the catalogue keeps every item. Memory: about 13 * block_size * n_items
    bytes (buffers for a block's float64 products, their float32 copy and a mask) plus the
    features in float64; at Clothing size (23,033 items, 384-d) 2048 rows take about 0.6 GB
    and 512 rows 0.15 GB, for the same time.
    """
    features = _checked_features(features)
    _check_positive("k", k)
    _check_positive("block_size", block_size)
    n_items = features.shape[0]
    k = min(k, n_items if include_self else n_items - 1)
    rows, cols, values = [], [], []
    if k > 0:
        unit = _unit_rows(features)  # [n_items, dim] float64
        # Buffers reused by every block: fresh arrays this large page-fault on every block (a
        # sixth of the time at Clothing size).
        block_size = min(block_size, n_items)
        products = np.empty((block_size, n_items))  # [block, n_items] float64
        similarity_buffer = np.empty((block_size, n_items), dtype=np.float32)
        for start in range(0, n_items, block_size):
            stop = min(start + block_size, n_items)
            np.matmul(unit[start:stop], unit.T, out=products[: stop - start])
            similarity = similarity_buffer[: stop - start]  # [block, n_items]
            np.copyto(similarity, products[: stop - start], casting="same_kind")
            if not include_self:
                similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            block_rows, block_cols, block_values = _top_k_positive(similarity, k)
            rows.append(block_rows + start)
            cols.append(block_cols)
            values.append(block_values)
    graph = _csr(rows, cols, values, n_items)
    if not weighted:
        graph.data[:] = 1.0
    return graph


def cooccurrence_item_graph(
    train: sp.spmatrix,
    k: int = 10,
    block_size: int = 512,
    weighting: str = "count",
) -> sp.csr_matrix:
    """The top-k co-interacted items of every item, from the training interactions only.

    C = R^T R with a zero diagonal (C_ij = number of users who interacted with both i and
    j; R is binarised first, so ratings or repeated rows count once), then the k largest
    entries of each row (SIGE's collaborative signal, sige.md section 2). ``weighting``:
    - "count" (default): the raw counts C_ij;
    - "cosine": C_ij / sqrt(n_i n_j) with n_i the number of users of item i, which keeps
      popular items from being everyone's neighbour. The top-k is taken on these values.
    Ties go to the lower item id. Rows are computed in blocks of ``block_size`` items with
    sparse products, so C is never dense; an item nobody co-interacted with has an empty row.
    Like the kNN graph, the result is not symmetric (C is, its per-row top-k is not).
    """
    if not sp.issparse(train) or len(train.shape) != 2:
        raise SigerecError(f"train must be a scipy sparse [n_users, n_items] matrix, got {type(train).__name__}.")
    _check_positive("k", k)
    _check_positive("block_size", block_size)
    if weighting not in COOCCURRENCE_WEIGHTINGS:
        raise SigerecError(f"weighting must be one of {', '.join(COOCCURRENCE_WEIGHTINGS)}, got {weighting!r}.")
    interacted = sp.csr_matrix(train, dtype=np.float64, copy=True)  # [n_users, n_items]
    interacted.sum_duplicates()
    interacted.eliminate_zeros()
    interacted.data[:] = 1.0
    item_users = interacted.T.tocsr()  # [n_items, n_users]
    users_per_item = np.diff(item_users.indptr).astype(np.float64)
    n_items = interacted.shape[1]
    rows, cols, values = [], [], []
    for start in range(0, n_items, block_size):
        counts = (item_users[start : start + block_size] @ interacted).tocoo()  # [block, n_items]
        off_diagonal = counts.row + start != counts.col
        block_rows, block_cols = counts.row[off_diagonal], counts.col[off_diagonal]
        block_values = counts.data[off_diagonal]
        if weighting == "cosine":
            block_values = block_values / np.sqrt(users_per_item[block_rows + start] * users_per_item[block_cols])
        block_rows, block_cols, block_values = top_k_entries(
            block_rows.astype(np.int64), block_cols.astype(np.int64), block_values.astype(np.float32), k
        )
        rows.append(block_rows + start)
        cols.append(block_cols)
        values.append(block_values)
    return _csr(rows, cols, values, n_items)


def normalize_graph(matrix: sp.spmatrix, kind: str = "sym") -> sp.csr_matrix:
    """Normalise an item-item graph, with degrees d = the row sums of ``matrix``.

    - "sym": D^-1/2 A D^-1/2, i.e. a_ij / sqrt(d_i d_j) (FREEDOM, MGCN, LATTICE, SIGE's S_hat
      and C_hat);
    - "rw": D^-1 A, i.e. a_ij / d_i: every row sums to 1, a mean over the neighbours.

    A kNN graph is not symmetric, so its degree is ambiguous (out- or in-degree, or those of
    A + A^T). MMRec takes the row sums (out-degrees) for every item graph (FREEDOM's
    ``compute_normalized_laplacian``, MGCN's ``get_sparse_laplacian``, LATTICE's
    ``compute_normalized_laplacian``) and sige.md specifies S_hat the same way, so we do too
    and do not symmetrise A. Two consequences: a binary kNN graph with full rows becomes 1/k
    on every edge, and the normalised graph is not symmetric either, so a model must
    back-propagate through it with its transpose (``propagation.symmetric_sparse_product``
    assumes a symmetric matrix and would give wrong gradients). Degrees get MMRec's 1e-7, as
    in ``adjacency.symmetric_normalize``, which computes the "sym" case.
    """
    if kind not in NORMALIZATIONS:
        raise SigerecError(f"graph normalisation must be one of {', '.join(NORMALIZATIONS)}, got {kind!r}.")
    if kind == "sym":
        return symmetric_normalize(matrix)
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    degree = np.asarray(matrix.sum(axis=1)).ravel() + 1e-7
    return sp.csr_matrix(sp.diags((1.0 / degree).astype(np.float32)) @ matrix, dtype=np.float32)


def mix_graphs(graphs: Sequence[sp.spmatrix], weights: Sequence[float]) -> sp.csr_matrix:
    """sum_m weights[m] * graphs[m], e.g. FREEDOM's item graph 0.1 * S_image + 0.9 * S_text, or
    SIGE's infusion S_bar^m = (1 - alpha) * S_hat^m + alpha * C_hat (sige.md section 2).

    Weights must be finite and non-negative; they need not sum to 1 (a convex combination of
    normalised graphs keeps their scale). A zero weight removes that graph's edges entirely, so
    alpha = 0 gives exactly the modality graph.
    """
    if len(graphs) == 0:
        raise SigerecError("mix_graphs needs at least one graph.")
    if len(graphs) != len(weights):
        raise SigerecError(
            f"mix_graphs got {len(graphs)} graphs but {len(weights)} weights; give one weight per graph."
        )
    shapes = {tuple(graph.shape) for graph in graphs}
    if len(shapes) != 1:
        raise SigerecError(f"mix_graphs needs graphs of one shape, got {sorted(shapes)}.")
    for position, weight in enumerate(weights):
        if not np.isfinite(weight) or weight < 0:
            raise SigerecError(f"mix_graphs weight {position} is {weight}; weights must be finite and >= 0.")
    mixed = sp.csr_matrix(graphs[0].shape, dtype=np.float32)
    for graph, weight in zip(graphs, weights):
        if weight > 0:
            mixed = mixed + np.float32(weight) * sp.csr_matrix(graph, dtype=np.float32)
    mixed = sp.csr_matrix(mixed, dtype=np.float32)
    mixed.eliminate_zeros()
    return mixed


def _top_k_positive(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the k largest entries of each row of ``scores``, positive ones only."""
    cols = top_k_items(scores, k)  # [n_rows, k]
    values = np.take_along_axis(scores, cols, axis=1)
    rows, position = np.nonzero(values > 0)
    return rows, cols[rows, position], values[rows, position]


def _csr(rows: list[np.ndarray], cols: list[np.ndarray], values: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    data = np.concatenate(values).astype(np.float32)
    graph = sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items))
    graph.sort_indices()
    return graph


def _unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64; all-zero rows stay zero (similarity 0, not NaN)."""
    unit = features.astype(np.float64)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    np.divide(unit, norms, out=unit, where=norms > 0)
    return unit


def _checked_features(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
        raise SigerecError(
            f"item features must be a numeric [n_items, dim] array, got dtype {features.dtype} "
            f"and shape {features.shape}."
        )
    if not np.isfinite(features).all():
        bad_row = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise SigerecError(f"item features row {bad_row} contains NaN or inf; replace it, e.g. with the mean vector.")
    return features


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SigerecError(f"{name} must be a positive integer, got {value!r}.")
