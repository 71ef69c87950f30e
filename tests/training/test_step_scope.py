"""Batch-local training steps (``step_scope``): every model that offers them keeps the contract,
and the choice of scope and optimiser follows the documented rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_checks import ModelContract
from sigerec.config import TrainingConfig
from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.models import get_model_class, model_names
from sigerec.training import runner, step_scope
from sigerec.training.lazy_adam import LazyAdam

BATCH_STEP_MODELS = [name for name in model_names() if get_model_class(name).supports_batch_steps]


def test_the_graph_models_offer_batch_steps():
    assert {"lightgcn", "mgcn", "sige"} <= set(BATCH_STEP_MODELS)


class TestBatchLocalStepsKeepTheContract(ModelContract):
    @pytest.fixture(params=BATCH_STEP_MODELS)
    def model_name(self, request) -> str:
        return request.param

    @pytest.fixture(params=[0, 2], ids=["exact", "fanout2"])
    def settings(self, request) -> dict:
        return {"step_scope": "batch", "neighbour_fanout": request.param}


def _small_dataset(n_users: int, n_items: int) -> Dataset:
    matrix = Dataset.interaction_matrix(np.arange(n_users), np.arange(n_users) % n_items, n_users, n_items)
    return Dataset("small", n_users, n_items, matrix, matrix, matrix)


def test_auto_uses_batch_steps_when_neighbour_sampling_is_asked_for():
    lightgcn, bpr = get_model_class("lightgcn"), get_model_class("bpr")
    small = _small_dataset(6, 4)
    assert step_scope.resolve_step_scope(TrainingConfig(), lightgcn, small) == "full"
    sampling = TrainingConfig(neighbour_fanout=10)
    assert step_scope.resolve_step_scope(sampling, lightgcn, small) == "batch"
    assert step_scope.resolve_step_scope(sampling, bpr, small) == "full"  # no batch steps: stays full
    assert step_scope.resolve_step_scope(TrainingConfig(step_scope="full"), lightgcn, small) == "full"


def test_batch_steps_train_with_lazy_adam_and_the_summary_says_so(tiny_dataset_dir, tmp_path):
    config = runner.resolve_config("lightgcn", str(tiny_dataset_dir), overrides={"epochs": 2, "step_scope": "batch"})
    trainer = runner.prepare(config)
    assert isinstance(trainer.optimizer, LazyAdam)
    _, summary = runner.train(config, tmp_path / "runs")
    assert summary["step_scope"] == "batch"
    full = runner.resolve_config("lightgcn", str(tiny_dataset_dir), overrides={"epochs": 1})
    assert isinstance(runner.prepare(full).optimizer, torch.optim.Adam)


def test_batch_steps_are_refused_for_models_without_them_and_on_a_gpu(tiny_dataset_dir):
    config = runner.resolve_config("bpr", str(tiny_dataset_dir), overrides={"step_scope": "batch"})
    with pytest.raises(SigerecError, match="cannot train with step_scope='batch'"):
        runner.prepare(config)
    with pytest.raises(SigerecError, match="CPU only"):
        runner.check_training_settings(TrainingConfig(step_scope="batch", device="cuda"))
