"""VBPR: BPR-MF whose item vectors carry a learned projection of the item's content features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from sigerec.config import DEFAULT_COLD_ITEM_RULE, ColdItemSettings, NonNegativeFloat
from sigerec.data.dataset import Dataset
from sigerec.models.base import Recommender, id_embedding
from sigerec.models.losses import bpr_loss, embedding_norm_loss
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices


@dataclass
class VBPRConfig(ColdItemSettings):
    """``embedding_size`` (d, default 64): size of the item ID embedding and of the feature
    projection, so user and item vectors have 2d entries; ``reg_weight`` (default 1e-4):
    weight of the embedding-norm penalty on the batch's user and item vectors (MMRec grid
    2.0 .. 1e-5); ``cold_item_rule`` ("warm_neighbours", "content_factors" or "none") and
    ``cold_item_k`` (10): how an item without training interactions is scored, see :class:`VBPR`."""

    reg_weight: NonNegativeFloat = 1e-4
    cold_item_rule: Literal["warm_neighbours", "content_factors", "none"] = DEFAULT_COLD_ITEM_RULE


@register_model
class VBPR(Recommender):
    """VBPR: item vectors = [ID embedding ; linear projection of the item's content features].

    Paper: He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback",
    AAAI 2016. The paper's predictor (Section 3) is

        s(u, i) = alpha + beta_u + beta_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i

    with f_i the item's (visual) features and E a learned [d, F] projection. As MMRec, all
    bias terms (alpha, beta_u, beta_i and the visual bias beta' . f_i) are dropped, theta_u and gamma_u are one user vector of size 2d, and the bias
    of the projection is kept (nn.Linear), so

        s(u, i) = p_u . [q_i ; E f_i + b],    p_u in R^2d, q_i in R^d.

    f_i is the concatenation of every modality of ``Dataset.features`` in sorted modality
    name order (image before text; MMRec puts text first, which only permutes E's columns).
    The features are a constant, never trained.

    Loss: BPR(s(u, i+), s(u, i-)) + reg_weight * (||p_u|| + ||v_i+|| + ||v_i-||) / batch,
    with v_i the full 2d item vector (MMRec's EmbLoss on the batch vectors).
    Initialisation as MMRec: ID tables Xavier-uniform (they are plain parameters, which its
    ``xavier_normal_initialization`` does not touch), projection weight Xavier-normal, bias 0.

    Hyperparameters: ``embedding_size`` d = 64, ``reg_weight`` = 1e-4 (see :class:`VBPRConfig`).
    Cold items (sigerec's addition; scoring only, training, users and warm items unchanged):
    "warm_neighbours" (default): a cold item's vector is the mean over modalities of the mean
    [q_j ; E f_j + b] of its ``cold_item_k`` most cosine-similar warm items by raw features
    (``graphs/cold_neighbours.py``, the rule serving uses); "content_factors": [0 ; E f_i + b],
    VBPR's own content branch with q_i zeroed, since it never trained (the paper's cold-start
    argument: only theta_u . E f_i is informative), so s(u, i) = theta_u . (E f_i + b);
    "none": [q_i ; E f_i + b] with its untrained q_i.
    Search space: MMRec's VBPR grid (reg_weight, 7 values).
    """

    name = "vbpr"
    config_class = VBPRConfig
    search_space: ClassVar[SearchSpace] = {
        "reg_weight": choices(
            2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, source="MMRec src/configs/model/VBPR.yaml (hyper_parameters)"
        ),
    }
    needs_features = True
    can_score_cold_items = True

    def __init__(self, dataset: Dataset, config: VBPRConfig, device="cpu"):
        super().__init__(dataset, config, device)
        features = np.concatenate([dataset.features[m] for m in self.modalities], axis=1)
        # Not persistent: the features are reloaded with the dataset, so checkpoints stay
        # small (4096-d image features of every item would dwarf the trained weights), and
        # the buffer still follows the model in ``.to(device)``.
        self.register_buffer(
            "item_features", torch.as_tensor(features, dtype=torch.float32), persistent=False
        )  # [n_items, F]
        size = config.embedding_size
        # The projection's default init draws come before the tables' and it is registered after
        # them, as always: a seed gives the same weights, and checkpoints keep their order.
        projection = nn.Linear(features.shape[1], size)
        self.user_embedding = id_embedding(self.n_users, 2 * size)  # [n_users, 2d]
        self.item_embedding = id_embedding(self.n_items, size)  # [n_items, d]
        self.feature_projection = projection
        nn.init.xavier_normal_(self.feature_projection.weight)
        nn.init.zeros_(self.feature_projection.bias)
        if config.cold_item_rule == "warm_neighbours":
            self.prepare_cold_item_rule(dataset, config.cold_item_k)
        cold = np.flatnonzero(np.diff(dataset.train.tocsc().indptr) == 0)  # items without training interactions
        self.register_buffer("cold_items", torch.as_tensor(cold, dtype=torch.long), persistent=False)

    def _item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """[q_i ; E f_i + b] for ``items`` (all items when None): [len(items), 2d]."""
        if items is None:
            return torch.cat([self.item_embedding, self.feature_projection(self.item_features)], dim=1)
        return torch.cat([self.item_embedding[items], self.feature_projection(self.item_features[items])], dim=1)

    def embeddings(self):
        items = self._item_vectors()  # [n_items, 2d]
        if self.config.cold_item_rule == "content_factors":
            items = items.clone()
            items[self.cold_items, : self.config.embedding_size] = 0.0  # q_i of a cold item: never trained
        return self.user_embedding, self.apply_cold_item_rule(items)

    def loss(self, users, positives, negatives):
        user = self.user_embedding[users]
        positive = self._item_vectors(positives)
        negative = self._item_vectors(negatives)
        ranking = bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        return ranking + self.config.reg_weight * embedding_norm_loss(user, positive, negative)
