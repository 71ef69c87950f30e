"""Pop: every user gets the items with the most training interactions."""

from __future__ import annotations

import numpy as np
import torch

from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.models.closed_form import ClosedFormRecommender
from sigerec.models.registry import register_model


@register_model
class Pop(ClosedFormRecommender):
    """Pop: items ranked by their number of training interactions, the same list for every user.

    The non-personalised reference of every ranking table (the "most popular" baseline of e.g.
    Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009).
    Score s(u, i) = n_i + t_i: n_i is the number of training users of item i and t_i in
    [0, 0.5) orders equal counts at random (a permutation drawn from the run's seed); the
    evaluator masks each user's training items as for every model. Vectors: p_u = [1] and
    q_i = [n_i + t_i], so the exported dot product is the score.

    Why t_i: without it equal counts fall to the library's tie rule (lower id first), and ids
    numbered by first appearance in the interaction file follow popularity. Cold items, which
    all count 0, would then be ranked by the popularity they are held out to hide: on ML-100k's
    cold split (20% of items, seed 0) lower-id-first reaches cold Recall@20 0.30, chance 0.07.

    Cold items (no training interaction) have n_i = 0: below every warm item and in random
    order among themselves, i.e. at chance level. Pop cannot represent an item from content, so
    ``can_score_cold_items`` is False. Computed, not trained (see :class:`ClosedFormRecommender`);
    no hyperparameters (``embedding_size`` is ignored) and nothing to tune.
    """

    name = "pop"
    config_class = ModelConfig
    can_score_cold_items = False

    def __init__(self, dataset: Dataset, config: ModelConfig, device="cpu"):
        super().__init__(dataset, config, device)
        interactions_per_item = np.asarray(dataset.train.sum(axis=0)).ravel()  # n_i, [n_items]
        # build_model seeds torch with the run's seed first, so the tie order is the run's.
        tie_order = torch.randperm(self.n_items).numpy() / self.n_items / 2  # t_i, [n_items] in [0, 0.5)
        self.register_fitted("item_popularity", interactions_per_item + tie_order)

    def embeddings(self):
        users = torch.ones(self.n_users, 1, device=self.item_popularity.device)  # [n_users, 1]
        return users, self.item_popularity.unsqueeze(1)  # [n_items, 1]
