"""Item-item graphs shared by the multimodal models: modality kNN graphs and co-occurrence.

Built once per dataset (and cached, see ``graph_cache.py``), then frozen:
- ``knn_item_graph``: top-k cosine neighbours of each item's features (FREEDOM, MGCN,
  LATTICE and SIGE's semantic graphs S^m), exact or, for large catalogues, among the
  candidates FAISS finds (``approximate_knn``);
- ``cooccurrence_item_graph``: top-k items co-interacted by the most users (SIGE's C), with
  very heavy users subsampled so that its work stays bounded;
- ``normalize_graph``: D^-1/2 A D^-1/2 or D^-1 A with degrees from the row sums;
- ``mix_graphs``: weighted sums such as FREEDOM's 0.1 * image + 0.9 * text or SIGE's
  (1 - alpha) * S_hat^m + alpha * C_hat.

Every builder works on blocks of rows (of ``block_size`` items for the kNN graph, of at most
``max_block_pairs`` co-occurrence entries), so no dense n_items x n_items matrix is ever formed.
Ties in a top-k always go to the lower item id (the library's one rule, ``sigerec.ranking``), so
a graph does not depend on ``block_size``, on the BLAS build or on the order of the work.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp

from sigerec.errors import SigerecError
from sigerec.graphs.adjacency import symmetric_normalize
from sigerec.graphs.approximate_knn import N_PROBE, approximate_top_k, positive_entries
from sigerec.ranking import top_k_entries, top_k_items

GraphNormalization = Literal["sym", "rw"]
CooccurrenceWeighting = Literal["count", "cosine"]
# How a kNN graph is found: "exact" compares every pair of items, "faiss" only the candidates of
# an inverted file (``approximate_knn``), "auto" the first up to AUTO_EXACT_MAX_ITEMS items.
KnnMethod = Literal["auto", "exact", "faiss"]
NORMALIZATIONS = typing.get_args(GraphNormalization)
COOCCURRENCE_WEIGHTINGS = typing.get_args(CooccurrenceWeighting)
KNN_METHODS = typing.get_args(KnnMethod)

# "auto" stays exact up to here. Exact costs O(n^2 dim): 118 s for 100k 384-d items on one core
# (benchmarks/knn_recall.py), so about 8 minutes at 200k and 3.3 hours at 1M, and 11 times that
# with 4096-d image features (22 minutes at 100k); FAISS took 21 s at 100k with recall 0.98.
# Every benchmark dataset (at most 23,033 items) stays exact.
AUTO_EXACT_MAX_ITEMS = 100_000
# Users with more items count with a sample of this many in the co-occurrence graph (above
# every training degree of the benchmark datasets: 303 at most, ML-100k).
COOCCURRENCE_MAX_USER_DEGREE = 1000
# Entries of R^T R held at once by ``cooccurrence_item_graph``: about 60 MB at the peak. Smaller
# blocks were also faster (sorting a block's entries stays in cache): 4.4 s against 6.8 s with 8M.
COOCCURRENCE_BLOCK_PAIRS = 1_000_000


def resolve_knn_method(method: str, n_items: int) -> str:
    """What ``method`` means for a catalogue of ``n_items``: "exact" or "faiss" (see ``KnnMethod``)."""
    if method not in KNN_METHODS:
        raise SigerecError(f"knn_method must be one of {', '.join(KNN_METHODS)}, got {method!r}.")
    if method == "auto":
        return "exact" if n_items <= AUTO_EXACT_MAX_ITEMS else "faiss"
    return method


def knn_item_graph(
    features: np.ndarray,
    k: int = 10,
    weighted: bool = False,
    block_size: int = 512,
    include_self: bool = True,
    method: str = "auto",
    seed: int = 0,
    n_probe: int = N_PROBE,
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

    ``method`` (see ``KnnMethod``): "exact" compares every pair of items; "faiss" compares
    each item only with its candidates in an inverted file (``approximate_knn``: FAISS
    k-means clusters, ``n_probe`` clusters per cluster, training sample drawn with ``seed``)
    and ranks them the same way, so a found edge has the exact weight and some neighbours are
    missed (recall 0.98 at 100k items, ``benchmarks/knn_recall.py``); "auto": exact up to
    ``AUTO_EXACT_MAX_ITEMS`` items, faiss above.

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
    and 512 rows 0.15 GB, for the same time. With "faiss" a block's products span only its
    candidates (n_probe clusters of about sqrt(n_items) / 4 items each).
    """
    features = _checked_features(features)
    _check_positive("k", k)
    _check_positive("block_size", block_size)
    _check_positive("n_probe", n_probe)
    n_items = features.shape[0]
    method = resolve_knn_method(method, n_items)
    k = min(k, n_items if include_self else n_items - 1)
    if k == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    unit = _unit_rows(features)  # [n_items, dim] float64
    buffers = _Buffers()
    if method == "exact":
        queries = np.arange(n_items)
        cols, values = _top_k_cosines(unit, queries, None, k, block_size, buffers, exclude_own=not include_self)
        rows, cols, values = positive_entries(queries, cols, values)
    else:
        rows, cols, values = approximate_top_k(
            unit,
            k,
            include_self,
            rank=lambda queries, candidates, width: _top_k_cosines(
                unit, queries, candidates, width, block_size, buffers
            ),
            n_probe=n_probe,
            seed=seed,
        )
    graph = _csr([rows], [cols], [values], n_items)
    if not weighted:
        graph.data[:] = 1.0
    return graph


def cooccurrence_item_graph(
    train: sp.spmatrix,
    k: int = 10,
    weighting: str = "count",
    max_user_degree: int = COOCCURRENCE_MAX_USER_DEGREE,
    seed: int = 0,
    max_block_pairs: int = COOCCURRENCE_BLOCK_PAIRS,
) -> sp.csr_matrix:
    """The top-k co-interacted items of every item, from the training interactions only.

    C = R^T R with a zero diagonal (C_ij = number of users who interacted with both i and
    j; R is binarised first, so ratings or repeated rows count once), then the k largest
    entries of each row (SIGE's collaborative signal, sige.md section 2). ``weighting``:
    - "count" (default): the raw counts C_ij;
    - "cosine": C_ij / sqrt(n_i n_j) with n_i the number of users of item i, which keeps
      popular items from being everyone's neighbour. The top-k is taken on these values.
    Ties go to the lower item id. An item nobody co-interacted with has an empty row. Like the
    kNN graph, the result is not symmetric (C is, its per-row top-k is not).

    Bounded work and memory whatever the users' degrees. A user with d items adds d^2 pairs to
    R^T R (50,000 items: 2.5e9), so a user with more than ``max_user_degree`` items counts here
    with a random ``max_user_degree`` of them (drawn with ``seed``; n_i counts the kept ones);
    the other graphs and training still see all of them. The default, 1000, is above every
    user's training degree in the benchmark datasets (at most 303 in ML-100k, 237 in Sports),
    so their graphs are unchanged. Work is then O(sum_u min(d_u, cap)^2). Rows are computed in
    blocks of items whose product holds at most ``max_block_pairs`` entries (about 60 bytes
    each at the peak, 60 MB by default; a block is one item at least), and only each block's
    top k is kept: memory O(max_block_pairs + n_items k).
    """
    if not sp.issparse(train) or len(train.shape) != 2:
        raise SigerecError(f"train must be a scipy sparse [n_users, n_items] matrix, got {type(train).__name__}.")
    _check_positive("k", k)
    _check_positive("max_user_degree", max_user_degree)
    _check_positive("max_block_pairs", max_block_pairs)
    if weighting not in COOCCURRENCE_WEIGHTINGS:
        raise SigerecError(f"weighting must be one of {', '.join(COOCCURRENCE_WEIGHTINGS)}, got {weighting!r}.")
    interacted = sp.csr_matrix(train, dtype=np.float64, copy=True)  # [n_users, n_items]
    interacted.sum_duplicates()
    interacted.eliminate_zeros()
    interacted.data[:] = 1.0
    interacted = cap_user_degrees(interacted, max_user_degree, seed)
    item_users = interacted.T.tocsr()  # [n_items, n_users]
    users_per_item = np.diff(item_users.indptr).astype(np.float64)
    n_items = interacted.shape[1]
    rows, cols, values = [], [], []
    for start, stop in _item_blocks(item_users, np.diff(interacted.indptr), max_block_pairs):
        counts = (item_users[start:stop] @ interacted).tocoo()  # [block, n_items]
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


def cap_user_degrees(interacted: sp.csr_matrix, max_user_degree: int, seed: int = 0) -> sp.csr_matrix:
    """``interacted`` [n_users, n_items] (canonical CSR) with each user who has more than
    ``max_user_degree`` items reduced to a random ``max_user_degree`` of them.

    The choice depends only on the matrix and ``seed``: each heavy user's entries are ranked by
    random keys drawn in the order of the entries, and the lowest keys are kept.
    """
    degree = np.diff(interacted.indptr)
    if degree.max(initial=0) <= max_user_degree:
        return interacted
    entry_user = np.repeat(np.arange(len(degree)), degree)  # [nnz] the user of each entry
    heavy_entries = np.flatnonzero(degree[entry_user] > max_user_degree)
    keys = np.random.default_rng(seed).random(len(heavy_entries))
    ranked = heavy_entries[np.lexsort((keys, entry_user[heavy_entries]))]  # by user, then by key
    rank_in_user = np.arange(len(ranked)) - np.searchsorted(entry_user[ranked], entry_user[ranked], side="left")
    keep = np.ones(interacted.nnz, dtype=bool)
    keep[ranked[rank_in_user >= max_user_degree]] = False
    kept_degree = np.minimum(degree, max_user_degree)
    indptr = np.concatenate([[0], np.cumsum(kept_degree)])
    return sp.csr_matrix(
        (interacted.data[keep], interacted.indices[keep], indptr), shape=interacted.shape, dtype=interacted.dtype
    )


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


def _item_blocks(item_users: sp.csr_matrix, user_degree: np.ndarray, max_pairs: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of items whose rows of R^T R hold at most ``max_pairs`` entries together.

    Row i of R^T R has at most min(sum of its users' degrees, n_items) entries (the first term is
    also the work of computing it), so a block stops before those bounds exceed ``max_pairs``;
    a block holds one item at least.
    """
    n_items = item_users.shape[0]
    row_bound = np.minimum(item_users @ user_degree.astype(np.float64), n_items)  # [n_items]
    ends = np.cumsum(row_bound)
    start = 0
    while start < n_items:
        done = ends[start - 1] if start else 0.0
        stop = max(start + 1, int(np.searchsorted(ends, done + max_pairs, side="right")))
        yield start, stop
        start = stop


def _top_k_cosines(
    unit: np.ndarray,
    queries: np.ndarray,
    candidates: np.ndarray | None,
    k: int,
    block_size: int,
    buffers: _Buffers,
    exclude_own: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """[n_queries, min(k, n_candidates)] item ids and float32 cosines of the k candidates most
    similar to each of ``queries``, best first; ``candidates``: ids ascending, so that ties go to
    the lower id (None: every item). ``exclude_own``: an item is not its own candidate (-inf).

    Queries go in blocks of ``block_size``.
    """
    candidate_unit = unit if candidates is None else unit[candidates]  # [n_candidates, dim]
    cols, values = [], []
    for start in range(0, len(queries), block_size):
        block = queries[start : start + block_size]
        similarity = _block_cosines(unit[block], candidate_unit, buffers)  # [block, n_candidates]
        if exclude_own:
            own_column = block if candidates is None else np.searchsorted(candidates, block)
            similarity[np.arange(len(block)), own_column] = -np.inf
        best = top_k_items(similarity, k)  # [block, k]
        values.append(np.take_along_axis(similarity, best, axis=1))
        cols.append(best if candidates is None else candidates[best])
    return np.concatenate(cols), np.concatenate(values)


class _Buffers:
    """Output arrays reused by every block: fresh arrays this large page-fault on every block (a
    sixth of the time at Clothing size). Each grows to the largest block asked for."""

    def __init__(self) -> None:
        self._flat: dict[str, np.ndarray] = {}

    def take(self, name: str, shape: tuple[int, int], dtype: type) -> np.ndarray:
        size = shape[0] * shape[1]
        if name not in self._flat or self._flat[name].size < size:
            self._flat[name] = np.empty(size, dtype=dtype)
        return self._flat[name][:size].reshape(shape)


def _block_cosines(queries: np.ndarray, candidates: np.ndarray, buffers: _Buffers) -> np.ndarray:
    """[n_queries, n_candidates] float32 cosines of unit rows, accumulated in float64 (see ``knn_item_graph``)."""
    shape = (queries.shape[0], candidates.shape[0])
    products = buffers.take("products", shape, np.float64)
    np.matmul(queries, candidates.T, out=products)
    similarity = buffers.take("similarity", shape, np.float32)
    np.copyto(similarity, products, casting="same_kind")
    return similarity


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
