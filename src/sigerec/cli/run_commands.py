"""Commands that train and inspect runs: train, evaluate, compare, models, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from sigerec.cli.errors import report_errors, warn
from sigerec.config import parse_set_options
from sigerec.errors import SigerecError
from sigerec.training.seeds import group_seeds, parse_seeds

console = Console()


def _progress(config, quiet: bool):
    from sigerec.training.progress import RichProgress, SilentProgress

    if quiet:
        return SilentProgress()
    return RichProgress(config.training.epochs, config.training.valid_metric)


def _announce(run_path: Path) -> None:
    typer.echo(f"run folder: {run_path} (resume with: sigerec train --resume {run_path})", err=True)


def _print_summary(run_path: Path, summary: dict) -> None:
    from sigerec.training.run_report import candidate_rows, format_table, run_row

    typer.echo(f"run folder: {run_path}")
    typer.echo(format_table([run_row(run_path)]), nl=False)
    if "test_cold" in summary:
        typer.echo(
            "\ntest over each candidate set (ranking restricted to it; users without a held-out item there skipped):"
        )
        typer.echo(format_table(candidate_rows(run_path)), nl=False)


@report_errors
def train_command(
    data: Annotated[
        str | None, typer.Option("--data", help="Dataset folder (MMRec format) or a built-in name: baby.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name, see `sigerec models`.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file of settings (MMRec key names).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: key=value (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 999, as MMRec).")] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds",
            help="Train once per seed, e.g. 1,2,3,4,5, into one group folder with aggregate.json "
            "(mean and std over seeds). Not with --seed or --resume; finish an interrupted group with "
            "--resume GROUP_DIR.",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Maximum number of epochs (default 1000).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu (default) or cuda.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder that receives the run folder.")] = Path("runs"),
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue an interrupted run folder or group folder (--seeds).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a model with early stopping on valid Recall@20, then test the best epoch.

    Example: sigerec train --data baby --model lightgcn --set n_layers=2 --seed 1

    Every run writes RUNS_DIR/<model>-<dataset>-<time>/ with config.yaml, metrics.jsonl,
    checkpoints/{best,last}.pt and summary.json. An interrupted run continues with
    `sigerec train --resume RUN_DIR` and ends with the same metrics.

    With --seeds 1,2,3 (e.g. sigerec train --data baby --model lightgcn --seeds 1,2,3) the runs
    are RUNS_DIR/<model>-<dataset>-seeds-<time>/seed-<n>/, and aggregate.json (mean and std over
    seeds) is written there when every seed has finished. After an interruption,
    `sigerec train --resume GROUP_DIR` finishes every seed and writes aggregate.json.

    A kill at any moment leaves a run folder that --resume finishes; a full disk stops with a
    message naming the file, and --resume continues once there is space.
    """
    from sigerec.training import runner

    if seeds is not None and (seed is not None or resume is not None):
        raise SigerecError(
            "--seeds trains one run per seed, so it goes with neither --seed (give one of the two) nor "
            "--resume (resume each seed's run folder on its own: sigerec train --resume RUN_DIR)."
        )
    if seeds is not None:
        _train_seeds(data, model, config, set_, parse_seeds(seeds), epochs, device, out, quiet)
        return
    if resume is not None and group_seeds(resume):
        _resume_seeds(resume, quiet)
        return
    if resume is not None:
        existing = runner.RunDirectory.existing(resume)
        if existing.read_summary() is not None:
            typer.echo(f"{existing.path}: the run had already finished; nothing to resume.")
        run_config = runner.load_run_config(existing)
        prepared = None if existing.read_summary() is not None else runner.prepare(run_config, warn=warn)
        with _progress(run_config, quiet) as progress:
            run, summary = runner.resume(resume, progress=progress, warn=warn, prepared=prepared)
    else:
        if data is None or model is None:
            raise SigerecError("give --data and --model (or --resume RUN_DIR); see `sigerec train --help`.")
        flags = {"seed": seed, "epochs": epochs, "device": device}
        run_config = runner.resolve_config(model, data, config, parse_set_options(set_ or []), flags)
        prepared = runner.prepare(run_config, warn=warn)  # refuse before a run folder or progress bar exists
        with _progress(run_config, quiet) as progress:
            run, summary = runner.train(
                run_config, out, progress=progress, warn=warn, announce=_announce, prepared=prepared
            )
    _print_summary(run.path, summary)


def _train_seeds(data, model, config, set_, seeds, epochs, device, out, quiet) -> None:
    from sigerec.training import runner

    if data is None or model is None:
        raise SigerecError("give --data and --model with --seeds; see `sigerec train --help`.")
    flags = {"epochs": epochs, "device": device}
    run_config = runner.resolve_config(model, data, config, parse_set_options(set_ or []), flags)

    def announce(group: Path) -> None:
        typer.echo(f"group folder: {group} (resume with: sigerec train --resume {group})", err=True)

    group, aggregate = runner.train_seeds(
        run_config, seeds, out, progress_factory=lambda c: _progress(c, quiet), warn=warn, announce=announce
    )
    _print_group(group, aggregate)


def _resume_seeds(group: Path, quiet: bool) -> None:
    from sigerec.training import runner

    group, aggregate = runner.resume_seeds(group, progress_factory=lambda c: _progress(c, quiet), warn=warn)
    _print_group(group, aggregate)


def _print_group(group: Path, aggregate: dict) -> None:
    from sigerec.training.run_report import aggregate_rows, format_table

    seeds = ", ".join(map(str, aggregate["seeds"]))
    typer.echo(f"group folder: {group} (seeds {seeds}; mean ± sample std over seeds)")
    typer.echo(format_table(aggregate_rows(aggregate)), nl=False)


@report_errors
def evaluate_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by `sigerec train`.")],
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    fmt: Annotated[str, typer.Option("--format", help="text, markdown or csv.")] = "text",
    candidates: Annotated[
        str,
        typer.Option(
            "--candidates",
            help="Items each user's ranking holds: all (default), cold (items without a training "
            "interaction that appear in valid or test: the item cold-start number) or warm (items with one).",
        ),
    ] = "all",
    cold_item_rule: Annotated[
        str | None,
        typer.Option(
            help="Score cold items with this rule instead of the run's (e.g. none, warm_neighbours): the same "
            "weights, another rule. Only models that can score cold items have one."
        ),
    ] = None,
    cold_item_norm: Annotated[
        str | None,
        typer.Option(help="With warm_neighbours: the cold vectors' length, mean or neighbours (see the model's docs)."),
    ] = None,
) -> None:
    """Re-evaluate a run's saved weights on valid and test (all metrics, all K).

    With --candidates cold (or warm) each ranking holds only the cold (warm) items, training items
    still masked, and only a user's held-out items among them count; users without any are skipped
    and counted in the 'users' and 'skipped users' columns.

    Example: sigerec evaluate runs/lightgcn-baby-20261126-101500 --candidates cold
             sigerec evaluate runs/sige-ml100k-cold-<time> --candidates cold --cold-item-rule none
    """
    from sigerec.evaluation.candidates import ItemTemperature, check_candidate_set, users_with_relevant_items
    from sigerec.evaluation.metrics import metric_keys
    from sigerec.training.run_report import format_table
    from sigerec.training.runner import evaluate_run, load_trained_model
    from sigerec.training.trainer import evaluate_split

    if checkpoint not in {"best", "last"}:
        raise SigerecError(f"--checkpoint must be best or last, got {checkpoint!r}.")
    check_candidate_set(candidates)
    overrides = _cold_item_overrides(run_dir, {"cold_item_rule": cold_item_rule, "cold_item_norm": cold_item_norm})
    if candidates == "all":
        results = evaluate_run(run_dir, checkpoint, warn=warn, overrides=overrides)
        rows = [{"split": split, **metrics} for split, metrics in results.items()]
        typer.echo(format_table(rows, fmt), nl=False)
        return
    model, dataset, config = load_trained_model(run_dir, checkpoint, warn=warn, overrides=overrides)
    items = ItemTemperature.of(dataset).candidates(candidates)
    if len(items) == 0:
        raise SigerecError(
            f"--candidates {candidates}: dataset '{dataset.name}' has no {candidates} items (a cold item has no "
            "training interaction and appears in valid or test). Import the data with a cold-item split "
            "(sigerec data import ... --split cold-items) or use --candidates all."
        )
    rows = []
    for split in ("valid", "test"):
        evaluated, skipped = users_with_relevant_items(dataset.split(split), items)
        row = {"split": split, "candidates": candidates, "users": evaluated, "skipped users": skipped}
        # A split without held-out items in the set keeps empty cells (it is counted as skipped).
        no_metrics = dict.fromkeys(metric_keys(config.training.topk), "")
        row.update(evaluate_split(model, dataset, split, config, items) if evaluated else no_metrics)
        rows.append(row)
    typer.echo(format_table(rows, fmt), nl=False)


def _cold_item_overrides(run_dir: Path, settings: dict[str, str | None]) -> dict | None:
    """The cold-item scoring settings given, or a clear refusal for a model that has none."""
    settings = {key: value for key, value in settings.items() if value is not None}
    if not settings:
        return None
    from sigerec.config import config_fields
    from sigerec.models.registry import get_model_class
    from sigerec.training.run_directory import RunDirectory

    model = RunDirectory.existing(run_dir).read_config()["model"]
    if "cold_item_rule" not in config_fields(get_model_class(model).config_class):
        flag = "--" + next(iter(settings)).replace("_", "-")
        raise SigerecError(
            f"{flag}: {model} has no cold-item rule to change (ID-only models cannot score cold items; "
            "pop and contentknn rank them by their own formula); use it with a content model such as sige or vbpr."
        )
    return settings


@report_errors
def compare_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Finished run folders and group folders (--seeds).")],
    fmt: Annotated[str, typer.Option("--format", help="text, markdown or csv.")] = "text",
    metrics: Annotated[
        str, typer.Option(help="Comma-separated metrics; the first one picks the best group and is tested.")
    ] = "recall@10,recall@20,ndcg@10,ndcg@20",
    split: Annotated[str, typer.Option(help="test or valid.")] = "test",
    per_run: Annotated[bool, typer.Option("--per-run", help="One row per run, with timings (no grouping).")] = False,
) -> None:
    """A table of finished runs, one row per group of runs that differ only in their seed.

    Each row shows mean ± std over the group's runs and, when several groups share a dataset,
    the p-value of a paired Wilcoxon signed-rank test over test users of the first metric
    against the best group of that dataset, Holm-corrected. A group folder (made by
    `sigerec train --seeds`) stands for its run folders. --per-run prints one row per run with
    the best epoch and timings instead.

    Example: sigerec compare runs/bpr-baby-seeds-* runs/lightgcn-baby-seeds-* --format markdown
    """
    from sigerec.training.run_report import (
        compare_groups,
        comparison_rows,
        expand_run_folders,
        format_notes,
        format_table,
        run_row,
    )

    wanted = tuple(m.strip() for m in metrics.split(",") if m.strip())
    paths = expand_run_folders(run_dirs)
    if per_run:
        typer.echo(format_table([run_row(path, wanted, split) for path in paths], fmt), nl=False)
        return
    comparison = compare_groups(paths, wanted, split)
    typer.echo(format_table(comparison_rows(comparison, fmt), fmt), nl=False)
    if fmt == "csv":  # notes would break the CSV; they go to stderr
        typer.echo(format_notes(comparison.notes), nl=False, err=True)
    else:
        typer.echo("\n" + format_notes(comparison.notes, fmt), nl=False)


@report_errors
def models_command() -> None:
    """List the registered models, one line each: name and the first docstring line.

    Example: sigerec models
    """
    from sigerec.models import get_model_class, model_names

    for name in model_names():
        doc = (get_model_class(name).__doc__ or "").strip().splitlines()
        typer.echo(f"{name:<10} {doc[0] if doc else ''}")


@report_errors
def demo_command(
    epochs: Annotated[
        int | None,
        typer.Option(help="Epoch cap for both models (default: LightGCN 25, SIGE 10, to fit in about 3 minutes)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the demo's data and runs.")] = Path("runs"),
    users: Annotated[int, typer.Option(help="How many users' top-5 items to show.")] = 3,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train SIGE and LightGCN on the built-in Amazon Baby data with its real item text.

    Encodes the shipped titles (48.5% of the items) once, trains both models for a few epochs,
    prints their test metrics with how far each got, and a few users' top-5 items by SIGE, with
    titles. Example: sigerec demo --epochs 30
    """
    from sigerec.demo import DEMO_EPOCHS, demo_caption, demo_item_titles, prepare_demo_data, top_items
    from sigerec.training import runner
    from sigerec.training.run_report import format_table, run_row

    console.print("[bold]encoding the built-in Baby titles and descriptions (all-MiniLM-L6-v2, once)[/]")
    data = prepare_demo_data(out / "demo-data", warn=warn, quiet=quiet)
    rows, runs = [], {}
    for model, default_cap in DEMO_EPOCHS.items():
        cap = epochs or default_cap
        console.print(f"[bold]training {model} on the built-in Baby data ({cap} epochs at most)[/]")
        run_config = runner.resolve_config(model, str(data), flags={"epochs": cap})
        with _progress(run_config, quiet) as progress:
            run, _ = runner.train(run_config, out, progress=progress, warn=warn)
        rows.append(run_row(run.path))
        runs[model] = run.path
    console.print("\n" + demo_caption(runs), markup=False)
    typer.echo(format_table(rows, "text"), nl=False)

    model, dataset, _ = runner.load_trained_model(runs["sige"], warn=warn)
    titles = demo_item_titles()
    shown = [int(u) for u in np.flatnonzero(np.diff(dataset.test.indptr) > 0)[:users]]
    console.print("\n[bold]Top-5 by SIGE[/] (training items excluded; * = in the user's test items)")
    for user, ranked in zip(shown, top_items(model, dataset, shown, 5)):
        test_items = set(dataset.test.indices[dataset.test.indptr[user] : dataset.test.indptr[user + 1]].tolist())
        console.print(f"user {user} ({dataset.train.indptr[user + 1] - dataset.train.indptr[user]} training items)")
        for item, score in ranked:
            mark = "*" if item in test_items else " "
            console.print(
                f"  {mark} item {item:>5}  {score:7.3f}  {titles.get(item, '(no title in the data)')}",
                markup=False,
                no_wrap=True,
                overflow="ellipsis",
            )


def register_run_commands(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("compare")(compare_command)
    app.command("models")(models_command)
    app.command("demo")(demo_command)
