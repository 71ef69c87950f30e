"""Tables of finished runs (read from their run folders): the rows `sigerec compare` and the benchmarks print.

Two views: one row per run (:func:`run_row`), and one row per group of runs that differ only in
their seed (:func:`compare_groups`), with mean ± std over the group's runs and a paired test of
each group against the best one on the same dataset.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigerec.errors import SigerecError
from sigerec.training.run_directory import CONFIG_FILE, PER_USER_TEST_FILE, RunDirectory
from sigerec.training.seeds import mean_and_std

DEFAULT_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
SPLITS = ("valid", "test")


def expand_run_folders(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders as given, each group folder (``sigerec train --seeds``) replaced by its run folders."""
    folders: list[Path] = []
    for path in map(Path, paths):
        if (path / CONFIG_FILE).is_file():
            folders.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if (p / CONFIG_FILE).is_file()) if path.is_dir() else []
        if not inside:
            raise SigerecError(
                f"{path}: neither a run folder (no {CONFIG_FILE}) nor a group folder holding run folders. "
                "Give folders made by `sigerec train` or `sigerec train --seeds`."
            )
        folders.extend(inside)
    return folders


def finished_summary(run: RunDirectory) -> dict[str, Any]:
    """A run's ``summary.json``; an unfinished run is an error that says how to finish it."""
    summary = run.read_summary()
    if summary is None:
        raise SigerecError(
            f"{run.path}: the run has not finished (no summary.json). Resume it with "
            f"`sigerec train --resume {run.path}`."
        )
    return summary


def _split_values(run: RunDirectory, summary: dict[str, Any], metrics: Sequence[str], split: str) -> dict[str, float]:
    values = summary.get(split, {})
    for metric in metrics:
        if metric not in values:
            raise SigerecError(f"{run.path}: metric '{metric}' is not in the {split} results ({', '.join(values)}).")
    return {metric: values[metric] for metric in metrics}


def run_row(run_path: str | Path, metrics: Sequence[str] = DEFAULT_METRICS, split: str = "test") -> dict[str, Any]:
    """One table row from a finished run's ``summary.json``."""
    run = RunDirectory.existing(run_path)
    summary = finished_summary(run)
    row: dict[str, Any] = {"run": run.path.name, "model": summary["model"], "dataset": summary["dataset"]}
    for metric, value in _split_values(run, summary, metrics, split).items():
        row[f"{split} {metric}"] = value
    row["best epoch"] = summary["best_epoch"]
    row["epochs"] = summary["epochs"]
    row["s/epoch"] = summary["train_seconds_per_epoch"]
    row["eval s"] = summary["eval_seconds"]
    return row


def candidate_rows(run_path: str | Path, metrics: Sequence[str] = DEFAULT_METRICS) -> list[dict[str, Any]]:
    """The test metrics of a finished run over each candidate set it was tested on: every item,
    and for a dataset with cold items the cold and the warm items only, with how many test users
    each set evaluated (users without a held-out item in a set are skipped for it)."""
    run = RunDirectory.existing(run_path)
    summary = finished_summary(run)
    users = summary.get("candidate_users", {})
    rows = []
    for candidate_set, split in (("all", "test"), ("cold", "test_cold"), ("warm", "test_warm")):
        if split not in summary:
            continue
        row: dict[str, Any] = {"run": run.path.name, "model": summary["model"], "candidates": candidate_set}
        row["test users"] = users.get(split, {}).get("evaluated", "")
        for metric, value in _split_values(run, summary, metrics, split).items():
            row[f"test {metric}"] = value
        rows.append(row)
    return rows


# --- groups of runs that differ only in their seed ------------------------------------------


@dataclass
class RunGroup:
    """Finished runs of one model on one dataset with the same settings (all but ``seed``)."""

    model: str
    dataset: str
    settings: dict[str, Any]  # model_params and the training settings other than seed
    runs: list[RunDirectory] = field(default_factory=list)
    values: list[dict[str, float]] = field(default_factory=list)  # per run: metric -> value on the split


def run_settings(run: RunDirectory) -> dict[str, Any]:
    """What makes two runs the same experiment: every setting except the seed. A setting the
    run's version did not have yet counts at this version's default (what the run trained with),
    so runs saved before and after an upgrade still compare as one experiment."""
    config = run.read_config()
    defaults = _default_settings(config.get("model"))
    training = {**defaults.get("training", {}), **config.get("training", {})}
    training.pop("seed", None)
    return {**defaults.get("model_params", {}), **config.get("model_params", {}), **training}


@functools.cache
def _default_settings(model: str | None) -> dict[str, Any]:
    """This version's defaults for ``model`` in the saved shape; empty for a model it lacks.
    Resolved once per model, not once per run folder (read only: callers copy from it)."""
    from sigerec.config import resolve_run_config
    from sigerec.models import get_model_class

    try:
        model_class = get_model_class(str(model))
        layers = [("defaults", dict(model_class.training_defaults))]
        return resolve_run_config(model_class.name, "", model_class.config_class, layers).to_dict()
    except SigerecError:
        return {}


def group_runs(run_paths: Sequence[str | Path], metrics: Sequence[str], split: str) -> list[RunGroup]:
    """Finished runs grouped by (model, dataset, settings), in the order first seen; a folder
    given twice counts once."""
    groups: dict[tuple[str, str, str], RunGroup] = {}
    seen: set[Path] = set()
    for path in run_paths:
        run = RunDirectory.existing(path)
        if run.path.resolve() in seen:
            continue
        seen.add(run.path.resolve())
        summary = finished_summary(run)
        settings = run_settings(run)
        key = (summary["model"], summary["dataset"], json.dumps(settings, sort_keys=True))
        group = groups.setdefault(key, RunGroup(summary["model"], summary["dataset"], settings))
        group.runs.append(run)
        group.values.append(_split_values(run, summary, metrics, split))
    return list(groups.values())


def group_per_user(group: RunGroup, metric: str):
    """Each test user's ``metric`` averaged over the group's runs (a pandas Series by user), or
    None when a run has no per-user file (runs trained before sigerec saved one)."""
    import pandas as pd

    tables = [run.read_per_user_test() for run in group.runs]
    if any(table is None or metric not in table for table in tables):
        return None
    return pd.concat([table[["user", metric]] for table in tables]).groupby("user")[metric].mean()


@dataclass
class GroupComparison:
    """The groups, each group's mean and std per metric, and each group's test against the best."""

    groups: list[RunGroup]
    metrics: tuple[str, ...]
    split: str
    summaries: list[dict[str, tuple[float, float | None]]]  # per group: metric -> (mean, std)
    # Per group: "best", a Holm-adjusted p-value, "n/a" (no per-user metrics) or None (nothing
    # to compare with on its dataset, or no test on this split).
    p_values: list[float | str | None]
    tested: bool  # whether any dataset has two groups to test
    notes: list[str]


def compare_groups(run_paths: Sequence[str | Path], metrics: Sequence[str], split: str = "test") -> GroupComparison:
    """Group the runs, summarise each group and, per dataset with several groups, test the best
    group (highest mean of ``metrics[0]``) against each other group.

    The test is :func:`~sigerec.evaluation.significance.paired_wilcoxon` over the test users
    that both groups evaluated, each user's value averaged over a group's runs (seeds); the
    p-values of one dataset are Holm-corrected together. Runs save per-user metrics for the
    test split only, so ``split="valid"`` shows no p-values.
    """
    from sigerec.evaluation.significance import holm, paired_wilcoxon

    if split not in SPLITS:
        raise SigerecError(f"--split must be test or valid, got {split!r}.")
    if not metrics:
        raise SigerecError("--metrics: give at least one metric, e.g. --metrics recall@20,ndcg@20.")
    groups = group_runs(run_paths, metrics, split)
    summaries = [{m: mean_and_std([v[m] for v in g.values]) for m in metrics} for g in groups]
    p_values: list[float | str | None] = [None] * len(groups)
    notes = ["mean ± std: over a group's runs (seeds), sample standard deviation (ddof=1); one run shows its value."]
    key_metric = metrics[0]
    by_dataset: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        by_dataset.setdefault(group.dataset, []).append(index)
    compared = {dataset: members for dataset, members in by_dataset.items() if len(members) > 1}
    tested = bool(compared) and split == "test"
    if compared and split != "test":
        notes.append("no p-values: runs save per-user metrics for the test split only.")
    if tested:
        notes.append(
            f"p (Holm) vs best: two-sided paired Wilcoxon signed-rank test over the test users of "
            f"{key_metric} (each user's value averaged over a group's runs) against the group with "
            f"the highest mean {key_metric} on the same dataset, Holm-corrected across that dataset's groups."
        )
    for dataset, members in compared.items() if tested else ():
        best = max(members, key=lambda i: summaries[i][key_metric][0])  # the first of equal means
        p_values[best] = "best"
        best_users = group_per_user(groups[best], key_metric)
        raw: dict[int, float] = {}
        for index in members:
            if index == best:
                continue
            users = group_per_user(groups[index], key_metric)
            if best_users is None or users is None:
                p_values[index] = "n/a"
                continue
            paired = best_users.to_frame("best").join(users.to_frame("other"), how="inner")
            raw[index] = paired_wilcoxon(paired["best"], paired["other"])
        for index, p in zip(raw, holm(list(raw.values()))):
            p_values[index] = p
        if best_users is None:
            notes.append(
                f"n/a: the best group on {dataset} has runs without {PER_USER_TEST_FILE} (trained by an "
                "earlier sigerec), so no group there is tested; train them again to test."
            )
        elif any(p_values[i] == "n/a" for i in members):
            notes.append(
                f"n/a: runs without {PER_USER_TEST_FILE} (trained by an earlier sigerec) have no per-user "
                "metrics to pair; train them again to test."
            )
    notes = list(dict.fromkeys(notes))  # one note for the same reason on several datasets
    return GroupComparison(groups, tuple(metrics), split, summaries, p_values, tested, notes)


def _settings_label(group: RunGroup, groups: Sequence[RunGroup]) -> str:
    """The settings in which this group differs from the other groups of its model, ``key=value``."""
    same_model = [g.settings for g in groups if g.model == group.model]
    keys = sorted({k for settings in same_model for k in settings})
    varying = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in same_model}) > 1]
    return " ".join(f"{k}={group.settings.get(k)}" for k in varying)


def _format_p(p: float | str | None) -> str:
    if p is None or isinstance(p, str):
        return p or ""
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def comparison_rows(comparison: GroupComparison, style: str = "text") -> list[dict[str, str]]:
    """Table rows of a :class:`GroupComparison`: ``mean ± std`` cells, or for CSV separate mean
    and std columns and plain numbers (``best``/``n/a`` stay words, the p cell of the best
    group is empty in CSV)."""
    rows = []
    p_column = f"p (Holm) vs best {comparison.metrics[0]}"
    for group, summary, p in zip(comparison.groups, comparison.summaries, comparison.p_values):
        row = {
            "model": group.model,
            "dataset": group.dataset,
            "settings": _settings_label(group, comparison.groups),
            "runs": str(len(group.runs)),
        }
        for metric, (mean, std) in summary.items():
            column = f"{comparison.split} {metric}"
            if style == "csv":
                row[f"{column} mean"] = f"{mean:.10g}"
                row[f"{column} std"] = "" if std is None else f"{std:.10g}"
            else:
                row[column] = format_mean_std(mean, std)
        if comparison.tested:
            if style == "csv":
                row[p_column] = f"{p:.10g}" if isinstance(p, float) else ("" if p in (None, "best") else p)
            else:
                row[p_column] = _format_p(p)
        rows.append(row)
    return rows


def format_mean_std(mean: float, std: float | None, decimals: int | None = None) -> str:
    """``0.0512 ± 0.0031``, or the mean alone when there is no std (one run); both with the
    mean's decimals (4 below 1, else 2, as single values)."""
    if decimals is None:
        decimals = 4 if abs(mean) < 1 else 2
    return f"{mean:.{decimals}f}" if std is None else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def aggregate_rows(aggregate: dict[str, Any], metrics: Sequence[str] = DEFAULT_METRICS) -> list[dict[str, str]]:
    """A seed group's ``aggregate.json`` as rows: one per split, ``mean ± std`` of each metric."""
    best_epoch = format_mean_std(aggregate["best_epoch"]["mean"], aggregate["best_epoch"]["std"], decimals=1)
    # A run with other cut-offs (topk) shows its own first metrics.
    metrics = [m for m in metrics if m in aggregate["test"]] or list(aggregate["test"])[: len(metrics)]
    rows = []
    for split in SPLITS:
        row = {"split": split}
        for metric in metrics:
            row[metric] = format_mean_std(aggregate[split][metric]["mean"], aggregate[split][metric]["std"])
        rows.append({**row, "best epoch": best_epoch})
    return rows


def format_notes(notes: Sequence[str], style: str = "text") -> str:
    """Footnotes under a table: plain lines, or Markdown list items."""
    prefix = "- " if style == "markdown" else ""
    return "".join(f"{prefix}{note}\n" for note in notes)


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def format_table(rows: list[dict[str, Any]], style: str = "text") -> str:
    """Rows as aligned text, Markdown or CSV (all rows share the first row's columns)."""
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [[_format_cell(row.get(c, "")) for c in columns] for row in rows]
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buffer.getvalue()
    if style == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if style != "text":
        raise SigerecError(f"unknown table format '{style}'; use text, markdown or csv.")
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"
