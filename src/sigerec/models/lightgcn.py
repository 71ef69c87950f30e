"""LightGCN: linear propagation of ID embeddings over the user-item graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from sigerec.config import ModelConfig, NonNegativeFloat, NonNegativeInt
from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import interaction_graph
from sigerec.models.base import Recommender, joint_id_embedding
from sigerec.models.losses import bpr_loss, embedding_norm_loss
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices


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
    Search space: MMRec's LightGCN grid (n_layers x reg_weight, 20 combinations).
    Cold items: cannot score them (ID-only: an item without training interactions has no edge
    and keeps its random initial embedding; ``can_score_cold_items`` is False).
    """

    name = "lightgcn"
    config_class = LightGCNConfig
    supports_batch_steps = True  # its loss propagates through ``graph.propagate_rows`` only
    search_space: ClassVar[SearchSpace] = {
        "n_layers": choices(1, 2, 3, 4, source="MMRec src/configs/model/LightGCN.yaml (hyper_parameters)"),
        "reg_weight": choices(
            1e-2, 1e-3, 1e-4, 1e-5, 1e-6, source="MMRec src/configs/model/LightGCN.yaml (hyper_parameters)"
        ),
    }

    def __init__(self, dataset: Dataset, config: LightGCNConfig, device="cpu"):
        super().__init__(dataset, config, device)
        self.embedding = joint_id_embedding(self.n_users, self.n_items, config.embedding_size)
        self.graph = interaction_graph(dataset, device)

    def embeddings(self):
        final = self.graph.propagate(self.embedding, self.config.n_layers)
        return final[: self.n_users], final[self.n_users :]

    def loss(self, users, positives, negatives):
        # One gather of all batch rows: each gather costs a full-size gradient buffer.
        rows = torch.cat([users, self.n_users + positives, self.n_users + negatives])
        final, ego = self.graph.propagate_rows(self.embedding, self.config.n_layers, rows)
        user, positive, negative = final.chunk(3)
        ranking = bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        penalty = embedding_norm_loss(*ego.chunk(3))
        return ranking + self.config.reg_weight * penalty
