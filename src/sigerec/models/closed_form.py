"""Models computed from the training data by a formula, with nothing to train: the mechanics
the reference models of a cold-start table (``pop``, ``contentknn``) share, written once."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sigerec.models.base import Recommender


class ClosedFormRecommender(Recommender):
    """Base of models whose vectors follow from the training data, not from gradient steps.

    The trainer runs them like any model, so early stopping, checkpoints, the summary and the
    export work unchanged: every batch's loss is a constant zero, so the backward pass and the
    optimiser step change nothing and every evaluation gives the same numbers. One epoch
    (``training_defaults``) is therefore all a run needs; more only repeat its evaluation.

    A subclass computes its fitted state in ``__init__`` and keeps it with
    :meth:`register_fitted`, and implements ``embeddings()``.
    """

    trainable = False
    training_defaults: ClassVar[dict[str, Any]] = {"epochs": 1}

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        # A zero with nothing behind it: backward() accepts it and no parameter gets a gradient.
        return torch.zeros((), device=self.device, requires_grad=True)

    def register_fitted(self, name: str, values: np.ndarray) -> None:
        """Keep ``values`` as the frozen parameter ``name``.

        A parameter, not a buffer: it is saved in checkpoints like trained weights, and the
        trainer's optimiser has something to hold (torch refuses one without parameters);
        ``requires_grad=False`` keeps every optimiser step from touching it.
        """
        tensor = torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)
        self.register_parameter(name, nn.Parameter(tensor, requires_grad=False))
