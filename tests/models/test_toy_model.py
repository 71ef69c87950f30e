"""A model defined here, in a test, registers and passes the whole contract suite.

This is what adding a model takes: a config dataclass, a ``Recommender`` subclass with ``loss``
and ``embeddings``, and ``@register_model``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from model_checks import ModelContract
from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.models import Recommender, get_model_class, model_names, register_model
from sigerec.models.base import id_embedding
from sigerec.models.losses import bpr_loss
from sigerec.models.registry import unregister_model


@dataclass
class ToyConfig(ModelConfig):
    embedding_size: int = 4


class ToyMatrixFactorisation(Recommender):
    """Plain matrix factorisation with BPR: the smallest model the contract accepts."""

    name = "toy"
    config_class = ToyConfig

    def __init__(self, dataset: Dataset, config: ToyConfig, device="cpu"):
        super().__init__(dataset, config, device)
        self.user_embedding = id_embedding(self.n_users, config.embedding_size)
        self.item_embedding = id_embedding(self.n_items, config.embedding_size)

    def embeddings(self):
        return self.user_embedding, self.item_embedding

    def loss(self, users, positives, negatives):
        user = self.user_embedding[users]
        return bpr_loss((user * self.item_embedding[positives]).sum(1), (user * self.item_embedding[negatives]).sum(1))


@pytest.fixture(scope="module")
def registered_toy():
    register_model(ToyMatrixFactorisation)
    yield "toy"
    unregister_model("toy")


def test_registering_makes_the_model_known_by_name(registered_toy):
    assert registered_toy in model_names() and get_model_class("TOY") is ToyMatrixFactorisation


class TestToyModel(ModelContract):
    @pytest.fixture
    def model_name(self, registered_toy) -> str:
        return registered_toy
