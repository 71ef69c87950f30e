"""Batch-local propagation: a training step computes only the nodes its batch depends on.

A full LightGCN layer costs O(edges) and an item-graph layer O(items x k) whatever the batch,
so with a fixed batch size an epoch costs O(batches x catalogue): fine for 7k items, hopeless
for a million. The final vector of a node after L layers depends only on its L-hop
neighbourhood, so a step can propagate over that neighbourhood alone and get the same numbers
(up to float rounding: sums run in another order):

    sets[L] = the batch's nodes;  sets[l - 1] = sets[l] + their neighbours
    layer 0 on sets[0] = the ID rows gathered;  layer l on sets[l] = A[sets[l], sets[l - 1]] @ layer l - 1

Gathers here produce sparse gradients (``torch.nn.functional.embedding(..., sparse=True)``),
so a step never touches a full [n_nodes, d] buffer either; the optimiser must accept them
(``sigerec.training.lazy_adam.LazyAdam``). The neighbourhood of a few thousand nodes still
grows with L and with hub degrees (an L=2 neighbourhood includes every user of every popular
item in the batch); its size is what a step costs, and the scaling benchmark measures it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from sigerec.graphs.propagation import _RowSparseProduct


def sampled_rows(matrix: sp.csr_matrix, rows: np.ndarray, fanout: int = 0, rng=None) -> sp.csr_matrix:
    """``matrix[rows]`` (columns keep their global ids), with neighbour sampling when ``fanout``.

    ``fanout`` > 0: a row with more than ``fanout`` entries keeps ``fanout`` of them, drawn
    uniformly with replacement, each scaled by degree / fanout, so the row's product with any
    vector is an unbiased estimate of the exact one (GraphSAGE-style sampling; repeated draws
    are summed by the product). Shorter rows stay exact. This bounds a layer's work by
    rows x fanout, which hubs (an item with most users as neighbours) otherwise break.
    """
    if fanout <= 0:
        return matrix[rows]
    starts = matrix.indptr[rows]
    degrees = matrix.indptr[rows + 1] - starts
    long = degrees > fanout
    if not long.any():
        return matrix[rows]
    counts = np.where(long, fanout, degrees)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    owner = np.repeat(np.arange(len(rows)), counts)  # the row of each kept entry
    offset = np.arange(indptr[-1]) - indptr[owner]
    drawn = (rng.random(indptr[-1]) * degrees[owner]).astype(np.int64)
    position = starts[owner] + np.where(long[owner], drawn, offset)
    scale = np.where(long[owner], degrees[owner] / fanout, 1.0)
    data = (matrix.data[position] * scale).astype(np.float32)
    return sp.csr_matrix((data, matrix.indices[position], indptr), shape=(len(rows), matrix.shape[1]))


def neighbourhood(
    matrix: sp.csr_matrix, targets: np.ndarray, n_layers: int, fanout: int = 0, rng=None
) -> tuple[list[np.ndarray], list[sp.csr_matrix]]:
    """The node sets and layer steps L hops around ``targets``.

    ``sets[n_layers]`` = the distinct targets (sorted); ``sets[l - 1]`` = ``sets[l]`` and every
    neighbour its rows keep (all, or a sample with ``fanout``). ``steps[l - 1]`` holds those rows
    with columns renumbered into ``sets[l - 1]``, so layer l = ``steps[l - 1] @ layer l - 1``.
    """
    sets = [np.unique(np.asarray(targets, dtype=np.int64))]
    row_blocks = []
    for _ in range(n_layers):
        block = sampled_rows(matrix, sets[0], fanout, rng)
        sets.insert(0, np.union1d(sets[0], block.indices).astype(np.int64))
        row_blocks.insert(0, block)
    steps = [renumber_columns(block, columns) for block, columns in zip(row_blocks, sets[:-1])]
    return sets, steps


def renumber_columns(block: sp.csr_matrix, columns: np.ndarray) -> sp.csr_matrix:
    """``block`` with its global column ids renumbered into sorted ``columns`` (which hold them all).

    A binary search per entry, instead of scipy's column indexing, which scans all n columns.
    """
    local_columns = np.searchsorted(columns, block.indices)
    return sp.csr_matrix((block.data, local_columns, block.indptr), shape=(block.shape[0], len(columns)))


def sampling_generator(fanout: int) -> np.random.Generator | None:
    """A NumPy generator for neighbour sampling, drawn from torch's (seeded per epoch) generator,
    so sampled runs repeat and resume exactly; None when nothing is sampled."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item())) if fanout > 0 else None


def positions(sorted_ids: np.ndarray, ids: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Where each of ``ids`` sits in ``sorted_ids`` (every id must be present)."""
    return torch.from_numpy(np.searchsorted(sorted_ids, np.asarray(ids)))


def gather_rows(table: torch.Tensor, ids: np.ndarray) -> torch.Tensor:
    """``table[ids]`` with a sparse gradient when ``table`` is trained (no full-size buffer)."""
    index = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
    if table.requires_grad:
        return torch.nn.functional.embedding(index, table, sparse=True)
    return table[index]


def sparse_product(matrix: sp.csr_matrix, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` for a small constant scipy CSR and a CPU tensor, differentiable in ``dense``."""
    return _RowSparseProduct.apply(matrix, dense)


def propagate_over(steps: list[sp.csr_matrix], first_layer: torch.Tensor) -> list[torch.Tensor]:
    """Layers 0..L of a :func:`neighbourhood`: layer 0 is ``first_layer`` (rows = ``sets[0]``),
    layer l = ``steps[l - 1] @ layer l - 1`` (rows = ``sets[l]``)."""
    layers = [first_layer]
    for step in steps:
        layers.append(sparse_product(step, layers[-1]))
    return layers


def local_lightgcn_rows(
    normalized: sp.csr_matrix, embeddings: torch.Tensor, n_layers: int, rows: torch.Tensor, fanout: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean of layers 0..L at rows, layer 0 at rows)`` from the rows' L-hop neighbourhood only.

    The same values as ``lightgcn_propagate_rows`` (float rounding aside), at a cost set by the
    neighbourhood's edges instead of the whole graph's; with ``fanout``, an unbiased estimate
    from sampled neighbours (:func:`sampled_rows`), drawn from torch's seeded generator.
    """
    targets = rows.numpy()
    sets, steps = neighbourhood(normalized, targets, n_layers, fanout, sampling_generator(fanout))
    layers = propagate_over(steps, gather_rows(embeddings, sets[0]))
    total = sum(layer[positions(node_set, targets)] for layer, node_set in zip(layers, sets))
    ego = layers[0][positions(sets[0], targets)]
    return total * (1.0 / (n_layers + 1)), ego
