"""The model contract suite (``model_checks.ModelContract``), run on every registered model.

A new model gets every check by registering, at its default settings: nothing here names it.
Its own test file keeps only its equations and the claims specific to it.
"""

from __future__ import annotations

import pytest

from model_checks import ModelContract
from sigerec.models import model_names


class TestEveryRegisteredModel(ModelContract):
    @pytest.fixture(params=model_names())
    def model_name(self, request) -> str:
        return request.param
