"""ContentKNN: items ranked by the similarity of their content to the user's training items."""

from __future__ import annotations

import numpy as np
import torch

from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.graphs.item_graphs import _unit_rows
from sigerec.models.closed_form import ClosedFormRecommender
from sigerec.models.registry import register_model


def content_item_vectors(features: dict[str, np.ndarray], modalities: list[str]) -> np.ndarray:
    """Each item's vector: its features in each modality scaled to unit length, concatenated
    in ``modalities`` order: [n_items, sum of the widths]. All-zero rows stay zero.

    The same rule serves trained and new items: an item needs only its features.
    """
    return np.concatenate([_unit_rows(features[modality]) for modality in modalities], axis=1).astype(np.float32)


@register_model
class ContentKNN(ClosedFormRecommender):
    """ContentKNN: cosine of each item's content to the profile of the user's training items.

    The content-based reference of a cold-start table: the user profile is the centroid of the
    items the user liked (Rocchio's profile, as in Lops, de Gemmis and Semeraro, "Content-based
    Recommender Systems: State of the Art and Trends", Recommender Systems Handbook 2011),
    compared by cosine, one modality m at a time:

        x^_i^m = x_i^m / |x_i^m|,    c_u^m = mean over the user's training items j of x^_j^m,
        s(u, i) = sum over m of  x^_i^m . c_u^m / |c_u^m|  =  sum over m of cos(x_i^m, c_u^m).

    Vectors: q_i = [x^_i^m for each modality] (:func:`content_item_vectors`) and
    p_u = [c_u^m / |c_u^m| for each modality], modalities in sorted name order, so each modality
    adds one cosine in [-1, 1] and the exported dot product is the score. An item with all-zero
    features in a modality, or a user without training items, has a zero part there (that
    modality adds 0).

    Every item is scored from its features alone, so cold items (no training interaction) are
    ranked like warm ones: ``can_score_cold_items`` is True. Needs at least one modality.
    Computed, not trained (see :class:`ClosedFormRecommender`): the user profiles are the
    fitted state saved in checkpoints ([n_users, sum of the widths]); the item vectors come
    back with the dataset's features. No hyperparameters (``embedding_size`` is ignored).
    """

    name = "contentknn"
    config_class = ModelConfig
    needs_features = True
    can_score_cold_items = True

    def __init__(self, dataset: Dataset, config: ModelConfig, device="cpu"):
        super().__init__(dataset, config, device)
        item_vectors = content_item_vectors(dataset.features, self.modalities)
        widths = [dataset.features[modality].shape[1] for modality in self.modalities]
        # Each modality's centroid points where the sum of the user's unit vectors does, so the
        # sum is normalised directly: [n_users, sum of the widths].
        profile_sums = np.asarray(dataset.train @ item_vectors.astype(np.float64))
        parts = np.split(profile_sums, np.cumsum(widths)[:-1], axis=1)
        self.register_fitted("user_profiles", np.concatenate([_unit_rows(part) for part in parts], axis=1))
        # Not persistent, as VBPR's features: they come back with the dataset.
        self.register_buffer("item_vectors", torch.from_numpy(item_vectors), persistent=False)

    def embeddings(self):
        return self.user_profiles, self.item_vectors
