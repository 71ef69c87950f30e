"""BPR-MF: matrix factorisation trained with the BPR loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from sigerec.config import ModelConfig, NonNegativeFloat
from sigerec.data.dataset import Dataset
from sigerec.models.base import Recommender, id_embedding
from sigerec.models.losses import bpr_loss, embedding_norm_loss
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices


@dataclass
class BPRConfig(ModelConfig):
    """``reg_weight``: weight of the embedding-norm penalty (MMRec grid 2.0 .. 1e-5)."""

    reg_weight: NonNegativeFloat = 1e-4


@register_model
class BPR(Recommender):
    """BPR-MF: ID embeddings scored by dot product, trained with the BPR loss.

    Paper: Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.
    Score s(u, i) = e_u . e_i from ID embeddings (Xavier-normal initialised, as MMRec);
    loss = BPR(s(u, i+), s(u, i-)) + reg_weight * (||e_u|| + ||e_i+|| + ||e_i-||) / batch.
    Search space: MMRec's BPR grid (reg_weight, 7 values).
    Cold items: cannot score them (ID-only: an item without training interactions keeps its
    random initial embedding; ``can_score_cold_items`` is False).
    """

    name = "bpr"
    config_class = BPRConfig
    search_space: ClassVar[SearchSpace] = {
        "reg_weight": choices(
            2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, source="MMRec src/configs/model/BPR.yaml (hyper_parameters)"
        ),
    }

    def __init__(self, dataset: Dataset, config: BPRConfig, device="cpu"):
        super().__init__(dataset, config, device)
        self.user_embedding = id_embedding(self.n_users, config.embedding_size, nn.init.xavier_normal_)
        self.item_embedding = id_embedding(self.n_items, config.embedding_size, nn.init.xavier_normal_)

    def embeddings(self):
        return self.user_embedding, self.item_embedding

    def loss(self, users, positives, negatives):
        user = self.user_embedding[users]
        positive = self.item_embedding[positives]
        negative = self.item_embedding[negatives]
        ranking = bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        return ranking + self.config.reg_weight * embedding_norm_loss(user, positive, negative)
