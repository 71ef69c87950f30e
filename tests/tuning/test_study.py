"""`sigerec tune` with the local Optuna backend: trials are runs, results are written, and a
killed search continues to the same table as an uninterrupted one."""

from __future__ import annotations

import csv

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from model_checks import InterruptAfter
from sigerec.cli.main import app
from sigerec.search_space import choices, interval
from sigerec.training import runner
from sigerec.training.run_directory import RunDirectory
from sigerec.tuning import study as study_module
from sigerec.tuning.results import BEST_SETTINGS_FILE, TRIALS_FILE, trial_rows, write_outputs
from sigerec.tuning.sampling import suggest
from sigerec.tuning.study import TuneSettings, run_study

SPACE = {"n_layers": choices(1, 2), "reg_weight": interval(1e-5, 1e-2, log=True, source="test")}
FIXED = {"epochs": 4, "stopping_step": 1, "train_batch_size": 1024}


def _settings(data, out, trials=4) -> TuneSettings:
    return TuneSettings(data=str(data), model="lightgcn", space=SPACE, trials=trials, overrides=FIXED, out=out)


def _tune(data, tmp_path, *options: str):
    """`sigerec tune` of LightGCN over n_layers {1, 2} on ``data``, with ``options``."""
    space = tmp_path / "space.yaml"
    space.write_text("n_layers: {choices: [1, 2], source: test}\n")
    arguments = ["tune", "--data", str(data), "--model", "lightgcn", "--space", str(space), *options]
    return CliRunner().invoke(app, arguments)


def _table(out) -> list[dict]:
    """trials.csv without the run folder (its name carries the time it was made) and the trial
    number (an interrupted trial's rerun is a new Optuna trial)."""
    with open(out / TRIALS_FILE) as handle:
        return [{k: v for k, v in row.items() if k not in {"run", "trial"}} for row in csv.DictReader(handle)]


def test_every_trial_is_a_run_and_the_best_settings_train_again(baby_subset_dir, tmp_path):
    settings = _settings(baby_subset_dir, tmp_path / "study", trials=3)
    lines = []
    finished = run_study(settings, announce=lines.append)
    assert len(lines) == 3 and all(line.startswith("trial ") and "best" in line for line in lines)
    rows = trial_rows(finished, "recall@20")
    for row in rows:
        run = RunDirectory.existing(tmp_path / "study" / "runs" / row["run"])
        assert run.read_summary() is not None  # an ordinary, finished run folder
    finished_values = [r["valid recall@20"] for r in rows if r["state"] == "finished"]
    assert finished_values == sorted(finished_values, reverse=True)
    written = write_outputs(finished, settings.out, "recall@20")
    assert written["history plot"].read_bytes()[:4] == b"\x89PNG"
    best = yaml.safe_load((settings.out / BEST_SETTINGS_FILE).read_text())
    assert set(best) == set(SPACE) | set(FIXED)
    config = runner.resolve_config("lightgcn", str(baby_subset_dir), config_file=settings.out / BEST_SETTINGS_FILE)
    assert config.model_params.n_layers == best["n_layers"] and config.training.epochs == 4
    selected = finished.best_trial
    assert selected.value == max(t.value for t in finished.trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_a_killed_search_continues_to_the_table_of_an_uninterrupted_one(baby_subset_dir, tmp_path, monkeypatch):
    whole = _settings(baby_subset_dir, tmp_path / "whole")
    write_outputs(run_study(whole, announce=lambda _: None), whole.out, "recall@20")

    cut = _settings(baby_subset_dir, tmp_path / "cut")
    train, calls = runner.train, []

    def train_killed_in_the_third_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            kwargs["progress"] = InterruptAfter(1)  # a kill after epoch 1 of trial 2
        return train(*args, **kwargs)

    monkeypatch.setattr(study_module.runner, "train", train_killed_in_the_third_trial)
    with pytest.raises(KeyboardInterrupt):
        run_study(cut, announce=lambda _: None)
    monkeypatch.setattr(study_module.runner, "train", train)
    lines = []
    resumed = run_study(cut, announce=lines.append)
    assert "1 interrupted one(s) to rerun" in lines[0]
    write_outputs(resumed, cut.out, "recall@20")
    assert _table(cut.out) == _table(whole.out)
    # The interrupted trial's rerun continued its run folder instead of starting a new one.
    assert len(list((cut.out / "runs").iterdir())) == len(list((whole.out / "runs").iterdir()))


def test_a_trial_left_running_by_a_killed_process_is_run_again(baby_subset_dir, tmp_path):
    settings = _settings(baby_subset_dir, tmp_path / "study", trials=2)
    study = study_module.open_study(settings)
    study.enqueue_trial({"n_layers": 1, "reg_weight": 1e-3})
    suggest(study.ask(), SPACE)  # a trial that starts and never reports back, as after SIGKILL
    lines = []
    finished = run_study(settings, announce=lines.append)
    states = [t.state for t in finished.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and "1 interrupted" in lines[0]
    rerun = next(t for t in finished.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert rerun.params == {"n_layers": 1, "reg_weight": 1e-3}  # the stale trial's settings, run again


def test_a_study_continued_with_other_settings_is_refused(baby_subset_dir, tmp_path):
    run_study(_settings(baby_subset_dir, tmp_path / "study", trials=1), announce=lambda _: None)
    changed = TuneSettings(
        data=str(baby_subset_dir),
        model="lightgcn",
        space=SPACE,
        trials=1,
        overrides={**FIXED, "epochs": 5},
        out=tmp_path / "study",
    )
    with pytest.raises(Exception, match="other settings.*overrides"):
        run_study(changed, announce=lambda _: None)


def test_the_command_prints_the_table_and_the_selected_trials_test_metrics(baby_subset_dir, tmp_path):
    result = _tune(baby_subset_dir, tmp_path, "--trials", "2", "--set", "epochs=3", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "selected trial" in result.output and "its test metrics: recall@20" in result.output
    assert (tmp_path / "out" / BEST_SETTINGS_FILE).exists() and (tmp_path / "out" / TRIALS_FILE).exists()


def test_fixing_a_searched_setting_is_refused(baby_subset_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        ["tune", "--data", str(baby_subset_dir), "--model", "lightgcn", "--set", "n_layers=2", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2 and "varies" in result.output


def test_the_first_trial_is_the_models_defaults_when_the_space_holds_them(baby_subset_dir, tmp_path):
    finished = run_study(_settings(baby_subset_dir, tmp_path / "study", trials=1), announce=lambda _: None)
    assert finished.trials[0].params == {"n_layers": 2, "reg_weight": 1e-4}  # LightGCN's defaults


def test_final_seeds_train_the_selected_settings_once_per_seed(baby_subset_dir, tmp_path):
    result = _tune(
        baby_subset_dir,
        tmp_path,
        "--trials",
        "1",
        "--set",
        "epochs=2",
        "--out",
        str(tmp_path / "out"),
        "--final-seeds",
        "2",
    )
    assert result.exit_code == 0, result.output
    (group,) = (tmp_path / "out" / "final-seeds").iterdir()
    aggregate = yaml.safe_load((group / "aggregate.json").read_text())
    assert aggregate["seeds"] == [1, 2] and "±" in result.output


def test_more_final_seeds_later_train_only_the_new_seeds(baby_subset_dir, tmp_path):
    def tune(seeds: str):
        options = ["--trials", "1", "--set", "epochs=2", "--out", str(tmp_path / "out"), "--final-seeds", seeds]
        result = _tune(baby_subset_dir, tmp_path, *options)
        assert result.exit_code == 0, result.output

    tune("1")
    (group,) = (tmp_path / "out" / "final-seeds").iterdir()
    first_seed = (group / "seed-1" / "summary.json").read_text()
    tune("2")
    assert [path.name for path in (tmp_path / "out" / "final-seeds").iterdir()] == [group.name]
    assert (group / "seed-1" / "summary.json").read_text() == first_seed
    assert yaml.safe_load((group / "aggregate.json").read_text())["seeds"] == [1, 2]


def test_settings_drawn_again_reuse_the_finished_trial_instead_of_training_again(baby_subset_dir, tmp_path):
    settings = TuneSettings(
        data=str(baby_subset_dir),
        model="lightgcn",
        space={"n_layers": choices(2)},
        trials=2,
        overrides=FIXED,
        out=tmp_path / "study",
    )
    finished = run_study(settings, announce=lambda _: None)
    first, second = finished.trials
    assert second.value == first.value and second.user_attrs["same_as_trial"] == 0
    assert len(list((tmp_path / "study" / "runs").iterdir())) == 1
