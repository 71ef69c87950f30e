"""Checks every model must pass, written once: the model contract suite and its helpers.

``ModelContract`` holds the checks; a test class that subclasses it and provides a
``model_name`` fixture runs all of them on that model (``tests/models/test_contract.py`` does so
for every registered model, ``tests/models/test_toy_model.py`` for a model defined in a test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.models import get_model_class
from sigerec.serving.model_folder import ModelFolder, export_run
from sigerec.serving.service import RecommendationService
from sigerec.training import runner
from sigerec.training.run_directory import LAST_CHECKPOINT
from sigerec.training.trainer import build_model


class InterruptAfter:
    """A progress reporter that kills the run (KeyboardInterrupt) after a given epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start_epoch(self, epoch, n_batches):
        pass

    def batch_done(self, loss):
        pass

    def epoch_done(self, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt

    def message(self, text):
        pass


# Test fixtures, not content: 4 items with simple, distinct feature values.
HAND_IMAGE_FEATURES = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32)
HAND_TEXT_FEATURES = np.array([[1, 2], [2, 1], [1, -1], [-1, 1]], dtype=np.float32)


def hand_dataset(features: dict) -> Dataset:
    """3 users x 4 items, 10 training edges: user 0 - items 0,1,2,3; user 1 - 0,1,2; user 2 - 0,1,3."""
    users = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    items = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 3])
    matrix = Dataset.interaction_matrix(users, items, 3, 4)
    return Dataset("hand", 3, 4, matrix, matrix.copy(), matrix.copy(), features=features)


def write_tiny_features(folder: Path) -> None:
    """Two modalities for the 6 items of the ``tiny_dataset_dir`` fixture.

    Test fixtures, not content: fixed, distinct values.
    """
    np.save(folder / "image_feat.npy", np.arange(24, dtype=np.float32).reshape(6, 4) % 7 / 7)
    np.save(folder / "text_feat.npy", np.arange(30, dtype=np.float32).reshape(6, 5) % 4 / 4)


def assert_resume_is_exact(model: str, data: Path, tmp_path: Path, overrides: dict) -> None:
    """A run killed after epoch 1 and resumed ends exactly like an uninterrupted one.

    Metrics of a tiny dataset are coarse, so the per-epoch losses and the final weights are
    compared too: they show that the same random draws (negatives, dropout, noise) were made.
    """
    config = runner.resolve_config(model, str(data), overrides=overrides)
    full_run, uninterrupted = runner.train(config, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        runner.train(config, tmp_path / "cut", progress=InterruptAfter(1))
    (cut_run,) = list((tmp_path / "cut").iterdir())
    resumed_run, resumed = runner.resume(cut_run)
    for key in ("test", "valid", "best_epoch"):
        assert resumed[key] == uninterrupted[key], key
    assert [r["loss"] for r in resumed_run.read_metrics()] == [r["loss"] for r in full_run.read_metrics()]
    full_weights = full_run.load_checkpoint(LAST_CHECKPOINT)["model"]
    resumed_weights = resumed_run.load_checkpoint(LAST_CHECKPOINT)["model"]
    assert all(torch.equal(full_weights[name], resumed_weights[name]) for name in full_weights)


def _weights(run) -> dict[str, torch.Tensor]:
    return run.load_checkpoint(LAST_CHECKPOINT)["model"]


class ModelContract:
    """What the trainer, the evaluator and serving rely on, checked for one model.

    Subclasses provide the fixture ``model_name``; every check runs the model at its default
    settings (``settings`` may add some) on the 4-user, 6-item data of ``tiny_dataset_dir`` with
    two modalities, 3 epochs of batches of 8.
    """

    @pytest.fixture
    def settings(self) -> dict:
        return {}

    @pytest.fixture
    def data(self, tiny_dataset_dir: Path) -> Path:
        write_tiny_features(tiny_dataset_dir)
        return tiny_dataset_dir

    def _config(self, model_name, data, settings, **extra):
        overrides = {"epochs": 3, "train_batch_size": 8, **settings, **extra}
        return runner.resolve_config(model_name, str(data), overrides=overrides)

    def test_a_batch_loss_is_a_finite_scalar_with_finite_gradients_for_every_trainable_parameter(
        self, model_name, data, settings
    ):
        config = self._config(model_name, data, settings)
        model = build_model(config, runner.load_run_dataset(config))
        model.train()
        model.pre_epoch(0)
        loss = model.loss(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 0, 1]))
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:  # frozen ones hold a closed-form model's fitted state
                assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name

    def test_training_runs_end_to_end_and_writes_a_complete_run_folder(self, model_name, data, settings, tmp_path):
        config = self._config(model_name, data, settings)
        run, summary = runner.train(config, tmp_path / "runs")
        records = run.read_metrics()
        assert summary["model"] == model_name and summary["epochs"] == len(records) == 3
        assert all(np.isfinite(record["loss"]) for record in records)
        assert all(0.0 <= value <= 1.0 for value in summary["test"].values())
        assert run.file("config.yaml").exists() and _weights(run)
        per_user = run.read_per_user_test()  # each test user's metrics, for paired tests
        assert len(per_user) == (runner.load_run_dataset(config).test.getnnz(axis=1) > 0).sum()
        assert per_user["recall@20"].mean() == pytest.approx(summary["test"]["recall@20"], abs=1e-9)

    def test_a_few_epochs_lower_the_training_loss(self, model_name, data, settings, tmp_path):
        config = self._config(model_name, data, settings, epochs=8, learning_rate=1e-2, stopping_step=100)
        run, _ = runner.train(config, tmp_path / "runs")
        losses = [record["loss"] for record in run.read_metrics()]
        if get_model_class(model_name).trainable:
            assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
        else:  # computed from the training data: its epochs have no loss to lower
            assert losses == [0.0] * 8

    def test_an_interrupted_run_resumes_exactly(self, model_name, data, settings, tmp_path):
        assert_resume_is_exact(model_name, data, tmp_path, {"epochs": 3, "train_batch_size": 8, **settings})

    def test_a_seed_fixes_every_weight_and_another_seed_changes_them(self, model_name, data, settings, tmp_path):
        first, _ = runner.train(self._config(model_name, data, settings, epochs=1), tmp_path / "a")
        again, _ = runner.train(self._config(model_name, data, settings, epochs=1), tmp_path / "b")
        other, _ = runner.train(self._config(model_name, data, settings, epochs=1, seed=1), tmp_path / "c")
        first_weights, again_weights, other_weights = _weights(first), _weights(again), _weights(other)
        assert all(torch.equal(first_weights[name], again_weights[name]) for name in first_weights)
        if get_model_class(model_name).trainable:  # a closed-form model may draw nothing (contentknn)
            assert any(not torch.equal(first_weights[name], other_weights[name]) for name in first_weights)

    def test_embeddings_have_a_row_per_user_and_item_and_their_products_are_the_scores(
        self, model_name, data, settings
    ):
        config = self._config(model_name, data, settings)
        dataset = runner.load_run_dataset(config)
        model = build_model(config, dataset).eval()
        with torch.no_grad():
            users, items = model.embeddings()
            scores = model.scorer()(torch.tensor([0, 2, 3]))
        assert users.shape[0] == dataset.n_users and items.shape[0] == dataset.n_items
        assert users.shape[1] == items.shape[1] and torch.isfinite(users).all() and torch.isfinite(items).all()
        assert torch.allclose(torch.as_tensor(scores), users[[0, 2, 3]] @ items.T, atol=1e-5)

    def test_without_content_features_it_trains_or_is_refused_before_writing_anything(
        self, model_name, tiny_dataset_dir, settings, tmp_path
    ):
        config = self._config(model_name, tiny_dataset_dir, settings, epochs=1)
        if get_model_class(model_name).needs_features:
            with pytest.raises(SigerecError, match=r"_feat\.npy.*sigerec encode"):
                runner.train(config, tmp_path / "runs")
            assert not (tmp_path / "runs").exists()
        else:
            _, summary = runner.train(config, tmp_path / "runs")
            assert summary["epochs"] == 1

    def test_export_reloads_the_trained_vectors_and_serves_the_best_unseen_items(
        self, model_name, data, settings, tmp_path
    ):
        run, _ = runner.train(self._config(model_name, data, settings, epochs=1), tmp_path / "runs")
        folder = ModelFolder.load(export_run(run.path, tmp_path / "model"))
        model, dataset, _ = runner.load_trained_model(run.path)
        with torch.no_grad():
            users, items = (vectors.detach() for vectors in model.embeddings())
        np.testing.assert_array_equal(folder.user_vectors, users.numpy())
        np.testing.assert_array_equal(folder.item_vectors, items.numpy())
        scores = users[0] @ items.T
        seen = set(dataset.train[0].indices.tolist())
        best_unseen = max((item for item in range(dataset.n_items) if item not in seen), key=lambda i: scores[i])
        (top,) = RecommendationService(folder, index="exact").for_user(str(folder.user_ids[0]), k=1)
        assert top.item_id == str(folder.item_ids[best_unseen])
