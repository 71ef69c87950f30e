"""Checks every trained model must pass, written once: end-to-end training and exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sigerec.data.dataset import Dataset
from sigerec.training import runner
from sigerec.training.run_directory import LAST_CHECKPOINT


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
