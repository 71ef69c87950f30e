"""Approximate kNN graphs for large catalogues: each item compared with the items of a few
clusters, found with FAISS.

The exact kNN graph compares every item with every other, O(n_items^2 dim): minutes at 100k
items, hours at 1M. An inverted file (IVF) compares an item only with the items of the
``n_probe`` clusters nearest to it: FAISS's spherical k-means splits the unit feature vectors
into ``n_lists`` (about 2 sqrt(n_items)) clusters, trained on a seeded sample, and each item's
candidates are the members of its ``n_probe`` nearest centroids' clusters, as in FAISS's
``IndexIVFFlat``. The candidates are ranked exactly as the exact graph ranks all items (float64
cosines, only positive ones, ties to the lower id; ``item_graphs`` passes that ranking in), so
an edge that is found has the exact graph's weight; what is approximate is which neighbours are
found, measured by :func:`knn_recall`. With ``n_probe >= n_lists`` every item is a candidate
and the graph is the exact one.

Why not ``IndexIVFFlat.search`` itself: it scores one item against one stored vector at a time,
and it ranks in float32, so ties would depend on the order of the work. Here the work goes list
by list: all the items (of a chunk) that probe a cluster are compared with its members in one
matrix product, and each item keeps the best of every list it probes. At 100k items on one core,
with the same clusters and probes, both find 98.1% of the exact neighbours; the search took
57 s, this 21 s (k-means included).

Identical vectors (mean-filled features: 52% of Baby's text rows, 86% of Sports') are handled
once: k-means trains on distinct vectors (thousands of copies would pull several centroids onto
one point), each distinct vector is ranked once and its copies share its neighbours, and of a
vector's copies only the lowest ids can be anyone's neighbour (ties go to the lower id), so only
``width`` of them are candidates. Without this the copies would all be compared with each
other, quadratic in their number.

Reproducible: the training sample and FAISS's k-means are seeded; FAISS finds each item's
nearest centroids with float32 matrix products whose last bits may depend on the BLAS thread
count, so an item almost equally near two centroids may probe another cluster (and find a
different neighbour) on a machine with another thread count; with the same thread count the
graph is the same every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sigerec.errors import SigerecError

# Clusters per sqrt(n_items). FAISS advises 4 to 16 sqrt(n) for its per-item search; here larger
# clusters make larger matrix products: at 100k items on one core, 2 sqrt(n) clusters with 32
# probes found 98.1% of the exact neighbours in 21 s, 4 sqrt(n) with 32 probes 96.7% in 22 s.
LISTS_PER_SQRT_ITEM = 2
# FAISS's k-means wants at least 39 training points per cluster: no more clusters than that allows.
MIN_POINTS_PER_LIST = 39
# The k-means sample: 64 points per cluster, so training costs O(n_lists^2 dim), not O(n n_lists dim).
TRAINING_POINTS_PER_LIST = 64
KMEANS_ITERATIONS = 10
# Clusters probed by each item. Recall against exact at 100k items, one core (benchmarks/knn_recall.py):
# 0.959 with 16 (12 s), 0.981 with 32 (21 s), 0.994 with 64 (39 s); exact took 118 s.
N_PROBE = 32
# Rows hashed or assigned to clusters per call, to bound the temporary copies.
_ROW_BLOCK = 16_384
# Partial results (item, candidate, cosine) held at once while merging the lists' best: ~0.3 GB.
_MERGE_ENTRIES = 8_000_000

# Ranks ``queries`` (ids) against ``candidates`` (ids, ascending): [n_queries, min(width,
# n_candidates)] candidate ids and float32 cosines of each query's best, best first, ties to the lower id.
Ranker = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def ivf_settings(n_probe: int = N_PROBE) -> dict[str, int]:
    """Every setting that shapes an approximate graph besides its inputs and seed, e.g. for a cache key."""
    return {
        "n_probe": n_probe,
        "lists_per_sqrt_item": LISTS_PER_SQRT_ITEM,
        "training_points_per_list": TRAINING_POINTS_PER_LIST,
        "kmeans_iterations": KMEANS_ITERATIONS,
    }


def n_lists_for(n_vectors: int, lists_per_sqrt_item: int | None = None) -> int:
    """The number of clusters for ``n_vectors`` distinct vectors: ``lists_per_sqrt_item`` (default
    ``LISTS_PER_SQRT_ITEM``) sqrt(n), at most one per ``MIN_POINTS_PER_LIST`` vectors."""
    per_sqrt = LISTS_PER_SQRT_ITEM if lists_per_sqrt_item is None else lists_per_sqrt_item
    return max(1, min(int(per_sqrt * math.sqrt(n_vectors)), n_vectors // MIN_POINTS_PER_LIST))


def approximate_top_k(
    unit: np.ndarray, k: int, include_self: bool, rank: Ranker, n_probe: int = N_PROBE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of every item's top k positive cosines among its IVF candidates, best
    first per row.

    ``unit``: [n_items, dim] rows of length 1 or 0; all-zero rows get no neighbours and are
    nobody's. ``rank`` ranks candidates (``item_graphs`` passes its exact ranking). Memory:
    O(n_items (k + n_probe)) plus one chunk's ``_MERGE_ENTRIES`` partial results.
    """
    faiss = _import_faiss()
    copies = _identical_rows(unit)
    vectors = copies.representatives  # [n_vectors] the lowest id of each distinct vector
    if len(vectors) == 0:  # every row is zero: no neighbours at all
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    width = k if include_self else k + 1  # without self: the vector's top k + 1 less the item
    # Of each vector's copies only the ``width`` lowest ids can be neighbours: the others lose the tie.
    kept = np.minimum(copies.counts, width)
    candidates = copies.items[_ranges(copies.start[:-1], kept)]  # [n_candidates] ids
    n_lists = n_lists_for(len(vectors))
    if n_lists == 1 or n_probe >= n_lists:
        cols, values = rank(vectors, np.sort(candidates), width)  # [n_vectors, width']
        return _share_with_copies(*positive_entries(vectors, cols, values), copies, k, include_self)
    centroids = _spherical_kmeans(faiss, unit, vectors, n_lists, seed)  # [n_lists, dim] float32
    centroid_index = faiss.IndexFlatIP(centroids.shape[1])
    centroid_index.add(centroids)
    probes = _nearest_centroids(centroid_index, unit, vectors, n_probe)  # [n_vectors, n_probe], nearest first
    candidate_list = np.repeat(probes[:, 0], kept)  # a copy is in its vector's nearest cluster
    members = [np.sort(ids) for ids in _split_by(candidate_list, candidates, n_lists)]
    chunk_size = max(1, _MERGE_ENTRIES // (n_probe * width))
    rows, cols, values = [], [], []
    for start in range(0, len(vectors), chunk_size):
        chunk = slice(start, start + chunk_size)
        chunk_cols, chunk_values = _best_of_probed_lists(vectors[chunk], probes[chunk], members, width, rank)
        found = positive_entries(vectors[chunk], chunk_cols, chunk_values)
        rows.append(found[0])
        cols.append(found[1])
        values.append(found[2])
    found = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    return _share_with_copies(*found, copies, k, include_self)


def _best_of_probed_lists(
    queries: np.ndarray, probes: np.ndarray, members: list[np.ndarray], width: int, rank: Ranker
) -> tuple[np.ndarray, np.ndarray]:
    """[n_queries, width] candidate ids and cosines of each query's best among the members of its
    probed clusters, best first, ties to the lower id.

    Cluster by cluster, the queries probing it are ranked against its members in one go; the j-th
    probe's best fill slots j * width.. of a row, and each row keeps the best ``width`` of them.
    """
    n_queries, n_probe = probes.shape
    values = np.full((n_queries, n_probe * width), -np.inf, dtype=np.float32)
    cols = np.full((n_queries, n_probe * width), np.iinfo(np.int64).max, dtype=np.int64)
    by_cluster = np.argsort(probes.ravel(), kind="stable")  # (query, probe) pairs, flat, by cluster
    bounds = np.searchsorted(probes.ravel()[by_cluster], np.arange(len(members) + 1))
    for cluster, listed in enumerate(members):
        pairs = by_cluster[bounds[cluster] : bounds[cluster + 1]]
        if len(pairs) == 0 or len(listed) == 0:
            continue
        query, probe = np.divmod(pairs, n_probe)
        list_cols, list_values = rank(queries[query], listed, width)  # [len(pairs), width']
        slots = probe[:, None] * width + np.arange(list_cols.shape[1])
        cols[query[:, None], slots] = list_cols
        values[query[:, None], slots] = list_values
    best = np.lexsort((cols, -values), axis=-1)[:, :width]  # cosine descending, then id ascending
    return np.take_along_axis(cols, best, axis=1), np.take_along_axis(values, best, axis=1)


def positive_entries(
    queries: np.ndarray, cols: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the positive entries of dense per-query results, in row order."""
    row, position = np.nonzero(values > 0)
    return queries[row], cols[row, position], values[row, position]


def knn_recall(approximate: sp.spmatrix, exact: sp.spmatrix) -> float:
    """The share of the exact graph's edges that the approximate graph also has (1.0 if it has none).

    Each exact top-k neighbour counts once, whatever its weight; an item tied with the k-th
    exact neighbour that the approximate graph keeps instead counts as a miss.
    """
    if approximate.shape != exact.shape:
        raise SigerecError(f"knn_recall needs graphs of one shape, got {approximate.shape} and {exact.shape}.")
    exact_edges = sp.csr_matrix(exact, dtype=bool)
    exact_edges.eliminate_zeros()
    if exact_edges.nnz == 0:
        return 1.0
    found = exact_edges.multiply(sp.csr_matrix(approximate, dtype=bool))
    return float(found.nnz / exact_edges.nnz)


@dataclass
class _Copies:
    """The non-zero rows grouped by identical vector. ``items``: their ids grouped by vector, ids
    ascending within a vector; vector g's copies are ``items[start[g]:start[g + 1]]``, the first
    of which (its lowest id) stands for it."""

    items: np.ndarray  # [n_indexed]
    start: np.ndarray  # [n_vectors + 1]

    @property
    def representatives(self) -> np.ndarray:
        return self.items[self.start[:-1]]

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.start)


def _identical_rows(unit: np.ndarray) -> _Copies:
    """Group the non-zero rows by identical vector: an exact integer hash of each row's bits, then
    a check that every row equals its group's first row (a row that does not gets its own group)."""
    indexed = np.flatnonzero(np.any(unit != 0, axis=1))
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=unit.shape[1], dtype=np.uint64) | np.uint64(1)
    hashes = np.concatenate(
        [np.zeros(0, np.uint64)]
        + [
            (np.ascontiguousarray(unit[indexed[start : start + _ROW_BLOCK]]).view(np.uint64) * multipliers).sum(
                axis=1, dtype=np.uint64
            )
            for start in range(0, len(indexed), _ROW_BLOCK)
        ]
    )
    _, first, group = np.unique(hashes, return_index=True, return_inverse=True)
    group = group.ravel()
    for start in range(0, len(indexed), _ROW_BLOCK):
        block = slice(start, start + _ROW_BLOCK)
        differs = np.flatnonzero(np.any(unit[indexed[block]] != unit[indexed[first[group[block]]]], axis=1)) + start
        group[differs] = group.max(initial=-1) + 1 + np.arange(len(differs))  # hash collisions: rows on their own
    by_group = np.argsort(group, kind="stable")  # ids stay ascending within a group
    start = np.searchsorted(group[by_group], np.arange(group.max(initial=-1) + 2))
    return _Copies(items=indexed[by_group], start=start)


def _share_with_copies(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, copies: _Copies, k: int, include_self: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every copy's neighbours from its representative's ranked list (``rows`` best first per row).

    With ``include_self`` a copy has its vector's top k (itself included only if among its
    vector's k lowest-id copies, as in the exact graph); without, its vector's top k + 1 less
    the copy itself, or less the last one if it is not in the list.
    """
    n_vectors = len(copies.counts)
    vector_of_row = np.full(copies.items.max(initial=-1) + 1, -1)
    vector_of_row[copies.representatives] = np.arange(n_vectors)
    order = np.argsort(vector_of_row[rows], kind="stable")  # each vector's entries together, best first
    rows, cols, values = vector_of_row[rows[order]], cols[order], values[order]
    entries = np.bincount(rows, minlength=n_vectors)  # [n_vectors]
    first_entry = np.concatenate([[0], np.cumsum(entries)[:-1]])
    copy_vector = np.repeat(np.arange(n_vectors), copies.counts)  # [n_indexed] the vector of copies.items
    taken = _ranges(first_entry[copy_vector], entries[copy_vector])  # each copy's entries, in copies.items order
    copy_of_entry = np.repeat(np.arange(len(copies.items)), entries[copy_vector])  # non-decreasing
    copy_rows, copy_cols, copy_values = copies.items[copy_of_entry], cols[taken], values[taken]
    if not include_self:
        other = copy_cols != copy_rows
        copy_of_entry, copy_rows, copy_cols, copy_values = (
            a[other] for a in (copy_of_entry, copy_rows, copy_cols, copy_values)
        )
    rank_in_row = np.arange(len(copy_rows)) - np.searchsorted(copy_of_entry, copy_of_entry, side="left")
    keep = rank_in_row < k
    return copy_rows[keep], copy_cols[keep], copy_values[keep]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, start + length) for each pair."""
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return offsets + np.arange(lengths.sum())


def _split_by(labels: np.ndarray, values: np.ndarray, n_labels: int) -> list[np.ndarray]:
    """``values`` split by their label, in their order within each label."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_labels + 1))
    return [values[order[bounds[c] : bounds[c + 1]]] for c in range(n_labels)]


def _spherical_kmeans(faiss, unit: np.ndarray, vectors: np.ndarray, n_lists: int, seed: int) -> np.ndarray:
    """Unit-length centroids of ``n_lists`` clusters of a seeded sample of the rows ``vectors``."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(vectors, size=min(len(vectors), TRAINING_POINTS_PER_LIST * n_lists), replace=False))
    kmeans = faiss.Kmeans(
        unit.shape[1],
        n_lists,
        niter=KMEANS_ITERATIONS,
        seed=seed,
        spherical=True,
        max_points_per_centroid=TRAINING_POINTS_PER_LIST,
        verbose=False,
    )
    kmeans.train(np.ascontiguousarray(unit[sample], dtype=np.float32))
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def _nearest_centroids(centroid_index, unit: np.ndarray, vectors: np.ndarray, n_probe: int) -> np.ndarray:
    """[len(vectors), n_probe] the clusters whose centroids have the largest inner products with
    each of the rows ``vectors``, nearest first (the first is the row's own cluster)."""
    blocks = [
        centroid_index.search(np.ascontiguousarray(unit[vectors[start : start + _ROW_BLOCK]], np.float32), n_probe)[1]
        for start in range(0, len(vectors), _ROW_BLOCK)
    ]
    return np.concatenate(blocks).astype(np.int32)


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise SigerecError(
            "knn_method 'faiss' (and 'auto' above item_graphs.AUTO_EXACT_MAX_ITEMS items) needs faiss-cpu: "
            "pip install 'sigerec[ann]', or set knn_method=exact."
        ) from None
    return faiss
