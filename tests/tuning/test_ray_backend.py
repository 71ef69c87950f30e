"""`sigerec tune --backend ray` on a real local Ray cluster of 2 CPUs, started in this module:
trials run two at a time, each an ordinary run folder, all recorded in the Optuna study, and a
killed search continues its interrupted trial's run folder."""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace

import pytest

ray = pytest.importorskip("ray")

from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import write_split_of_training_items
from model_checks import InterruptAfter
from sigerec.cli.main import app
from sigerec.errors import SigerecError
from sigerec.search_space import choices, interval
from sigerec.training import runner
from sigerec.training.run_directory import RunDirectory
from sigerec.tuning.ray_backend import run_ray_study
from sigerec.tuning.results import BEST_SETTINGS_FILE, TRIALS_FILE, trial_rows, write_outputs
from sigerec.tuning.sampling import suggest
from sigerec.tuning.study import TuneSettings, open_study, trainer_for

SPACE = {"n_layers": choices(1, 2), "reg_weight": interval(1e-5, 1e-2, log=True, source="test")}
FIXED = {"epochs": 3, "stopping_step": 2, "train_batch_size": 1024}


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs, for this module's tests only."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _settings(data, out, trials, pruner_warmup) -> TuneSettings:
    return TuneSettings(
        data=str(data),
        model="lightgcn",
        space=SPACE,
        trials=trials,
        overrides=FIXED,
        out=out,
        pruner_warmup=pruner_warmup,
    )


@pytest.mark.slow
def test_a_study_runs_as_ray_trials_two_at_a_time(cluster, baby_subset_dir, tmp_path):
    settings = _settings(baby_subset_dir, tmp_path / "study", trials=3, pruner_warmup=1)
    lines = []
    study = run_ray_study(settings, cpus_per_trial=1, storage_path=tmp_path / "shared", announce=lines.append)

    states = [trial.state for trial in study.trials]
    assert len(states) == 3 and set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert TrialState.COMPLETE in states  # ASHA lets the first trial to reach an epoch go on
    assert sum(line.startswith("trial ") for line in lines) == 3  # the local backend's progress lines
    for trial in study.trials:
        run = RunDirectory.existing(trial.user_attrs["run_dir"])
        assert run.path.parent == tmp_path / "shared" / "runs"
        summary = run.read_summary()  # an ordinary, finished run folder, marked pruned if ASHA stopped it
        assert bool(summary.get("pruned")) == (trial.state == TrialState.PRUNED)
    spans = sorted((trial.datetime_start, trial.datetime_complete) for trial in study.trials)
    assert any(next_start < end for (_, end), (next_start, _) in itertools.pairwise(spans))  # two at a time

    written = write_outputs(study, settings.out, "recall@20")
    assert written["trials"] == settings.out / TRIALS_FILE and (settings.out / BEST_SETTINGS_FILE).exists()
    assert len(trial_rows(study, "recall@20")) == 3


@pytest.mark.slow
def test_a_killed_ray_search_continues_the_interrupted_trials_run(cluster, baby_subset_dir, tmp_path):
    settings = _settings(baby_subset_dir, tmp_path / "study", trials=2, pruner_warmup=5)  # no pruning in 3 epochs
    # A search killed during its first trial's second epoch: the trial is left running, its run half done.
    study = open_study(replace(settings, pruner="asha"))
    killed = study.ask()
    trainer, _ = trainer_for(settings, suggest(killed, SPACE))
    with pytest.raises(KeyboardInterrupt):
        runner.train(
            trainer.config,
            settings.out / "runs",
            prepared=trainer,
            progress=InterruptAfter(1),
            announce=lambda path: killed.set_user_attr("run_dir", str(path)),
        )
    lines = []
    study = run_ray_study(settings, cpus_per_trial=1, announce=lines.append)

    assert "1 interrupted one(s) to rerun" in lines[0]
    rerun = next(trial for trial in study.trials if trial.params == killed.params and trial.number != killed.number)
    assert rerun.state == TrialState.COMPLETE and rerun.user_attrs["run_dir"] == killed.user_attrs["run_dir"]
    epochs = [record["epoch"] for record in RunDirectory(rerun.user_attrs["run_dir"]).read_metrics()]
    assert epochs == [0, 1, 2]  # continued from its checkpoint, not started again
    assert [trial.state for trial in study.trials].count(TrialState.COMPLETE) == 2


def test_the_ray_driver_refuses_data_with_nothing_to_train_on_before_any_trial(tmp_path):
    data = write_split_of_training_items(
        tmp_path / "tiny", {u: range(4) for u in range(6)}
    )  # no user has a negative item
    with pytest.raises(SigerecError, match="nothing to train on"):
        run_ray_study(_settings(data, tmp_path / "study", trials=2, pruner_warmup=1))
    assert not (tmp_path / "study").exists()  # no study, no run folder


def test_the_ray_driver_shows_the_datas_warnings_before_the_trials(tmp_path, monkeypatch):
    data = write_split_of_training_items(tmp_path / "tiny", {0: range(4), 1: range(2), 2: range(1, 3)})
    warnings = []

    def stop_before_the_study(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("sigerec.tuning.ray_backend.continue_study", stop_before_the_study)
    with pytest.raises(KeyboardInterrupt):
        run_ray_study(_settings(data, tmp_path / "study", trials=2, pruner_warmup=1), warn=warnings.append)
    assert len(warnings) == 1 and "training leaves out their 4 pairs" in warnings[0]


def test_ray_options_without_the_ray_backend_are_refused(tmp_path):
    result = CliRunner().invoke(
        app, ["tune", "--data", "baby", "--model", "lightgcn", "--address", "head:6379", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--address is an option of the Ray backend; add --backend ray" in result.output


def test_the_ray_backend_without_ray_installed_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if Ray were not installed
    monkeypatch.delitem(sys.modules, "sigerec.tuning.ray_backend")
    result = CliRunner().invoke(
        app, ["tune", "--data", "baby", "--model", "lightgcn", "--backend", "ray", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "needs Ray Tune: pip install 'sigerec" in result.output
