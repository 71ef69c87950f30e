"""Full-graph or batch-local training steps, and the optimiser each needs.

"full" (MMRec's way) propagates over every node in every step and trains with torch's Adam:
exact, and the fastest on the benchmark datasets, whose graphs fit in cache. Its cost per step
grows with the catalogue, which is hopeless at a million items. "batch" computes a step from
the batch's neighbourhood only and trains with :class:`LazyAdam` on sparse gradients: the same
forward values, but Adam's moments of untouched rows no longer decay, so the numbers differ.
"auto" keeps "full" below ``BATCH_STEPS_FROM_NODES`` users + items (every benchmark dataset, so
their numbers do not change) and switches above, where "full" stops being affordable
(docs/scaling.md measures both).
"""

from __future__ import annotations

import torch

from sigerec.config import TrainingConfig
from sigerec.data.dataset import Dataset
from sigerec.models.base import Recommender
from sigerec.training.lazy_adam import LazyAdam

# Users + items from which "auto" trains batch-local (Clothing, the largest benchmark, has 62k).
BATCH_STEPS_FROM_NODES = 300_000


def resolve_step_scope(training: TrainingConfig, model: Recommender, dataset: Dataset) -> str:
    """ "full" or "batch" for this run (see the module docstring)."""
    if training.step_scope != "auto":
        return training.step_scope
    large = dataset.n_users + dataset.n_items >= BATCH_STEPS_FROM_NODES
    return "batch" if large and model.supports_batch_steps and training.device == "cpu" else "full"


def make_optimizer(model: Recommender, training: TrainingConfig, scope: str) -> torch.optim.Optimizer:
    """Adam for full steps; lazy Adam (sparse tables updated where touched) for batch-local ones."""
    if scope == "batch":
        model.use_batch_steps()
        return LazyAdam(model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
    return torch.optim.Adam(
        model.parameters(),
        lr=training.learning_rate,
        weight_decay=training.weight_decay,
        # The fused kernel is the fastest on CPU and GPU and computes the same update.
        fused=True,
    )
