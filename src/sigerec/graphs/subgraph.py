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


def layer_node_sets(matrix: sp.csr_matrix, targets: np.ndarray, n_layers: int) -> list[np.ndarray]:
    """Sorted node ids needed at each layer: ``sets[n_layers]`` = the distinct targets, and
    ``sets[l - 1]`` = ``sets[l]`` with every column of ``matrix[sets[l]]`` added."""
    sets = [np.unique(np.asarray(targets, dtype=np.int64))]
    for _ in range(n_layers):
        current = sets[0]
        neighbours = matrix[current].indices
        sets.insert(0, np.union1d(current, neighbours).astype(np.int64))
    return sets


def restricted_rows(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows][:, columns]`` for sorted ``columns`` that hold every column of those rows.

    Renumbering the column indices by binary search avoids scipy's general column indexing,
    which scans all n columns.
    """
    sliced = matrix[rows]
    local_columns = np.searchsorted(columns, sliced.indices)
    return sp.csr_matrix((sliced.data, local_columns, sliced.indptr), shape=(len(rows), len(columns)))


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


def propagate_over(matrix: sp.csr_matrix, sets: list[np.ndarray], first_layer: torch.Tensor) -> list[torch.Tensor]:
    """Layers 0..L on their node sets: layer 0 is ``first_layer`` (rows = ``sets[0]``), layer l
    = ``matrix[sets[l], sets[l - 1]] @ layer l - 1`` (rows = ``sets[l]``)."""
    layers = [first_layer]
    for level in range(1, len(sets)):
        step = restricted_rows(matrix, sets[level], sets[level - 1])
        layers.append(sparse_product(step, layers[-1]))
    return layers


def local_lightgcn_rows(
    normalized: sp.csr_matrix, embeddings: torch.Tensor, n_layers: int, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean of layers 0..L at rows, layer 0 at rows)`` from the rows' L-hop neighbourhood only.

    The same values as ``lightgcn_propagate_rows`` (float rounding aside), at a cost set by the
    neighbourhood's edges instead of the whole graph's.
    """
    targets = rows.numpy()
    sets = layer_node_sets(normalized, targets, n_layers)
    layers = propagate_over(normalized, sets, gather_rows(embeddings, sets[0]))
    total = sum(layer[positions(node_set, targets)] for layer, node_set in zip(layers, sets))
    ego = layers[0][positions(sets[0], targets)]
    return total * (1.0 / (n_layers + 1)), ego
