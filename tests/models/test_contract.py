"""The model contract suite (``model_checks.ModelContract``), run on every registered model.

A new model gets every check by registering; its own test file keeps only its equations.
"""

from __future__ import annotations

import pytest

from model_checks import ModelContract
from sigerec.models import model_names

# Small sizes that keep each model fast on the tiny data, and settings that make every part of
# it run there (FREEDOM's pruning, LGMRec's contrast, a k that fits 6 items).
SMALL_SETTINGS = {
    "alpharec": {"mlp_hidden_size": 16, "n_negatives": 16},
    "freedom": {"dropout": 0.5},
    "lgmrec": {"cl_weight": 0.1},
    "mgcn": {"knn_k": 3},
    "sige": {"knn_k": 3, "cooccurrence_k": 3},
}


class TestEveryRegisteredModel(ModelContract):
    @pytest.fixture(params=model_names())
    def model_name(self, request) -> str:
        return request.param

    @pytest.fixture
    def settings(self, model_name) -> dict:
        return SMALL_SETTINGS.get(model_name, {})
