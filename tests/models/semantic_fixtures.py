"""A small hand-made dataset and MGCN / SIGE models on it, shared by their tests."""

import numpy as np
import torch

from sigerec.data.dataset import Dataset
from sigerec.models.mgcn import MGCN, MGCNConfig
from sigerec.models.sige import SIGE, SIGEConfig

N_USERS, N_ITEMS = 12, 10


def hand_features(seed=0):
    # Test fixtures, not content: seeded random vectors standing in for two modalities.
    rng = np.random.default_rng(seed)
    return {"image": rng.random((N_ITEMS, 6)).astype(np.float32), "text": rng.random((N_ITEMS, 4)).astype(np.float32)}


def hand_dataset(features=None):
    rng = np.random.default_rng(1)
    users = np.concatenate([np.arange(N_USERS), rng.integers(0, N_USERS, 40)])
    items = np.concatenate([np.arange(N_USERS) % N_ITEMS, rng.integers(0, N_ITEMS, 40)])
    matrix = Dataset.interaction_matrix(users, items, N_USERS, N_ITEMS)
    features = hand_features() if features is None else features
    return Dataset("hand", N_USERS, N_ITEMS, matrix, matrix.copy(), matrix.copy(), features=features)


def sige_model(features=None, **config):
    torch.manual_seed(0)
    config.setdefault("knn_k", 3)
    config.setdefault("cooccurrence_k", 3)
    return SIGE(hand_dataset(features), SIGEConfig(embedding_size=8, **config))


def mgcn_model(features=None, **config):
    torch.manual_seed(0)
    config.setdefault("knn_k", 3)
    return MGCN(hand_dataset(features), MGCNConfig(embedding_size=8, **config))


BATCH = (torch.tensor([0, 3, 3, 7, 11]), torch.tensor([0, 3, 5, 7, 1]), torch.tensor([2, 9, 4, 1, 8]))
# SIGE's extras off, and its contrastive training as MGCN's (exact cosine gradients, batch rows).
ALL_SIGE_PARTS_OFF = {
    "infusion_alpha": 0.0,
    "perturbation": "none",
    "modality_alignment": "none",
    "cosine_gradient": "exact",
    "contrastive_rows": "batch",
    "contrastive_warmup": 0,
}
