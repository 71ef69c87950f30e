"""Optuna pieces that make a search repeatable: a replayable TPE sampler and the suggestion of a space."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from sigerec.search_space import Dimension, SearchSpace

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class ReplayableTPESampler(optuna.samplers.TPESampler):
    """TPE whose draws for a trial depend only on the seed and the trials finished before it.

    Optuna's sampler keeps one random stream for the whole process, so a search that is killed
    and started again would draw other settings than an uninterrupted one. Reseeding before
    each trial from (seed, number of finished trials) makes both draw the same: the resumed
    search repeats the uninterrupted one trial by trial.
    """

    def __init__(self, seed: int, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
        trial_seed = (self._base_seed * 1_000_003 + finished) % 2**32
        self._rng.rng.seed(trial_seed)
        self._random_sampler._rng.rng.seed(trial_seed)
        super().before_trial(study, trial)


def trial_value(trial: optuna.trial.FrozenTrial) -> float:
    """A finished trial's value, or a pruned one's best intermediate value (NaN if it reported none)."""
    if trial.state == TrialState.COMPLETE:
        return trial.value
    values = trial.intermediate_values
    return max(values.values()) if values else float("nan")


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One value per dimension of ``space``, drawn through ``trial``."""
    return {name: _suggest_one(trial, name, dimension) for name, dimension in space.items()}


def _suggest_one(trial: optuna.Trial, name: str, dimension: Dimension) -> Any:
    if dimension.choices is not None:
        return trial.suggest_categorical(name, list(dimension.choices))
    if dimension.is_integer:
        step = int(dimension.step) if dimension.step else 1
        return trial.suggest_int(name, dimension.low, dimension.high, step=step, log=dimension.log)
    return trial.suggest_float(
        name, float(dimension.low), float(dimension.high), step=dimension.step, log=dimension.log
    )
