"""Message passing shared by every graph model: sparse products and LightGCN layers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class _SymmetricSparseProduct(torch.autograd.Function):
    """``A @ X`` for a constant symmetric sparse ``A``.

    The gradient with respect to X is ``A^T @ G = A @ G``; using A itself avoids the
    transpose of a CSR matrix that autograd would otherwise build on every backward pass.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return adjacency @ dense

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, ctx.adjacency @ grad_output


def symmetric_sparse_product(adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``adjacency @ dense`` where ``adjacency`` is symmetric and not trained."""
    return _SymmetricSparseProduct.apply(adjacency, dense)


class _SparseProduct(torch.autograd.Function):
    """``A @ X`` for a constant, possibly non-symmetric sparse ``A`` with its transpose given.

    Item-item kNN graphs normalised by row sums are not symmetric, so their backward pass
    needs ``A^T``; it is built once by the caller rather than on every step.
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor, matrix_t: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.matrix_t = matrix_t
        return matrix @ dense

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, None, ctx.matrix_t @ grad_output


class SparseOperator:
    """A constant sparse matrix ready for products in autograd: ``operator @ dense``.

    Symmetric matrices (the normalised user-item graph) reuse themselves in the backward
    pass; others keep their transpose, made once here.
    """

    def __init__(self, matrix: sp.spmatrix, device: str | torch.device = "cpu"):
        from sigerec.graphs.adjacency import to_torch_sparse

        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.scipy = matrix  # row slices of it serve ``rows`` on CPU
        self.shape = matrix.shape
        self.symmetric = matrix.shape[0] == matrix.shape[1] and (matrix != matrix.T).nnz == 0
        self.matrix = to_torch_sparse(matrix, device)
        self.matrix_t = self.matrix if self.symmetric else to_torch_sparse(matrix.T.tocsr(), device)

    def __matmul__(self, dense: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            return _SymmetricSparseProduct.apply(self.matrix, dense)
        return _SparseProduct.apply(self.matrix, self.matrix_t, dense)

    def rows(self, row_ids: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``(operator @ dense)[row_ids]``; on CPU only those rows are computed.

        A training batch needs a few thousand rows of a product over all nodes (e.g. the
        batch users' aggregate of item vectors); slicing the CSR rows first saves the rest.
        """
        if dense.device.type != "cpu":
            return (self @ dense)[row_ids.to(dense.device)]
        return _RowsOfProduct.apply(self.scipy, row_ids.numpy(), dense)


class _RowSparseProduct(torch.autograd.Function):
    """``S @ X`` for a small constant scipy CSR ``S`` [rows, n] and a CPU tensor X [n, dim].

    Backward uses ``S.T`` (a free CSC view in scipy), so no transpose is ever materialised.
    """

    @staticmethod
    def forward(ctx, rows_matrix: sp.csr_matrix, dense: torch.Tensor) -> torch.Tensor:
        ctx.rows_matrix = rows_matrix
        return torch.from_numpy(np.asarray(rows_matrix @ dense.detach().numpy()))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, _transpose_product(ctx.rows_matrix, grad_output)


class _RowsOfProduct(torch.autograd.Function):
    """``(A @ X)[row_ids]`` for a constant scipy CSR ``A`` [n, m] and a CPU tensor X [m, dim].

    The forward pass computes each distinct row once (:func:`_distinct_row_product`); the
    backward pass uses ``A[row_ids].T`` (a free CSC view in scipy).
    """

    @staticmethod
    def forward(ctx, matrix: sp.csr_matrix, row_ids: np.ndarray, dense: torch.Tensor) -> torch.Tensor:
        ctx.matrix, ctx.row_ids = matrix, row_ids
        return torch.from_numpy(_distinct_row_product(matrix, row_ids, dense.detach().numpy()))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, None, _transpose_product(ctx.matrix[ctx.row_ids], grad_output)


class _RowsAndRowsOfProduct(torch.autograd.Function):
    """``(X[rows], (A @ X)[rows])`` with a single full-size gradient buffer, for a constant
    scipy CSR ``A`` [n, n] and a CPU tensor X [n, dim].

    Memory bandwidth, not arithmetic, bounds a CPU training step: separate gathers would
    each zero-fill and add a full [n, dim] gradient. Here ``A[rows].T @ G`` allocates the one
    buffer and the gathered rows' gradients are added into it in place.
    """

    @staticmethod
    def forward(ctx, matrix: sp.csr_matrix, rows: torch.Tensor, dense: torch.Tensor):
        ctx.matrix, ctx.rows = matrix, rows
        table = dense.detach()
        neighbours = torch.from_numpy(_distinct_row_product(matrix, rows.numpy(), table.numpy()))
        return table.index_select(0, rows), neighbours  # index_select: a plain gather, unlike [rows]

    @staticmethod
    def backward(ctx, grad_rows: torch.Tensor | None, grad_neighbours: torch.Tensor | None):
        if grad_neighbours is None:
            grad = torch.zeros(ctx.matrix.shape[1], grad_rows.shape[1], dtype=grad_rows.dtype)
        else:
            grad = _transpose_product(ctx.matrix[ctx.rows.numpy()], grad_neighbours)
        if grad_rows is not None:
            grad.index_add_(0, ctx.rows, grad_rows)
        return None, None, grad


def _distinct_row_product(matrix: sp.csr_matrix, row_ids: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """``matrix[row_ids] @ dense``, each distinct row computed once.

    A training batch repeats rows: popular items come back as positives many times, and theirs
    are the longest rows (on Baby, half of a batch's nonzeros are repeats). Each row's sum runs
    over the same entries in the same order as in ``matrix[row_ids] @ dense``, so the result is
    bit-identical.
    """
    distinct, where = np.unique(row_ids, return_inverse=True)
    return np.take(np.asarray(matrix[distinct] @ dense), where.reshape(-1), axis=0)


def _transpose_product(rows_matrix: sp.csr_matrix, grad: torch.Tensor) -> torch.Tensor:
    product = rows_matrix.T @ grad.contiguous().numpy()
    return torch.from_numpy(np.ascontiguousarray(product, dtype=np.float32))


def lightgcn_propagate(adjacency: torch.Tensor, embeddings: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean of layers 0..L of E^(l+1) = Â E^(l) (LightGCN, He et al. 2020, eqs. 7-8).

    ``adjacency`` is the symmetric normalised graph [n, n]; ``embeddings`` is [n, dim].
    """
    layer = embeddings
    total = embeddings
    for _ in range(n_layers):
        layer = symmetric_sparse_product(adjacency, layer)
        total = total + layer
    return total * (1.0 / (n_layers + 1))


def lightgcn_propagate_rows(
    adjacency: torch.Tensor,
    adjacency_scipy: sp.csr_matrix,
    embeddings: torch.Tensor,
    n_layers: int,
    rows: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lightgcn_propagate(...)[rows], embeddings[rows])``, the last layer only for ``rows``.

    A training batch needs the final vectors of a few thousand nodes; the last layer
    Â E^(L-1) restricted to those rows is a product with Â[rows] only, which on CPU saves
    one full sparse product forward and one backward per step (the result is the same).
    The layer-0 rows come back too, for regularisers, without a second gather.
    On other devices it falls back to full propagation.
    """
    if embeddings.device.type != "cpu" or n_layers == 0:
        return lightgcn_propagate(adjacency, embeddings, n_layers)[rows], embeddings[rows]
    scale = 1.0 / (n_layers + 1)
    if n_layers == 1:
        ego_rows, last_rows = _RowsAndRowsOfProduct.apply(adjacency_scipy, rows, embeddings)
        return (ego_rows + last_rows) * scale, ego_rows
    ego_rows = embeddings[rows]
    layer, total_rows = embeddings, ego_rows
    for _ in range(n_layers - 1):
        layer = symmetric_sparse_product(adjacency, layer)
        total_rows = total_rows + layer[rows]
    last_rows = _RowsOfProduct.apply(adjacency_scipy, rows.numpy(), layer)
    return (total_rows + last_rows) * scale, ego_rows
