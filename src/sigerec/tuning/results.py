"""What a finished search leaves behind: the trials table, the best settings and the plots."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from sigerec.errors import SigerecError
from sigerec.safe_write import atomic_write
from sigerec.training.run_report import format_table
from sigerec.tuning.sampling import FINISHED, trial_value

TRIALS_FILE = "trials.csv"
BEST_SETTINGS_FILE = "best.yaml"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


def trial_rows(study: optuna.Study, metric: str) -> list[dict[str, Any]]:
    """One row per finished or pruned trial, best valid value first (valid metrics only)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state not in FINISHED:
            continue
        value = trial_value(trial)
        row: dict[str, Any] = {
            "trial": trial.number,
            "state": "finished" if trial.state == TrialState.COMPLETE else "pruned",
            f"valid {metric}": value,
            "best epoch": trial.user_attrs.get("best_epoch", ""),
            "epochs": trial.user_attrs.get("epochs", ""),
        }
        row.update({name: trial.params.get(name, "") for name in sorted(study.user_attrs["settings"]["space"])})
        row["run"] = Path(trial.user_attrs.get("run_dir", "")).name
        rows.append(row)
    complete_first = {"finished": 0, "pruned": 1}
    return sorted(rows, key=lambda r: (complete_first[r["state"]], -_number(r[f"valid {metric}"]), r["trial"]))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The finished trial with the best valid metric (pruned trials are never selected)."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise SigerecError("no trial of the study has finished yet (all were pruned or failed); run more trials.")
    return study.best_trial


def best_settings(study: optuna.Study) -> dict[str, Any]:
    """The selected trial's settings, with the search's fixed ``--set`` values: a `--config` file."""
    settings = dict(study.user_attrs["settings"]["overrides"])
    settings.update(best_trial(study).params)
    return settings


def write_outputs(study: optuna.Study, out: Path, metric: str) -> dict[str, Path]:
    """``trials.csv``, ``best.yaml`` and the two plots in ``out``; returns what was written."""
    written = {}
    table = format_table(trial_rows(study, metric), "csv")
    atomic_write(out / TRIALS_FILE, lambda path: path.write_text(table))
    written["trials"] = out / TRIALS_FILE
    best = best_trial(study)
    header = (
        f"# Best settings of study '{study.study_name}': trial {best.number}, valid {metric} {best.value:.4f}.\n"
        f"# Train with them: sigerec train --data DATA --model {study.user_attrs['settings']['model']} "
        f"--config {out / BEST_SETTINGS_FILE}\n"
    )
    text = header + yaml.safe_dump(best_settings(study), sort_keys=True)
    atomic_write(out / BEST_SETTINGS_FILE, lambda path: path.write_text(text))
    written["best settings"] = out / BEST_SETTINGS_FILE
    written.update(_plots(study, out))
    return written


FINAL_SEEDS_FOLDER = "final-seeds"


def train_final_seeds(settings, seeds: list[int]) -> tuple[Path, dict]:
    """The selected settings (``best.yaml``) trained once per seed into ``<out>/final-seeds``.

    A group an earlier run of the same command started there is reused: an interrupted one is
    finished, and one with fewer of the seeds (an earlier, smaller ``--final-seeds``) trains
    only the seeds it lacks.
    """
    from sigerec.training import runner
    from sigerec.training.seeds import group_seeds

    flags = {"device": settings.device} if settings.device else None
    config = runner.resolve_config(
        settings.model, settings.data, config_file=settings.out / BEST_SETTINGS_FILE, flags=flags
    )
    root = settings.out / FINAL_SEEDS_FOLDER
    earlier = _group_of(root, config, seeds)
    if earlier is None:
        return runner.train_seeds(config, seeds, root)
    if set(seeds) - set(group_seeds(earlier)):
        return runner.extend_seeds(earlier, seeds)
    return runner.resume_seeds(earlier)


def _group_of(root: Path, config, seeds: list[int]) -> Path | None:
    """The group folder under ``root`` that trains ``config`` with ``seeds`` or with the most of
    them (and no other seed), if there is one. Settings are compared as loaded today, so a group
    saved before a setting existed still matches when it ran that setting's default."""
    import dataclasses

    from sigerec.training.run_directory import RunDirectory
    from sigerec.training.runner import load_run_config
    from sigerec.training.seeds import group_seeds, seed_folder

    matches = []
    for group in sorted(root.iterdir()) if root.is_dir() else []:
        have = group_seeds(group)
        if not have or not set(have) <= set(seeds):
            continue
        first = dataclasses.replace(config, training=dataclasses.replace(config.training, seed=have[0]))
        try:
            saved = load_run_config(RunDirectory(group / seed_folder(have[0])))
        except SigerecError:
            continue  # settings this version refuses: not the group of today's settings
        if saved.to_dict() == first.to_dict():
            matches.append((len(have), group))
    return max(matches)[1] if matches else None


def _plots(study: optuna.Study, out: Path) -> dict[str, Path]:
    """Optimisation history and parameter importance as PNG (importance needs 2+ finished trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    written = {}
    plots = [("history plot", HISTORY_PLOT, optuna_plots.plot_optimization_history)]
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(finished) >= 2 and len(study.best_trial.params) >= 1:
        plots.append(("importance plot", IMPORTANCE_PLOT, optuna_plots.plot_param_importances))
    for label, name, plot in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's notes on its importance estimator
                axes = plot(study)
        except (ValueError, RuntimeError):  # e.g. importance of a parameter that never varied
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes[0].figure
        figure.tight_layout()
        atomic_write(out / name, lambda path, figure=figure: figure.savefig(path, format="png", dpi=120))
        plt.close(figure)
        written[label] = out / name
    return written


def _number(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not math.isnan(value) else -math.inf
