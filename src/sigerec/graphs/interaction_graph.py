"""The user-item graph as one object a model propagates over (as PyG's LightGCN builds on one LGConv).

A model asks :func:`sigerec.graphs.dataset_graphs.interaction_graph` for it once, instead of
building the normalised adjacency itself and carrying a torch copy for products and a scipy
copy for row slices side by side.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from sigerec.graphs.adjacency import normalized_interaction_adjacency, to_torch_sparse
from sigerec.graphs.propagation import (
    SparseOperator,
    lightgcn_propagate,
    lightgcn_propagate_rows,
    symmetric_sparse_product,
)
from sigerec.graphs.subgraph import local_lightgcn_rows


class InteractionGraph:
    """Â = D^-1/2 A D^-1/2 of the bipartite graph [[0, R], [R^T, 0]], users first, then items.

    Node ``u`` is user u and node ``n_users + i`` is item i. Repeated and weighted interactions
    count once (the graph is binary), as in LightGCN and MMRec.
    """

    def __init__(self, train: sp.spmatrix, device: str | torch.device = "cpu"):
        self.n_users, self.n_items = train.shape
        self.device = torch.device(device)
        interactions = sp.csr_matrix(train, dtype=np.float32, copy=True)
        interactions.sum_duplicates()  # canonical: sorted indices, one entry per pair
        interactions.data[:] = 1.0
        self.interactions = interactions  # R [n_users, n_items], binary: what models count and sample from
        self.normalized = normalized_interaction_adjacency(train)  # scipy CSR: row slices on CPU
        self.adjacency = to_torch_sparse(self.normalized, self.device)  # products on any device
        # True: training steps propagate over the batch's neighbourhood only (``subgraph.py``),
        # with sparse gradients; set by ``Recommender.use_step_scope("batch")``.
        self.batch_local = False
        self.fanout = 0  # with batch_local: sampled neighbours per node and layer, 0 = all

    def propagate(self, embeddings: torch.Tensor, n_layers: int) -> torch.Tensor:
        """LightGCN's mean of layers 0..L over all nodes: [n_users + n_items, d]."""
        return lightgcn_propagate(self.adjacency, embeddings, n_layers)

    def propagate_rows(
        self, embeddings: torch.Tensor, n_layers: int, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(propagate(...)[rows], embeddings[rows])``, cheaper on CPU (see ``lightgcn_propagate_rows``),
        and from the rows' neighbourhood alone when ``batch_local`` (see ``subgraph.py``)."""
        if self.batch_local and embeddings.device.type == "cpu":
            return local_lightgcn_rows(self.normalized, embeddings, n_layers, rows, self.fanout)
        return lightgcn_propagate_rows(self.adjacency, self.normalized, embeddings, n_layers, rows)

    def layer(self, embeddings: torch.Tensor) -> torch.Tensor:
        """One propagation step Â E without the layer mean (for models that combine layers their own way)."""
        return symmetric_sparse_product(self.adjacency, embeddings)

    @cached_property
    def user_item(self) -> SparseOperator:
        """R_hat, the user -> item block of Â [n_users, n_items] (MGCN's ``R``): users' item aggregates."""
        return SparseOperator(self.normalized[: self.n_users, self.n_users :], self.device)
