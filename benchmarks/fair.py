"""The fair benchmark: every model gets the same tuning budget, then its selected settings run over several seeds.

Example: python benchmarks/fair.py --datasets ml100k --models lightgcn,sige --trials 2 --seeds 1,2,3

For each dataset and model: `sigerec tune` with the same trial count, pruner and seed (the
model's own search space; selection on valid Recall@20 only), timed; then the selected settings
(`best.yaml`) trained once per seed 1..K (`runner.train_seeds`). The table shows mean ± std of
test Recall@20 and NDCG@20 over the seeds, the paired Wilcoxon p-value (test users, Holm-corrected
per dataset) of SIGE against each other model, and the hours each search took; the plot has one
panel per dataset, with error bars. Work already done under --out (a finished study, a finished
seed group) is reused, so an interrupted benchmark continues where it stopped, and a group with
fewer of the seeds trains only those it lacks. Each invocation merges its rows into the results
file under a lock, so several (one per model, each with OMP_NUM_THREADS=1, say) can run at once.

Each row records the selected settings, and its test users' Recall@20 and NDCG@20 (each the mean
over the seeds) go to <results>_per_user/<dataset>/<model>.csv.gz beside the results file. The
p-values are computed from those files, so they can be checked, and a row added later (from
another machine, say) is tested against the others, without the run folders.

--table budget is the budget check: each model's finished fair study continued to --trials (16
by default) in its own run folders (runs/fair-budget; the fair study and its seed groups are
copied there first, so its trials are the first ones and a selection that does not change
reuses its seeds; TPE's random start stays the fair study's 2 draws), with its own
results file, docs section and plot (benchmarks/results/fair_budget.json, "fair-budget",
docs/img/fair-budget.png). Run the fair benchmark for those models first.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import common

SECTION = "fair"
BUDGET_SECTION = "fair-budget"  # the same benchmark under a larger budget (fair_budget.json)
DATASETS = "ml100k,ml100k-kg,baby-official"
MODELS = "lightgcn,vbpr,freedom,mgcn,lgmrec,bm3,alpharec,sige"
FOCUS = "sige"  # the model every other one is tested against
PLOT = common.REPO / "docs" / "img" / "fair.png"


@dataclass(frozen=True)
class Table:
    """Where one table of this benchmark keeps its results, run folders, docs section and plot,
    and the table whose studies its own continue (None: its studies start empty)."""

    results: Path
    runs: Path
    section: str
    plot: Path
    trials: int  # the default --trials: the budget
    continues: str | None = None


TABLES = {
    "fair": Table(common.RESULTS / "fair.json", common.REPO / "runs" / "fair", SECTION, PLOT, trials=4),
    "budget": Table(
        common.RESULTS / "fair_budget.json",
        common.REPO / "runs" / "fair-budget",
        BUDGET_SECTION,
        PLOT.with_name("fair-budget.png"),
        trials=16,
        continues="fair",
    ),
}


TIMING_FILE = "search_seconds.json"
TIMING_INTERVAL = 30.0  # seconds between saves of the running total while a search runs


def searched_seconds(out: Path) -> float:
    """The seconds the searches of ``out`` took so far, over every invocation."""
    timing_file = out / TIMING_FILE
    return json.loads(timing_file.read_text())["seconds"] if timing_file.exists() else 0.0


def search(data: Path, model: str, trials: int, out: Path, device: str = "cpu") -> None:
    """Run (or continue) the model's study, adding its time to the total in ``out``.

    The total is saved every TIMING_INTERVAL seconds while the search runs (each save a whole
    file, renamed into place), so an invocation that is killed (the search continues next time)
    loses at most that much of its time.
    """
    from sigerec.safe_write import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    before, started, done = searched_seconds(out), time.perf_counter(), threading.Event()

    def save() -> None:
        total = json.dumps({"seconds": before + time.perf_counter() - started})
        atomic_write(out / TIMING_FILE, lambda path: path.write_text(total))

    def keep_saving() -> None:
        while not done.wait(TIMING_INTERVAL):
            save()

    saver = threading.Thread(target=keep_saving, daemon=True)
    saver.start()
    try:
        common.run_sigerec(
            "tune",
            "--data",
            str(data),
            "--model",
            model,
            "--trials",
            str(trials),
            "--out",
            str(out),
            "--device",
            device,
        )
    finally:
        done.set()
        saver.join()  # its last save must not land after ours
        save()


def trial_rows(out: Path) -> list[dict]:
    """The trials table of the study in ``out``, best finished trial first (none before it ran)."""
    from sigerec.tuning.results import TRIALS_FILE

    if not (out / TRIALS_FILE).exists():
        return []
    with open(out / TRIALS_FILE) as handle:
        return list(csv.DictReader(handle))


def trial_states(out: Path) -> list[str]:
    """``finished`` or ``pruned`` for each trial of the study in ``out`` (none before it ran)."""
    return [row["state"] for row in trial_rows(out)]


def selected_settings(out: Path) -> dict:
    """The selected trial's settings (``best.yaml``, the file ``sigerec train --config`` takes)."""
    import yaml

    from sigerec.tuning.results import BEST_SETTINGS_FILE

    return yaml.safe_load((out / BEST_SETTINGS_FILE).read_text()) or {}


TESTED_METRICS = ("recall@20", "ndcg@20")


def per_user_folder(results: Path) -> Path:
    """Where the per-user test metrics of ``results``' rows go: ``fair.json`` -> ``fair_per_user/``."""
    return results.with_name(f"{results.stem}_per_user")


def seed_group_per_user(group: Path):
    """Each test user's TESTED_METRICS averaged over the seed group's runs (a pandas DataFrame by
    user), or None when a run has no per-user file."""
    import pandas as pd

    from sigerec.training.run_report import expand_run_folders, group_per_user, group_runs

    (runs,) = group_runs(expand_run_folders([group]), list(TESTED_METRICS), "test")
    columns = {metric: group_per_user(runs, metric) for metric in TESTED_METRICS}
    if any(values is None for values in columns.values()):
        return None
    return pd.DataFrame(columns).rename_axis("user").sort_index()


def save_per_user(group: Path, path: Path) -> None:
    """The seed group's per-user test metrics as CSV (gzipped without a name or time, so the
    same numbers give the same bytes)."""
    from sigerec.safe_write import atomic_write

    table = seed_group_per_user(group)
    if table is None:
        sys.exit(f"{group}: a run has no per-user test metrics; train it again.")
    data = gzip.compress(table.to_csv().encode(), mtime=0)  # no name or time in the header
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda target: target.write_bytes(data))


def per_user_of(row: dict):
    """A row's per-user test metrics (DataFrame by user): from its per-user file, else from its
    seed group's run folders when they are here; None when neither is."""
    import pandas as pd

    if row.get("per_user") and (common.REPO / row["per_user"]).is_file():
        return pd.read_csv(common.REPO / row["per_user"], index_col="user")
    if (common.REPO / row["group"] / "aggregate.json").is_file():
        return seed_group_per_user(common.REPO / row["group"])
    return None


def final_seeds(out: Path, data: Path, model: str, seeds: list[int], device: str = "cpu") -> Path:
    """The seed group of the selected settings: a finished one is reused, one with fewer of the
    seeds trains only the seeds it lacks."""
    from sigerec.tuning.results import train_final_seeds
    from sigerec.tuning.study import TuneSettings

    settings = TuneSettings(data=str(data), model=model, space={}, out=out, device=device)
    group, _ = train_final_seeds(settings, seeds)
    return group


def start_from(source: Path, out: Path) -> None:
    """Copy the finished study in ``source`` (its trials, search time and seed groups) to
    ``out``, where it is continued; nothing if ``out`` has a study already. Refuses a ``source``
    whose search or seeds have not finished: a trial left running there would be continued in
    ``source``'s own run folders."""
    import sqlite3
    from contextlib import closing

    from sigerec.safe_write import atomic_write
    from sigerec.tuning.results import FINAL_SEEDS_FOLDER, TRIALS_FILE
    from sigerec.tuning.study import STUDY_DB

    if (out / STUDY_DB).exists():
        return
    seeds_finished = any((source / FINAL_SEEDS_FOLDER).glob("*/aggregate.json"))
    if not ((source / STUDY_DB).exists() and (source / TRIALS_FILE).exists() and seeds_finished):
        sys.exit(f"{source}: no finished study and seeds to continue; run the fair benchmark for this model first.")
    out.mkdir(parents=True, exist_ok=True)
    if (source / TIMING_FILE).exists():
        shutil.copy2(source / TIMING_FILE, out / TIMING_FILE)
    shutil.copytree(source / FINAL_SEEDS_FOLDER, out / FINAL_SEEDS_FOLDER, dirs_exist_ok=True)

    def copy_study(path: Path) -> None:
        with closing(sqlite3.connect(source / STUDY_DB)) as origin, closing(sqlite3.connect(path)) as copy:
            origin.backup(copy)  # a consistent copy, whatever else reads the study meanwhile

    atomic_write(out / STUDY_DB, copy_study)  # last, and whole: a study here means the copy is done


def measure(dataset: str, model: str, args) -> dict:
    """One row: the search (timed, accumulated over invocations; a finished study is not
    started again) and the seed group's aggregate."""
    out = args.out / dataset / model
    if args.continues is not None:
        start_from(args.continues / dataset / model, out)
    if len(trial_states(out)) < args.trials:
        search(args.data_root / dataset, model, args.trials, out, args.device)
    group = final_seeds(out, args.data_root / dataset, model, args.seeds, args.device)
    aggregate = json.loads((group / "aggregate.json").read_text())
    trials = trial_rows(out)
    states = [trial["state"] for trial in trials]
    per_user = per_user_folder(args.results) / dataset / f"{model}.csv.gz"
    save_per_user(group, per_user)
    return {
        **common.provenance(args.device),
        "dataset": dataset,
        "model": model,
        "trials": len(states),
        "pruned": states.count("pruned"),
        "search_hours": searched_seconds(out) / 3600,
        "settings": selected_settings(out),
        "selected_valid": float(trials[0]["valid recall@20"]),  # the table lists the best finished trial first
        "seeds": aggregate["seeds"],
        "test": aggregate["test"],
        "valid": aggregate["valid"],
        "group": repo_relative(group),
        "per_user": repo_relative(per_user),
    }


def repo_relative(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(common.REPO)) if resolved.is_relative_to(common.REPO) else str(path)


def key(row: dict) -> tuple[str, str]:
    return row["dataset"], row["model"]


def table_order(row: dict) -> tuple:
    """Datasets and models in the order of the defaults (others after them, by name)."""
    return common.default_order(row["dataset"], DATASETS), common.default_order(row["model"], MODELS)


RECORD_FIELDS = ("command", "machine", "commit", "measured", "note")  # how and when a row was measured


def with_history(row: dict, earlier: dict | None) -> dict:
    """``row``, with a note when an earlier invocation measured part of it (its search, or
    some of its seeds in the same group) at another commit or date."""
    if earlier is None or earlier.get("group") != row["group"]:
        return row
    if (earlier["seeds"], earlier["trials"]) == (row["seeds"], row["trials"]):
        # Nothing was measured again: the row keeps its own record (what is read from the same
        # run folders, such as the settings and per-user file of rows from before them, is added).
        return {**row, **{field: earlier[field] for field in RECORD_FIELDS if field in earlier}}
    if (earlier.get("commit"), earlier.get("measured")) == (row["commit"], row["measured"]):
        return {**row, "note": earlier.get("note", [])}
    part = f"the search and seeds {', '.join(map(str, earlier['seeds']))}"
    note = (
        f"{row['dataset']} / {row['model']}: {part} were measured by `{earlier.get('command', 'not recorded')}` "
        f"at commit {earlier.get('commit', 'not recorded')} on {earlier.get('measured', 'not recorded')}; "
        f"the rest of the row at commit {row['commit']} on {row['measured']}."
    )
    return {**row, "note": note}


def rows_of(results: dict) -> list[dict]:
    """The rows of a results file, each with its own command, machine, commit and date (files
    from before rows carried them give every row the file's)."""
    shared = {field: results[field] for field in ("command", "machine", "commit", "measured") if field in results}
    return [{**shared, **row} for row in results.get("rows", [])]


def p_value_map(results: dict) -> dict[tuple[str, str, str], float]:
    """The p-values of a results file by (dataset, model, metric); files from before NDCG@20 was
    tested hold Recall@20's only, without a metric."""
    return {(p["dataset"], p["model"], p.get("metric", "recall@20")): p["p"] for p in results.get("p_values", [])}


def merge_into(path: Path, new_rows: list[dict], plot_path: Path | None = None) -> dict:
    """Merge ``new_rows`` into the results file under its lock, so that several invocations (one
    per model, say, running at once) add up to one table; p-values are recomputed per dataset
    over every row whose run folders are here. The plot goes to ``plot_path`` (default PLOT)."""
    plot_path = plot_path or PLOT
    with common.results_lock(path):
        earlier = json.loads(path.read_text()) if path.exists() else {}
        old_rows = rows_of(earlier)
        old_by_key = {key(row): row for row in old_rows}
        rows = common.merge_rows(old_rows, [with_history(row, old_by_key.get(key(row))) for row in new_rows], key)
        rows.sort(key=table_order)
        p_values = p_value_map(earlier)
        for dataset in {row["dataset"] for row in rows}:
            own = [row for row in rows if row["dataset"] == dataset]
            per_user = {row["model"]: per_user_of(row) for row in own}
            if any(table is None for table in per_user.values()):
                continue  # keep the p-values computed when every row's per-user metrics were here
            p_values = {k: p for k, p in p_values.items() if k[0] != dataset}
            for metric in TESTED_METRICS:
                tested = p_values_against({model: table[metric] for model, table in per_user.items()}, FOCUS)
                p_values.update({(dataset, model, metric): p for model, p in tested.items()})
        results = {
            "rows": rows,
            "p_values": [{"dataset": d, "model": m, "metric": k, "p": p} for (d, m, k), p in sorted(p_values.items())],
            "plot": plot_path.name if plot(rows, plot_path) else False,
        }
        common.replace_results(path, results)
    return results


def p_values_against(per_user: dict, focus: str) -> dict[str, float]:
    """Holm-corrected paired Wilcoxon p of ``focus`` against each other model, from each
    model's per-user values (pandas Series by user); {} without ``focus``."""
    from sigerec.evaluation.significance import holm, paired_wilcoxon

    if focus not in per_user:
        return {}
    others = [model for model in per_user if model != focus]
    raw = []
    for model in others:
        paired = per_user[focus].to_frame("a").join(per_user[model].to_frame("b"), how="inner")
        raw.append(paired_wilcoxon(paired["a"], paired["b"]))
    return dict(zip(others, holm(raw)))


def section_content(results: dict) -> str:
    rows = rows_of(results)
    p_values = p_value_map(results)

    def p_cell(row: dict, metric: str) -> str:
        if row["model"] == FOCUS:
            return "—"
        p = p_values.get((row["dataset"], row["model"], metric))
        return f"{p:.2g}" if p is not None else "n/a"

    table_rows = []
    for row in rows:
        test = row["test"]
        table_rows.append(
            [
                row["dataset"],
                row["model"],
                f"{row['trials']} ({row['pruned']} pruned)",
                ", ".join(map(str, row["seeds"])),
                f"{test['recall@20']['mean']:.4f} ± {test['recall@20']['std'] or 0:.4f}",
                f"{test['ndcg@20']['mean']:.4f} ± {test['ndcg@20']['std'] or 0:.4f}",
                p_cell(row, "recall@20"),
                p_cell(row, "ndcg@20"),
                f"{row['search_hours']:.2f}",
            ]
        )
    table = common.markdown_table(
        [
            "dataset",
            "model",
            "trials",
            "seeds",
            "test R@20 (mean ± std)",
            "test N@20",
            f"p {FOCUS} vs model, R@20",
            "p, N@20",
            "search h",
        ],
        table_rows,
    )
    trial_counts = sorted({row["trials"] for row in rows})
    budget = (
        f"Budget: {' or '.join(map(str, trial_counts))} trials per model (each model's own search space, seeded TPE, the "
        f"model's defaults as the first trial, percentile pruning: bottom quarter after 3 finished trials, from the 20th "
        f"evaluation), selection on valid Recall@20; the selected settings over the seeds listed (mean ± sample std). "
        f"p: two-sided paired Wilcoxon over test users of each metric (each user's value averaged over seeds), "
        f"Holm-corrected per dataset over the rows there so far (n/a while the dataset has no {FOCUS} row)."
    )
    plot_name = results.get("plot")
    plot_name = PLOT.name if plot_name is True else plot_name  # files from before the name was kept
    plot = f"\n\n![Fair benchmark](img/{plot_name})" if plot_name else ""
    parts = [budget, "Measured with:\n\n" + common.provenance_list(rows, describe_rows), table]
    return "\n\n".join(parts + settings_list(rows)) + plot


def setting_text(value) -> str:
    """A setting as the list shows it: floats to 4 significant digits (``--set`` takes them)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def settings_list(rows: list[dict]) -> list[str]:
    """The settings each model's search selected, as a list under the table (rows measured
    before rows recorded them are left out)."""
    chosen = [row for row in rows if "settings" in row]
    if not chosen:
        return []
    lines = [
        f"- {row['dataset']} / {row['model']} (valid R@20 {row['selected_valid']:.4f}): "
        + (
            ", ".join(f"`{name}={setting_text(value)}`" for name, value in sorted(row["settings"].items()))
            or "its defaults"
        )
        for row in chosen
    ]
    head = (
        "Selected settings (the best trial on valid Recall@20, as in the study's `best.yaml`, which "
        "`sigerec train --config` takes); each row's per-user test metrics, from which the p-values are "
        f"computed, are in `{Path(chosen[0]['per_user']).parent.parent}/`:"
    )
    return [head + "\n\n" + "\n".join(lines)]


def describe_rows(rows: list[dict]) -> str:
    """Which rows one command measured, e.g. ``ml100k: lightgcn, sige``."""
    datasets: dict[str, list[str]] = {}
    for row in rows:
        datasets.setdefault(row["dataset"], []).append(row["model"])
    return "; ".join(f"{dataset}: {', '.join(models)}" for dataset, models in datasets.items())


def plot(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.8), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        own = [row for row in rows if row["dataset"] == dataset]
        means = [row["test"]["recall@20"]["mean"] for row in own]
        errors = [row["test"]["recall@20"]["std"] or 0.0 for row in own]
        colours = ["tab:red" if row["model"] == FOCUS else "tab:blue" for row in own]
        axis.bar([row["model"] for row in own], means, yerr=errors, capsize=3, color=colours)
        low = min(m - e for m, e in zip(means, errors))
        axis.set_ylim(max(0.0, low * 0.9), max(m + e for m, e in zip(means, errors)) * 1.03)
        axis.set_title(f"{dataset}: test Recall@20 (mean ± std)")
        axis.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=common.REPO / ".bench_data", help="From prepare_data.py.")
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument(
        "--trials", type=int, help="Trials per model, the same for every model (default: the --table's, 4 or 16)."
    )
    parser.add_argument("--seeds", default="1,2,3,4,5", help="Seeds of the selected settings.")
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda: where the searches and seeds train (the row names the GPU)."
    )
    parser.add_argument(
        "--table",
        choices=sorted(TABLES),
        default="fair",
        help="Which table: its results file, run folders, docs section and plot (fair: the fair benchmark; "
        "budget: the budget check).",
    )
    common.add_output_options(parser, None, results_help="Default: the --table's results file.")
    parser.add_argument("--out", type=Path, help="Run folders go here (default: the --table's).")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    table = TABLES[args.table]
    args.results, args.out = args.results or table.results, args.out or table.runs
    args.trials = args.trials or table.trials
    args.continues = TABLES[table.continues].runs if table.continues else None
    if args.continues is not None and args.out.resolve() == args.continues.resolve():
        sys.exit(f"--out {args.out}: the run folders of the table that --table {args.table} continues; give another.")
    if not args.from_results:
        datasets = [d for d in args.datasets.split(",") if d]
        missing = [d for d in datasets if not (args.data_root / d).is_dir()]
        if missing:
            sys.exit(f"{', '.join(missing)}: not in {args.data_root}; run benchmarks/prepare_data.py first.")
        for dataset in datasets:
            for model in filter(None, args.models.split(",")):
                merge_into(args.results, [measure(dataset, model, args)], table.plot)  # each row lands once measured
    common.write_section(args.doc, table.section, section_content(json.loads(args.results.read_text())))
    print(f"wrote {args.results} and the '{table.section}' section of {args.doc}")


if __name__ == "__main__":
    main()
