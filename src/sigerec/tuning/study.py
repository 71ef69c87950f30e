"""`sigerec tune` on one machine: an Optuna study whose trials are ordinary sigerec runs.

Each trial trains one run folder under ``<out>/runs`` with the settings the sampler draws; the
valid metric of every evaluation feeds the pruner, so a hopeless trial stops early (its run
still finishes and is marked ``pruned``). The study lives in SQLite inside ``<out>`` by
default, so running the same command again continues it: finished trials are not repeated,
and a trial that was interrupted is run again with the same settings, resuming its run folder
from its last checkpoint. Selection reads valid metrics only; test metrics are reported for
the selected trial.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sigerec.errors import SigerecError
from sigerec.search_space import SearchSpace, space_as_mapping
from sigerec.training import runner
from sigerec.training.run_directory import RunDirectory
from sigerec.tuning.sampling import FINISHED, ReplayableTPESampler, suggest, trial_value

STUDY_DB = "study.db"
RUNS_FOLDER = "runs"
# Trial attributes: the trial's run folder, and the run folder an interrupted trial continues.
RUN_DIR = "run_dir"
RESUME_FROM = "resume_from"
# ASHA keeps the top 1/ASHA_REDUCTION of the trials at each of its evaluations.
ASHA_REDUCTION = 4


@dataclass
class TuneSettings:
    """What defines a search; a resumed study must be run with the same."""

    data: str
    model: str
    space: SearchSpace
    trials: int = 20
    timeout: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    study_name: str | None = None
    storage: str | None = None
    out: Path = Path("tuning")
    device: str | None = None
    seed: int = 999
    # Percentile pruning: a trial stops when its best valid metric so far is in the bottom
    # ``pruner_percentile`` % of the finished trials' values at the same evaluation, after the
    # first ``pruner_startup`` trials finished and from evaluation ``pruner_warmup`` on. Curves
    # cross (deeper or more regularised models start slower), so a median cut after a few
    # epochs stopped trials that would have ended best: only the clearly worst are stopped.
    pruner_startup: int = 3
    pruner_warmup: int = 20
    pruner_percentile: float = 25.0
    # "percentile" (the local backend) or "asha" (the Ray backend: asynchronous successive halving,
    # a trial stops at evaluation pruner_warmup, x4, x16, ... unless in the top quarter there).
    pruner: str = "percentile"

    @property
    def metric(self) -> str:
        return self.overrides.get("valid_metric", "recall@20")

    @property
    def startup_trials(self) -> int:
        """Trials TPE draws at random before it models the finished ones."""
        return min(10, max(2, self.trials // 3))

    def name(self) -> str:
        return self.study_name or f"{self.model}-{Path(self.data).name}"

    def record(self) -> dict[str, Any]:
        """The settings a resumed study must share with the one it continues."""
        return {
            "model": self.model,
            "data": str(Path(self.data).resolve()) if Path(self.data).exists() else self.data,
            "space": space_as_mapping(self.space),
            "overrides": self.overrides,
            "seed": self.seed,
            "pruner": self._pruner_record(),
        }

    def _pruner_record(self) -> dict[str, Any]:
        if self.pruner == "asha":
            return {"kind": "asha", "grace_evaluations": self.pruner_warmup, "reduction_factor": ASHA_REDUCTION}
        return {
            "kind": "percentile",
            "percentile": self.pruner_percentile,
            "startup_trials": self.pruner_startup,
            "warmup_evaluations": self.pruner_warmup,
        }


def open_study(settings: TuneSettings, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """The study of ``settings`` (created, or loaded to continue it), checked to match them.

    ``sampler`` defaults to the replayable TPE of a search that runs one trial at a time.
    """
    settings.out.mkdir(parents=True, exist_ok=True)
    storage = settings.storage or f"sqlite:///{(settings.out / STUDY_DB).resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=settings.name(),
        storage=storage,
        sampler=sampler or ReplayableTPESampler(seed=settings.seed, n_startup_trials=settings.startup_trials),
        pruner=optuna.pruners.PercentilePruner(
            settings.pruner_percentile, n_startup_trials=settings.pruner_startup, n_warmup_steps=settings.pruner_warmup
        ),
        direction="maximize",
        load_if_exists=True,
    )
    record = json.loads(json.dumps(settings.record()))  # as stored: plain JSON values
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", record)
    elif saved != record:
        changed = sorted(key for key in record if record[key] != saved.get(key))
        raise SigerecError(
            f"study '{settings.name()}' in {storage} was started with other settings ({', '.join(changed)}). "
            "Continue it with the same command, or give another --study or --out."
        )
    return study


def requeue_interrupted(study: optuna.Study) -> int:
    """Run again, with the same settings, trials a killed search left running or failed by interruption
    (Ctrl-C or a write error such as a full disk).

    Such a trial is marked failed (the sampler ignores failed trials) and its settings are
    queued, with its run folder, so the next trial continues that run from its last checkpoint.
    """
    requeued = set(study.user_attrs.get("requeued_trials", []))  # finished trials cannot be marked
    queued = []
    for trial in study.get_trials(deepcopy=False):
        interrupted = trial.state == TrialState.RUNNING or trial.user_attrs.get("interrupted", False)
        if not interrupted or trial.number in requeued:
            continue
        if trial.state == TrialState.RUNNING:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={RESUME_FROM: trial.user_attrs.get(RUN_DIR, "")})
        queued.append(trial.number)
    if queued:
        study.set_user_attr("requeued_trials", sorted(requeued | set(queued)))
    return len(queued)


def make_objective(
    settings: TuneSettings, announce: Callable[[str], None] = print, warn: Callable[[str], None] | None = None
) -> Callable[[optuna.Trial], float]:
    """The function Optuna calls per trial: train one run and return its best valid metric.

    ``warn`` gets the data's warnings (rows dropped, pairs training leaves out) once per
    search, not once per trial: every trial reads the same data.
    """
    runs_root = settings.out / RUNS_FOLDER
    warn = once(warn) if warn is not None else None

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, settings.space)
        twin = finished_twin(trial.study, params)
        if twin is not None:  # a seeded run repeats exactly: reuse its result instead of training again
            for name in (RUN_DIR, *TRIAL_ATTRIBUTES):
                if name in twin.user_attrs:
                    trial.set_user_attr(name, twin.user_attrs[name])
            trial.set_user_attr("same_as_trial", twin.number)
            if twin.state == TrialState.PRUNED:
                for step, value in twin.intermediate_values.items():
                    trial.report(value, step)
                raise optuna.TrialPruned()
            return twin.value
        trainer, run_path = trainer_for(settings, params, trial.user_attrs.get(RESUME_FROM), warn)
        if run_path is not None:
            trial.set_user_attr(RUN_DIR, str(run_path))

        def report(epoch: int, valid: dict[str, float]) -> bool:
            trial.report(valid[settings.metric], epoch)
            return trial.should_prune()

        trainer.on_evaluation = report
        try:
            if run_path is not None:
                _replay_reports(trial, run_path, settings.metric)
                _, summary = runner.resume(run_path, prepared=trainer)
            else:
                _, summary = runner.train(
                    trainer.config,
                    runs_root,
                    prepared=trainer,
                    announce=lambda path: trial.set_user_attr(RUN_DIR, str(path)),
                )
        except (KeyboardInterrupt, OSError):  # Ctrl-C, a full disk: the next run continues this trial
            with contextlib.suppress(Exception):  # the study's own disk may be the full one
                trial.set_user_attr("interrupted", True)
            raise
        for name, value in trial_attributes(summary).items():
            trial.set_user_attr(name, value)
        if summary.get("pruned"):
            raise optuna.TrialPruned()
        return summary["valid"][settings.metric]

    return objective


def finished_twin(study: optuna.Study, params: dict[str, Any]) -> optuna.trial.FrozenTrial | None:
    """A finished or pruned trial with exactly ``params`` (TPE may draw a point twice in a grid)."""
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        if trial.params == params:
            return trial
    return None


def resumable_run(resume_from: str | None) -> Path | None:
    """The interrupted run folder a requeued trial continues; None if there is none or it finished."""
    if resume_from and Path(resume_from, "config.yaml").exists():
        run = RunDirectory.existing(resume_from)
        if run.read_summary() is None:
            return run.path
    return None


def trainer_for(
    settings: TuneSettings,
    params: dict[str, Any],
    resume_from: str | None = None,
    warn: Callable[[str], None] | None = None,
):
    """``(trainer, run folder to resume or None)`` of a trial with ``params``: a new run, or the
    interrupted run in ``resume_from`` (a requeued trial's), continued from its checkpoint."""
    run_path = resumable_run(resume_from)
    if run_path is not None:
        return runner.prepare(runner.load_run_config(RunDirectory(run_path), settings.device), warn=warn), run_path
    flags = {"seed": settings.seed, "device": settings.device}
    config = runner.resolve_config(
        settings.model, settings.data, overrides={**settings.overrides, **params}, flags=flags
    )
    return runner.prepare(config, warn=warn), None


def once(callback: Callable[[str], None]) -> Callable[[str], None]:
    """``callback``, called at most once per distinct message."""
    seen: set[str] = set()

    def call(message: str) -> None:
        if message not in seen:
            seen.add(message)
            callback(message)

    return call


TRIAL_ATTRIBUTES = ("test", "best_epoch", "epochs")


def trial_attributes(summary: dict[str, Any]) -> dict[str, Any]:
    """What a trial records of its run's summary (read by ``results.trial_rows``)."""
    return {name: summary[name] for name in TRIAL_ATTRIBUTES}


def _replay_reports(trial: optuna.Trial, run_path: Path, metric: str) -> None:
    """Report the evaluations an interrupted run had made, so the pruner sees them as before."""
    for record in RunDirectory(run_path).read_metrics():
        if "valid" in record:
            trial.report(record["valid"][metric], record["epoch"])


def progress_callback(settings: TuneSettings, announce: Callable[[str], None]):
    """One line per finished or pruned trial, with its value and the best so far."""
    started = time.perf_counter()

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state not in FINISHED:
            return
        finished = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
        value = trial_value(trial)
        best = study.best_trial if any(t.state == TrialState.COMPLETE for t in finished) else None
        state = (
            "finished"
            if trial.state == TrialState.COMPLETE
            else f"pruned at epoch {trial.user_attrs.get('epochs', '?')}"
        )
        best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no finished trial yet"
        params = ", ".join(f"{k}={_format(v)}" for k, v in trial.params.items())
        announce(
            f"trial {trial.number} {state}: valid {settings.metric} {value:.4f}; {best_text}; "
            f"{len(finished)}/{settings.trials} trials, {time.perf_counter() - started:.0f} s; {params}"
        )

    return callback


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def default_point(settings: TuneSettings) -> dict[str, Any]:
    """The settings a plain `sigerec train` would use, for the searched names, if the space holds them."""
    config = runner.resolve_config(settings.model, settings.data, overrides=settings.overrides)
    values = {**vars(config.training), **vars(config.model_params)}
    point = {}
    for name, dimension in settings.space.items():
        value = values[name]
        inside = (
            value in dimension.choices if dimension.choices is not None else dimension.low <= value <= dimension.high
        )
        if not inside:
            return {}
        point[name] = value
    return point


def enqueue_defaults(study: optuna.Study, settings: TuneSettings) -> None:
    """Make the model's defaults the first trial, so a search never selects below them on valid."""
    point = default_point(settings)
    if point:
        study.enqueue_trial(point)


def continue_study(
    settings: TuneSettings, announce: Callable[[str], None], sampler: optuna.samplers.BaseSampler | None = None
) -> tuple[optuna.Study, int]:
    """The study of ``settings``, its interrupted trials queued to rerun; and how many trials remain."""
    if not settings.space:
        raise SigerecError(
            f"model '{settings.model}' declares no search space; give one with --space FILE (see `sigerec tune --help`)."
        )
    study = open_study(settings, sampler)
    if not study.get_trials(deepcopy=False):
        enqueue_defaults(study, settings)
    requeued = requeue_interrupted(study)
    done = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
    if done or requeued:
        announce(
            f"continuing study '{settings.name()}': {done} trial(s) finished, {requeued} interrupted one(s) to rerun"
        )
    return study, settings.trials - done


def run_study(
    settings: TuneSettings, announce: Callable[[str], None] = print, warn: Callable[[str], None] | None = None
) -> optuna.Study:
    """Run (or continue) the search until ``settings.trials`` trials finished or the timeout;
    ``warn`` gets the data's warnings once."""
    study, remaining = continue_study(settings, announce)
    if remaining > 0:
        with _quiet_interruptions():
            study.optimize(
                make_objective(settings, announce, warn),
                n_trials=remaining,
                timeout=settings.timeout,
                callbacks=[progress_callback(settings, announce)],
                catch=(),
            )
    return study


class _DropInterruptions(logging.Filter):
    """Drops Optuna's log of a trial stopped by Ctrl-C, a write error or refused data or settings
    (a traceback and a line): the command line reports those in one message, and the next run
    reruns the trial."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], (KeyboardInterrupt, OSError, SigerecError)):
            self.dropped = True
            return False
        return not (self.dropped and "failed with value" in record.getMessage())


@contextlib.contextmanager
def _quiet_interruptions():
    logger = logging.getLogger("optuna.study._optimize")
    quiet = _DropInterruptions()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
