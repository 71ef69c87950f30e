"""`sigerec tune --backend ray`: the search of the local backend, its trials run as Ray Tune trials.

The driver (the process running ``sigerec tune``) holds the Optuna study, in ``<out>/study.db``
by default: TPE draws each trial's settings there and every result is recorded there, so one
process alone writes the SQLite file. Ray runs each trial wherever CPUs (and GPUs) are free;
the trial trains an ordinary run folder under ``<storage path>/runs`` and reports its valid
metric after every evaluation. ASHA stops hopeless trials: instead of killing the trial's
process, which would leave its run folder half-written, the trial is asked to stop after that
evaluation, so its run finishes and is marked pruned, as with the local backend. Running the
same command again continues the study like the local backend does: finished trials are kept,
and trials a killed search left running are run again from their run folder's checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from sigerec.data.builtin import resolve_data_path
from sigerec.errors import SigerecError
from sigerec.training import runner
from sigerec.tuning.sampling import suggest
from sigerec.tuning.study import (
    ASHA_REDUCTION,
    RESUME_FROM,
    RUN_DIR,
    RUNS_FOLDER,
    TuneSettings,
    continue_study,
    progress_callback,
    resumable_run,
    trainer_for,
    trial_attributes,
)

# Keys of a trial's results (its config holds its settings and RUN_DIR).
EPOCH = "epoch"
SUMMARY = "summary"  # the run's summary (JSON text), in the trial's last result only
RAY_FOLDER = "ray"  # Ray Tune's own experiment folders, beside the run folders


@ray.remote(num_cpus=0)
class StopRequests:
    """Trials ASHA chose to stop; each trial asks after each evaluation whether it is one."""

    def __init__(self) -> None:
        self.trial_ids: set[str] = set()

    def request(self, trial_id: str) -> None:
        self.trial_ids.add(trial_id)

    def requested(self, trial_id: str) -> bool:
        return trial_id in self.trial_ids


class StopByRequestASHA(ASHAScheduler):
    """ASHA whose decision to stop a trial is passed to the trial, which then finishes as pruned."""

    def __init__(self, stop_requests, **kwargs: Any):
        super().__init__(**kwargs)
        self.stop_requests = stop_requests

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if SUMMARY in result:  # the finished run's result, not an evaluation
            return TrialScheduler.CONTINUE
        if super().on_trial_result(tune_controller, trial, result) == TrialScheduler.STOP:
            # Waited for: the trial asks once this result is processed, and must find the request.
            ray.get(self.stop_requests.request.remote(trial.trial_id))
        return TrialScheduler.CONTINUE


class StudySearcher(Searcher):
    """Optuna's ask and tell on the study: TPE draws each trial's settings, results land in the study."""

    def __init__(
        self,
        study: optuna.Study,
        settings: TuneSettings,
        runs_root: Path,
        on_trial_done: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
    ):
        super().__init__(metric=settings.metric, mode="max")
        self.study = study
        self.space = settings.space
        self.runs_root = runs_root
        self.deadline = time.monotonic() + settings.timeout if settings.timeout is not None else None
        self.on_trial_done = on_trial_done
        self.trials: dict[str, optuna.Trial] = {}  # Ray trial id -> Optuna trial

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        if self.deadline is not None and time.monotonic() > self.deadline:
            return Searcher.FINISHED  # as --timeout locally: start no new trial, let running ones finish
        trial = self.study.ask()  # a trial queued by requeue_interrupted first
        self.trials[trial_id] = trial
        params = suggest(trial, self.space)
        # The run folder is chosen here and recorded before the trial starts, so that a killed
        # search reruns the trial from it. Named by trial: trials started in the same second differ.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = resumable_run(trial.user_attrs.get(RESUME_FROM)) or self.runs_root / (
            f"{self.study.study_name}-{stamp}-trial{trial.number}"
        )
        trial.set_user_attr(RUN_DIR, str(run_dir))
        return {**params, RUN_DIR: str(run_dir)}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if SUMMARY not in result:
            self.trials[trial_id].report(result[self.metric], result[EPOCH])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self.trials.pop(trial_id)
        if result is None or SUMMARY not in result:
            # Failed (its error is Ray's to report), or stopped from outside: a stopped one reruns.
            trial.set_user_attr("interrupted", not error)
            self.study.tell(trial, state=TrialState.FAIL)
            return
        summary = json.loads(result[SUMMARY])
        for name, value in trial_attributes(summary).items():
            trial.set_user_attr(name, value)
        if summary.get("pruned"):
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, summary["valid"][self.metric])
        self.on_trial_done(self.study, self.study.get_trials(deepcopy=False)[trial.number])

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study (in SQLite) is this searcher's state, and continues it."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: running the same command again continues the study."""


class HideRestoreHint(logging.Filter):
    """Ray suggests ``Tuner.restore`` after Ctrl-C; a search continues by running the same command."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore" not in record.getMessage()


def run_trial(config: dict[str, Any], settings: TuneSettings, stop_requests) -> None:
    """One trial, on whichever node Ray chose: train (or resume) its run, reporting each evaluation."""
    params = {name: config[name] for name in settings.space}
    run_dir = Path(config[RUN_DIR])
    trial_id = tune.get_context().get_trial_id()
    trainer, resumed = trainer_for(settings, params, resume_from=str(run_dir))

    def report(epoch: int, valid: dict[str, float]) -> bool:
        tune.report({settings.metric: valid[settings.metric], EPOCH: epoch})
        return ray.get(stop_requests.requested.remote(trial_id))

    trainer.on_evaluation = report
    if resumed is not None:
        _, summary = runner.resume(resumed, prepared=trainer)
    else:
        _, summary = runner.train(trainer.config, run_dir.parent, prepared=trainer, run_name=run_dir.name)
    # No EPOCH: the run's best valid value is not an evaluation that ASHA's rungs should record.
    tune.report({settings.metric: summary["valid"][settings.metric], SUMMARY: json.dumps(summary)})


def run_ray_study(
    settings: TuneSettings,
    address: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    storage_path: Path | None = None,
    announce: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> optuna.Study:
    """Run (or continue) the search of ``settings`` on a Ray cluster; returns the study.

    ``address`` joins a running cluster (``ray start --head``); without it, the Ray instance
    this process already started is used, or a local one is started. Run folders go under
    ``storage_path/runs`` (default ``settings.out``), a folder every node must reach. The data
    is checked here first, so ``warn`` gets its warnings and refused data fails before any trial.
    """
    if not resolve_data_path(settings.data).exists():  # checked here, before a cluster's worth of trials fail
        raise SigerecError(f"--data {settings.data}: no such dataset folder or built-in dataset.")
    runner.check_data(runner.resolve_config(settings.model, settings.data, overrides=settings.overrides), warn)
    # Trials run in other processes and other working directories: paths must be absolute.
    data = str(Path(settings.data).resolve()) if Path(settings.data).exists() else settings.data
    settings = replace(settings, data=data, out=settings.out.resolve(), pruner="asha")
    storage_root = (storage_path or settings.out).resolve()
    # Plain seeded TPE: trials drawn while others run must differ (the constant liar counts running
    # trials as bad); with several trials at once, the order of results is not repeatable anyway.
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed, n_startup_trials=settings.startup_trials, constant_liar=True
    )
    study, remaining = continue_study(settings, announce, sampler)
    if remaining <= 0:
        return study
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        announce(
            f"Ray cluster: {_describe_resources()}; {cpus_per_trial:g} CPU(s), {gpus_per_trial:g} GPU(s) per trial"
        )
        stop_requests = StopRequests.remote()
        searcher = StudySearcher(study, settings, storage_root / RUNS_FOLDER, progress_callback(settings, announce))
        trainable = tune.with_parameters(run_trial, settings=settings, stop_requests=stop_requests)
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=StopByRequestASHA(
                    stop_requests,
                    time_attr=EPOCH,
                    metric=settings.metric,
                    mode="max",
                    grace_period=max(1, settings.pruner_warmup),
                    reduction_factor=ASHA_REDUCTION,
                    # A run ends by its own epochs or early stopping; ASHA only ever stops it sooner.
                    max_t=10**6,
                    stop_last_trials=False,
                ),
                num_samples=remaining,
            ),
            run_config=tune.RunConfig(
                name=f"{settings.name()}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(storage_root / RAY_FOLDER),
                verbose=0,
                failure_config=tune.FailureConfig(fail_fast=True),
            ),
        )
        ray_log, hide_hint = logging.getLogger("ray.tune.tune"), HideRestoreHint()
        ray_log.addFilter(hide_hint)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for the results table
                grid = tuner.fit()
        finally:
            ray_log.removeFilter(hide_hint)
    finally:
        if started_ray:
            ray.shutdown()
    if grid.errors:
        cause = getattr(grid.errors[0], "cause", None)
        if isinstance(cause, SigerecError):  # e.g. settings the model refuses: the message says the fix
            raise cause
        raise SigerecError(f"a trial failed, so the search stopped: {grid.errors[0]}")
    if searcher.trials:  # Ray ends the search at Ctrl-C; those trials are left running in the study
        announce(f"interrupted with {len(searcher.trials)} trial(s) running; run the same command to continue")
        raise KeyboardInterrupt
    return study


def _describe_resources() -> str:
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return f"{nodes} node(s), {resources.get('CPU', 0):g} CPU(s), {resources.get('GPU', 0):g} GPU(s)"
