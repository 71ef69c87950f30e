"""The user-item interaction graph as a symmetrically normalised sparse adjacency."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def symmetric_normalize(matrix: sp.spmatrix, epsilon: float = 1e-7) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with degrees from the row sums of a symmetric ``matrix``.

    ``epsilon`` keeps isolated nodes finite, exactly as MMRec/LightGCN add 1e-7 to degrees.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    degree = np.asarray(matrix.sum(axis=1)).ravel() + epsilon
    inverse_sqrt = np.power(degree, -0.5).astype(np.float32)
    scale = sp.diags(inverse_sqrt)
    return sp.csr_matrix(scale @ matrix @ scale, dtype=np.float32)


def interaction_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """The bipartite adjacency [[0, R], [R^T, 0]] over users then items (no self-loops)."""
    binary = sp.csr_matrix(train, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    return sp.bmat([[None, binary], [binary.T, None]], format="csr", dtype=np.float32).tocsr()


def normalized_interaction_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """LightGCN's propagation matrix: D^-1/2 A D^-1/2 of the user-item graph (eq. 7 of LightGCN)."""
    return symmetric_normalize(interaction_adjacency(train))


def to_torch_sparse(matrix: sp.spmatrix, device: str | torch.device = "cpu") -> torch.Tensor:
    """A scipy matrix as a torch sparse CSR tensor (fast sparse x dense products on CPU and GPU).

    Indices are int32 where they fit: the CPU kernel otherwise converts int64 indices to
    int32 on every product, which cost about a third of each product's time.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sort_indices()
    index_type = np.int32 if matrix.nnz < np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(index_type)),
            torch.from_numpy(matrix.indices.astype(index_type)),
            torch.from_numpy(matrix.data),
            size=matrix.shape,
            device=device,
        )
