"""LightGCN: linear propagation of ID embeddings over the user-item graph."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sigerec.config import ModelConfig, NonNegativeFloat, NonNegativeInt
from sigerec.data.dataset import Dataset
from sigerec.graphs.adjacency import normalized_interaction_adjacency, to_torch_sparse
from sigerec.graphs.propagation import lightgcn_propagate, lightgcn_propagate_rows
from sigerec.models.base import Recommender
from sigerec.models.losses import bpr_loss, embedding_norm_loss
from sigerec.models.registry import register_model


@dataclass
class LightGCNConfig(ModelConfig):
    """``n_layers``: propagation depth L (MMRec grid 1-4); ``reg_weight``: embedding-norm
    penalty on the layer-0 embeddings (MMRec grid 1e-2 .. 1e-6)."""

    n_layers: NonNegativeInt = 2
    reg_weight: NonNegativeFloat = 1e-4


@register_model
class LightGCN(Recommender):
    """LightGCN: ID embeddings averaged over linear propagation layers of the user-item graph.

    Paper: He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
    Recommendation", SIGIR 2020.
    E^(l+1) = D^-1/2 A D^-1/2 E^(l) (eq. 7), final e = mean_{l=0..L} E^(l) (eq. 8, the
    1/(L+1) weights), score = e_u . e_i (eq. 5). Loss: BPR on the final vectors plus
    reg_weight times the norm of the layer-0 embeddings of the batch (as MMRec).
    """

    name = "lightgcn"
    config_class = LightGCNConfig

    def __init__(self, dataset: Dataset, config: LightGCNConfig, device="cpu"):
        super().__init__(dataset, config, device)
        self.embedding = nn.Parameter(torch.empty(self.n_users + self.n_items, config.embedding_size))
        # Users and items are initialised as two tables (their own fan-in/out), as MMRec.
        with torch.no_grad():
            nn.init.xavier_uniform_(self.embedding[: self.n_users])
            nn.init.xavier_uniform_(self.embedding[self.n_users :])
        adjacency = normalized_interaction_adjacency(dataset.train)
        self.adjacency = to_torch_sparse(adjacency, device)
        self.adjacency_scipy = adjacency  # row slices of it give a batch's last layer on CPU

    def _propagate(self) -> torch.Tensor:
        return lightgcn_propagate(self.adjacency, self.embedding, self.config.n_layers)

    def embeddings(self):
        final = self._propagate()
        return final[: self.n_users], final[self.n_users :]

    def loss(self, users, positives, negatives):
        # One gather of all batch rows: each gather costs a full-size gradient buffer.
        rows = torch.cat([users, self.n_users + positives, self.n_users + negatives])
        final, ego = lightgcn_propagate_rows(
            self.adjacency, self.adjacency_scipy, self.embedding, self.config.n_layers, rows
        )
        user, positive, negative = final.chunk(3)
        ranking = bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        penalty = embedding_norm_loss(*ego.chunk(3))
        return ranking + self.config.reg_weight * penalty
