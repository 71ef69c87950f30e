"""Full-graph or batch-local training steps, and the optimiser each needs.

"full" (MMRec's way) propagates over every node in every step and trains with torch's Adam:
exact, and the fastest choice on the benchmark datasets. Its cost per step grows with the
catalogue. "batch" computes a step from the batch's neighbourhood only and trains with
:class:`LazyAdam` on sparse gradients. Exact neighbourhoods do not help on real catalogues:
positives are drawn from interactions, so hub items (with most users as neighbours) are in
almost every batch and an L=2 neighbourhood is most of the graph (at 100k synthetic items it
was 1.8x slower than a full step). With neighbour sampling (``neighbour_fanout``, at most that
many sampled neighbours per node and layer) a step's work is bounded by the batch size, which
is what makes a million items trainable (docs/scaling.md). "auto", the default, uses batch
steps exactly when sampling is asked for, since only they sample; every benchmark number,
trained with full steps, is unchanged.
"""

from __future__ import annotations

import torch

from sigerec.config import TrainingConfig
from sigerec.data.dataset import Dataset
from sigerec.models.base import Recommender
from sigerec.training.lazy_adam import LazyAdam


def resolve_step_scope(training: TrainingConfig, model: Recommender, dataset: Dataset) -> str:
    """ "full" or "batch" for this run (see the module docstring)."""
    if training.step_scope != "auto":
        return training.step_scope
    sampling = training.neighbour_fanout > 0
    return "batch" if sampling and model.supports_batch_steps and training.device == "cpu" else "full"


def make_optimizer(model: Recommender, training: TrainingConfig, scope: str) -> torch.optim.Optimizer:
    """Adam for full steps; lazy Adam (sparse tables updated where touched) for batch-local ones."""
    if scope == "batch":
        model.use_batch_steps(training.neighbour_fanout)
        return LazyAdam(model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
    return torch.optim.Adam(
        model.parameters(),
        lr=training.learning_rate,
        weight_decay=training.weight_decay,
        # The fused kernel is the fastest on CPU and GPU and computes the same update.
        fused=True,
    )
