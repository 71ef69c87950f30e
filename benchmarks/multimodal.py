"""Train ID-only and multimodal recommenders with default settings on the datasets that have
REAL content features, and write one test-metric table per dataset into docs/benchmarks.md.

Example: python benchmarks/multimodal.py --datasets ml100k            (CPU)
         python benchmarks/multimodal.py --datasets baby-official,sports-official --device cuda --parallel 4
         python benchmarks/multimodal.py --ablation --datasets ml100k (SIGE ablation table)
         python benchmarks/multimodal.py --add-runs runs/x/sige-sports-*  (finished runs made
             with `sigerec train`, e.g. resumed after an interruption, added to the results)
         python benchmarks/multimodal.py --from-results   (only rewrite the docs)

The datasets come from `python benchmarks/prepare_data.py` (.bench_data/<dataset>). Every run
uses seed 999, MMRec's protocol (early stopping on valid Recall@20, test metrics of the best
valid epoch) and each model's default settings; `--set key=value` overrides a setting in
every run. Each finished run is merged into --results (benchmarks/results/multimodal.json, or
sige_ablation.json with --ablation): a row replaces the row of the same dataset, model, variant
and settings, and every other row is kept. So datasets and models can be run one command at a
time (say ml100k on a CPU and baby-official,sports-official on a GPU), and the docs' tables are
rewritten from the merged file after every command. Each row records the command that
reproduces it (run from the repository root; --out, --doc and --plot left out), the machine,
the git commit and the date. Models not registered in sigerec are skipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from common import (
    BENCH_DATA,
    REPO,
    RESULTS,
    add_output_options,
    default_order,
    describe_features,
    device_label,
    feature_sources,
    load_results,
    machine_description,
    markdown_table,
    merge_rows,
    provenance,
    provenance_list,
    train_in_subprocess,
    update_results,
    write_section,
)

SEED = 999
DEFAULT_MODELS = "bpr,lightgcn,vbpr,freedom,mgcn,lgmrec,bm3,alpharec,sige"
DEFAULT_DATASETS = "ml100k,ml100k-kg,baby-official,sports-official"  # prepare_data.py's default
# The order of the datasets in the docs' tables (others after them): ML-100k and its re-splits first.
TABLE_ORDER = "ml100k,ml100k-s1,ml100k-s2,ml100k-s3,ml100k-kg,baby-official,sports-official"
DOC_SECTION = "multimodal"
ABLATION_SECTION = "sige-ablation"
ABLATION_MODEL = "sige"
# The sections are appended at the end of the doc, so each carries its own heading.
DOC_HEADING = "## Multimodal models on real content features"
ABLATION_HEADING = "## SIGE ablation"
# SIGE ablation variants: name -> (label, settings overriding the full model). The keys are
# SIGEConfig's (src/sigerec/models/sige.py); adjust them here if that config changes.
ABLATION_VARIANTS = {
    "full": ("full SIGE", {}),
    "no-infusion": ("w/o infusion", {"infusion_alpha": 0}),
    "no-perturbation": ("w/o perturbation", {"perturbation": "none"}),
    "constant-noise": ("constant noise", {"perturbation": "constant"}),
    "no-anchor": ("w/o anchor InfoNCE", {"modality_alignment": "none"}),
    "pairwise-anchor": ("pairwise modality InfoNCE instead of anchor", {"modality_alignment": "pairwise"}),
    "no-align": ("w/o behaviour/semantics InfoNCE", {"align_weight": 0}),
    # The optimisation settings of docs/sige.md, "Why SIGE stalled": each one switched back.
    "exact-gradient": ("exact cosine gradients (sigerec 0.1)", {"cosine_gradient": "exact"}),
    "batch-rows": ("contrastive rows with repeats", {"contrastive_rows": "batch"}),
}


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``, passed on to ``sigerec train --set`` unchanged."""
    settings = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            sys.exit(f"--set {pair!r}: expected key=value, e.g. --set n_layers=2.")
        settings[key.strip()] = value.strip()
    return settings


def result_key(row: dict) -> tuple:
    """Rows with the same key replace each other when results are merged."""
    return (row["dataset"], row["model"], row.get("variant"), json.dumps(row.get("overrides", {}), sort_keys=True))


def merge_results(earlier: list[dict], new: list[dict]) -> list[dict]:
    """Earlier rows, each replaced by a new row with the same key, then the new rows not seen before."""
    return merge_rows(earlier, new, result_key)


def _order(names: list[str], wanted: str) -> list[str]:
    """``names`` in the order of the comma list ``wanted``, the others after them."""
    return sorted(names, key=lambda name: default_order(name, wanted))


def settings_label(overrides: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in overrides.items())


def dataset_tables(rows: list[dict], models: str, datasets: str) -> str:
    """One table per dataset, preceded by the feature files the runs used and their coverage.

    Valid Recall@20 comes first: settings are compared, and chosen, on it."""
    parts = []
    for dataset in _order(sorted({row["dataset"] for row in rows}), datasets):
        of_dataset = [row for row in rows if row["dataset"] == dataset]
        features = of_dataset[0].get("features") or ["no content features recorded"]
        parts.append(f"### {dataset}\n")
        parts.append("Content features:\n\n" + "\n".join(f"- {line}" for line in features) + "\n")
        table_rows = []
        for model in _order(sorted({row["model"] for row in of_dataset}), models):
            for row in (row for row in of_dataset if row["model"] == model):
                test = row["test"]
                name = model + (f" ({settings_label(row['overrides'])})" if row.get("overrides") else "")
                table_rows.append(
                    [name, f"{row['valid']['recall@20']:.4f}"]
                    + [f"{test[metric]:.4f}" for metric in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")]
                    + [row["best_epoch"], row["epochs"], f"{row['train_seconds_per_epoch']:.2f}"]
                    + [f"{row['peak_memory_mb']:.0f}", device_label(row)]
                )
        columns = ["model", "valid R@20", "test R@10", "test R@20", "test N@10", "test N@20", "best epoch", "epochs"]
        columns += ["s/epoch", "peak MB", "device"]
        parts.append(markdown_table(columns, table_rows) + "\n")
    return "\n".join(parts)


def valid_selected(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """For each (dataset, model), the row whose settings have the best valid Recall@20.

    Settings are chosen on validation data only; this is the row that a model's comparison
    with the others on test data must use."""
    chosen: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["dataset"], row["model"])
        if key not in chosen or row["valid"]["recall@20"] > chosen[key]["valid"]["recall@20"]:
            chosen[key] = row
    return chosen


def selected_table(rows: list[dict], models: str, datasets: str) -> str:
    """Test Recall@20 / NDCG@20 of each model's valid-selected settings, one column per
    dataset, the best of each column in bold; settings other than the defaults are named."""
    chosen = valid_selected(rows)
    names = _order(sorted({d for d, _ in chosen}), datasets)
    best = {
        (d, metric): max(row["test"][metric] for (dd, _), row in chosen.items() if dd == d)
        for d in names
        for metric in ("recall@20", "ndcg@20")
    }
    table_rows, notes = [], []
    for model in _order(sorted({m for _, m in chosen}), models):
        cells = [model]
        for dataset in names:
            row = chosen.get((dataset, model))
            if row is None:
                cells.append("")
                continue
            values = []
            for metric in ("recall@20", "ndcg@20"):
                text = f"{row['test'][metric]:.4f}"
                values.append(f"**{text}**" if row["test"][metric] == best[(dataset, metric)] else text)
            mark = ""
            if row.get("overrides"):
                notes.append(f"{model} on {dataset}: `{settings_label(row['overrides'])}`")
                mark = f" ({len(notes)})"
            cells.append(" / ".join(values) + mark)
        table_rows.append(cells)
    table = markdown_table(["model"] + [f"{d}: test R@20 / N@20" for d in names], table_rows)
    if notes:
        table += "\n\nSettings chosen on valid data: " + "; ".join(f"({i}) {n}" for i, n in enumerate(notes, 1)) + "."
    return table


def base_settings_groups(rows: list[dict]) -> list[dict]:
    """The distinct settings that ablation rows started from (``base_settings``; defaults
    first), so that each set of variants gets its own table."""
    groups: list[dict] = []
    for row in rows:
        base = row.get("base_settings", {})
        if not any(_same_settings(base, known) for known in groups):
            groups.append(base)
    return sorted(groups, key=lambda base: (len(base), settings_label(base)))


def _same_settings(first: dict, second: dict) -> bool:
    """Settings equal as values (0, 0.0 and "0" are the same setting; so are True and "true")."""
    return {k: _setting_value(v) for k, v in first.items()} == {k: _setting_value(v) for k, v in second.items()}


def _setting_value(value) -> str:
    """A setting as comparable text: numbers by value, everything else lower-case."""
    try:
        return repr(float(value)) if not isinstance(value, bool) else str(value).lower()
    except (TypeError, ValueError):
        return str(value).lower()


def ablation_table(rows: list[dict], settings: dict | None = None) -> str:
    """SIGE variants against the full model: test R@20 and N@20 with their differences, valid R@20.

    Only rows trained with exactly ``settings`` plus the variant's current overrides are shown,
    so results of an older variant definition never pass for the current one."""
    by_variant = {
        row["variant"]: row
        for row in rows
        if row.get("variant") in ABLATION_VARIANTS
        and _same_settings(row.get("overrides", {}), {**(settings or {}), **ABLATION_VARIANTS[row["variant"]][1]})
    }
    full = by_variant.get("full")
    table_rows = []
    for variant, (label, overrides) in ABLATION_VARIANTS.items():
        if variant not in by_variant:
            continue
        row = by_variant[variant]
        recall, ndcg = row["test"]["recall@20"], row["test"]["ndcg@20"]
        named = f"`{settings_label(overrides)}`" if overrides else ("base settings only" if settings else "defaults")
        cells = [label, named, f"{recall:.4f}", f"{ndcg:.4f}"]
        if full is None or variant == "full":
            cells += ["", ""]
        else:
            cells += [_difference(recall, full["test"]["recall@20"]), _difference(ndcg, full["test"]["ndcg@20"])]
        cells += [f"{row['valid']['recall@20']:.4f}", row["best_epoch"], row["epochs"]]
        table_rows.append(cells)
    columns = ["variant", "settings", "test R@20", "test N@20", "Δ R@20 vs full", "Δ N@20 vs full"]
    columns += ["valid R@20", "best epoch", "epochs"]
    return markdown_table(columns, table_rows)


def _difference(value: float, reference: float) -> str:
    relative = f" ({(value - reference) / reference:+.1%})" if reference else ""
    return f"{value - reference:+.4f}{relative}"


def provenance_lines(rows: list[dict], results: str = "multimodal.json") -> str:
    """How to reproduce the rows: the datasets to prepare, then each command with the machine,
    commit and date its rows were measured with; a loud note if any run was epoch-capped."""
    datasets = _order(sorted({row["dataset"] for row in rows}), TABLE_ORDER)
    caps = sorted({row["epoch_cap"] for row in rows if row.get("epoch_cap")})
    text = (
        f"Data: `python benchmarks/prepare_data.py --datasets {','.join(datasets)}`. Each command below, run "
        f"from the repository root, merges its runs into `benchmarks/results/{results}` (a run replaces the "
        "row of the same dataset, model and settings) and rewrites these tables from it; "
        "`python benchmarks/render_docs.py` rewrites them without training. "
        f"Seed {SEED}; default settings of each model unless a row names its overrides."
    )
    if caps:
        text += f" **Smoke run: epochs capped at {', '.join(map(str, caps))}; not a benchmark result.**"
    return text + "\n\n" + provenance_list(rows, describe_runs)


def describe_runs(rows: list[dict]) -> str:
    """``7 runs: bpr, lightgcn on baby-official`` (variants instead of models for the ablation)."""
    if all(row.get("variant") for row in rows):
        names = [variant for variant in ABLATION_VARIANTS if any(row["variant"] == variant for row in rows)]
    else:
        names = _order(sorted({row["model"] for row in rows}), DEFAULT_MODELS)
    datasets = _order(sorted({row["dataset"] for row in rows}), TABLE_ORDER)
    return f"{len(rows)} run{'s' * (len(rows) != 1)}: {', '.join(names)} on {', '.join(datasets)}"


def section_content(
    rows: list[dict], models: str = DEFAULT_MODELS, plot: str | None = None, results: str = "multimodal.json"
) -> str:
    """The docs section of the model comparison: how its rows were measured, the table of each
    model at its valid-selected settings, one table per dataset, and the plot (a path relative
    to the doc) if given."""
    content = (
        f"{DOC_HEADING}\n\n"
        + provenance_lines(rows, results)
        + "\n\nEach model at the settings with its best valid Recall@20 (defaults unless named):\n\n"
        + selected_table(rows, models, TABLE_ORDER)
        + "\n\nEvery run:\n\n"
        + dataset_tables(rows, models, TABLE_ORDER)
    )
    if plot:
        content += f"\n![test Recall@20 and NDCG@20 per model and dataset, valid-selected settings]({plot})\n"
    return content


def ablation_content(rows: list[dict], results: str = "sige_ablation.json") -> str:
    """The docs section of the SIGE ablation: how its rows were measured, then one table per
    dataset and set of base settings."""
    parts = [ABLATION_HEADING, provenance_lines(rows, results)]
    for dataset in _order(sorted({row["dataset"] for row in rows}), TABLE_ORDER):
        of_dataset = [row for row in rows if row["dataset"] == dataset]
        features = "; ".join(of_dataset[0].get("features", []))
        for base in base_settings_groups(of_dataset):
            label = f"`{settings_label(base)}`" if base else "defaults"
            parts.append(
                f"**{dataset}**, every variant starting from {label} ({features}):\n\n"
                + ablation_table(of_dataset, base)
            )
    return "\n\n".join(parts)


def plot_results(rows: list[dict], models: str, datasets: str, path: Path) -> bool:
    """Grouped bars: one panel per metric (test Recall@20, NDCG@20), one group per dataset,
    one bar per model at its valid-selected settings (:func:`valid_selected`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'sigerec[plot]'); no plot written.")
        return False
    plain = list(valid_selected(rows).values())
    names = _order(sorted({row["dataset"] for row in plain}), datasets)
    model_names = _order(sorted({row["model"] for row in plain}), models)
    scores = {(row["dataset"], row["model"]): row["test"] for row in plain}
    width = 0.8 / max(len(model_names), 1)
    figure, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.2 + 0.35 * len(names) * len(model_names)) * 2, 4))
    panels = [("recall@20", "test Recall@20"), ("ndcg@20", "test NDCG@20")]
    for axis, (metric, label) in zip(axes, panels):
        for index, model in enumerate(model_names):
            positions = [group + (index - (len(model_names) - 1) / 2) * width for group in range(len(names))]
            heights = [scores[(d, model)][metric] if (d, model) in scores else 0.0 for d in names]
            axis.bar(positions, heights, width, label=model, color=plt.get_cmap("tab10")(index % 10))
        axis.set_xticks(range(len(names)), names)
        axis.set_title(f"{label} (settings chosen on valid Recall@20)")
        axis.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=8, ncol=2)
    if any(row.get("epoch_cap") for row in plain):
        figure.suptitle("SMOKE RUN (epochs capped): not benchmark results", color="red")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def run_jobs(jobs: list[tuple[str, str, str | None, dict]], args, settings: dict) -> tuple[list[dict], list[str]]:
    """Train every (dataset, model, variant, overrides) job; returns the summaries and the failures."""
    summaries, failures = [], []
    extra = ["--device", args.device, "--seed", str(SEED)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    record = provenance(args.device)  # command, machine, commit and date of every row of this invocation

    def run(job):
        dataset, model, variant, overrides = job
        folder = args.data_root / dataset
        out = args.out / "-".join(filter(None, [dataset, model, variant]))
        summary = train_in_subprocess(folder, model, out, settings={**settings, **overrides}, extra=extra)
        return result_row(
            summary,
            folder,
            variant=variant,
            overrides={**settings, **overrides},
            base_settings=settings,  # the --set settings every variant starts from
            epoch_cap=args.epochs,
            **record,
        )

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = {pool.submit(run, job): job for job in jobs}
        for future in as_completed(futures):
            dataset, model, variant, _ = futures[future]
            name = f"{model}{f' [{variant}]' if variant else ''} on {dataset}"
            try:
                summary = future.result()
            except RuntimeError as error:
                failures.append(f"{name}: {error}")
                print(f"FAILED {name}:\n{error}", flush=True)
                continue
            summaries.append(summary)
            print(
                f"{name}: test recall@20 {summary['test']['recall@20']:.4f}, ndcg@20 "
                f"{summary['test']['ndcg@20']:.4f} at epoch {summary['best_epoch']} of {summary['epochs']}",
                flush=True,
            )
            update_results(args.results, [summary], result_key)
    return summaries, failures


def result_row(summary: dict, folder: Path, **provenance) -> dict:
    """A run's summary as a results row: keyed by the dataset folder's name (whatever the
    .inter file is called), captioned with the feature files it used, plus ``provenance``."""
    features = [describe_features(metadata) for metadata in used_feature_sources(folder, summary)]
    return {**summary, "dataset": folder.name, "features": features, **provenance}


def used_feature_sources(folder: Path, summary: dict) -> list[dict]:
    """The provenance of the feature files a run used: those its ``modalities`` setting names,
    or all of the folder's when it names none."""
    chosen = summary.get("modalities") or []
    return [m for m in feature_sources(folder) if not chosen or m["modality"] in chosen]


def collected_run_row(run_dir: Path, ablation: bool = False) -> dict:
    """A results row for a finished run trained outside this script (e.g. a run resumed with
    ``sigerec train --resume`` after an interruption): its summary, plus the settings in which
    its saved config differs from the model's defaults, as :func:`run_jobs` records them. With
    ``ablation`` the row is the SIGE variant whose settings those are (defaults: "full").

    Its ``command`` is the command of this script that trains the same configuration (same
    data, seed, settings and device) and adds the row, so that a reader can reproduce it; the
    ``sigerec train`` command and the run folder it came from go to ``invoked`` and ``note``."""
    from sigerec.config import read_config_file
    from sigerec.training.runner import resolve_config

    summary_path, config_path = run_dir / "summary.json", run_dir / "config.yaml"
    if not summary_path.exists():
        sys.exit(f"{run_dir}: no summary.json; finish the run first (sigerec train --resume {run_dir}).")
    summary = json.loads(summary_path.read_text())
    saved = read_config_file(config_path)
    model, data = saved.pop("model"), saved.pop("data")
    defaults = resolve_config(model, data).to_dict()
    default_settings = {**defaults["training"], **defaults["model_params"]}
    ignored = {"device", "epochs"}
    overrides = {
        key: value for key, value in saved.items() if key not in ignored and value != default_settings.get(key)
    }
    variant = None
    if ablation:
        matches = [name for name, (_, settings) in ABLATION_VARIANTS.items() if _same_settings(overrides, settings)]
        if model != "sige" or not matches:
            sys.exit(f"{run_dir}: not a SIGE ablation variant ({model}, settings {overrides or 'defaults'}).")
        variant = matches[0]
    epoch_cap = saved["epochs"] if saved["epochs"] != default_settings["epochs"] else None
    trained = train_command(model, data, saved["seed"], overrides, epoch_cap)
    device = saved.get("device") or "cpu"
    command = benchmark_command(model, data, saved["seed"], overrides, epoch_cap, device, variant)
    name = f"{model}{f' [{variant}]' if variant else ''} on {Path(data).name}"
    note = f"{name}: trained with `{trained}` (run folder {run_dir.name}) and added with `--add-runs`"
    note += "; the command listed trains the same configuration." if command else "."
    return result_row(
        summary,
        Path(data),
        variant=variant,
        overrides=overrides,
        base_settings={},
        epoch_cap=epoch_cap,
        command=command or trained,
        invoked=f"{trained} (run folder {run_dir.name}, added with --add-runs)",
        machine=machine_description() + " (collected: the machine that adds the run)",
        commit="not recorded (a run trained outside the benchmark scripts)",
        measured=run_date(run_dir),
        note=note,
    )


def run_date(run_dir: Path) -> str:
    """The date a run started, from its folder name (``<model>-<dataset>-YYYYMMDD-HHMMSS``), or
    the date its summary was written."""
    found = re.search(r"-(\d{4})(\d{2})(\d{2})-\d{6}$", run_dir.name)
    if found:
        return "-".join(found.groups())
    written = (run_dir / "summary.json").stat().st_mtime
    return datetime.datetime.fromtimestamp(written, datetime.UTC).date().isoformat()


def train_command(model: str, data: str, seed: int, overrides: dict, epoch_cap: int | None) -> str:
    """The `sigerec train` command that reproduces a run: its data (relative to the repository
    when inside it), seed, epoch cap and the settings that differ from the defaults."""
    parts = ["sigerec train", f"--data {_shown(Path(data))}", f"--model {model}", f"--seed {seed}"]
    parts += [f"--epochs {epoch_cap}"] if epoch_cap else []
    parts += [f"--set {key}={value}" for key, value in overrides.items() if key != "seed"]
    return " ".join(parts)


def benchmark_command(
    model: str,
    data: str,
    seed: int,
    overrides: dict,
    epoch_cap: int | None,
    device: str = "cpu",
    variant: str | None = None,
) -> str | None:
    """The command of this script that trains a run's configuration and adds its row (None when
    it cannot: the script trains with seed 999 only). The same config as ``sigerec train``
    resolves: both train ``sigerec train --data D --model M --seed S --set ...`` in one process."""
    if seed != SEED:
        return None
    folder = Path(data).resolve()
    parts = ["python benchmarks/multimodal.py"]
    if variant:
        parts += ["--ablation", f"--datasets {folder.name}", f"--variants {variant}"]
    else:
        parts += [f"--datasets {folder.name}", f"--models {model}"]
        parts += [f"--set {key}={value}" for key, value in overrides.items() if key != "seed"]
    if folder.parent != BENCH_DATA.resolve():
        parts.append(f"--data-root {_shown(folder.parent)}")
    parts += [f"--device {device}"] if device != "cpu" else []
    parts += [f"--epochs {epoch_cap}"] if epoch_cap else []
    return " ".join(parts)


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when inside it."""
    path = path.resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def registered_models(wanted: list[str]) -> list[str]:
    from sigerec.models import model_names

    known = set(model_names())
    for model in wanted:
        if model not in known:
            print(f"skipped {model}: not registered in sigerec yet (`sigerec models` lists the models).")
    return [model for model in wanted if model in known]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=BENCH_DATA, help="From prepare_data.py.")
    parser.add_argument("--datasets", default=None, help=f"Default {DEFAULT_DATASETS} (ablation: ml100k).")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--set", dest="settings", action="append", default=[], help="key=value for every run.")
    parser.add_argument("--ablation", action="store_true", help="Run the SIGE ablation variants instead.")
    parser.add_argument("--variants", default=",".join(ABLATION_VARIANTS), help="Ablation variants to run.")
    parser.add_argument("--plot", type=Path, default=None, help="Default: img/multimodal.png beside --doc.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="Epoch cap (smoke tests only).")
    parser.add_argument("--parallel", type=int, default=1, help="Runs at a time (e.g. several on one GPU).")
    parser.add_argument(
        "--add-runs", nargs="+", type=Path, default=[], help="Finished run folders to add to --results, then the docs."
    )
    add_output_options(
        parser, None, runs=REPO / "runs" / "multimodal", results_help="Default benchmarks/results/<section>.json."
    )
    args = parser.parse_args()
    args.datasets = args.datasets or ("ml100k" if args.ablation else DEFAULT_DATASETS)
    section = ABLATION_SECTION if args.ablation else DOC_SECTION
    args.results = args.results or RESULTS / f"{section.replace('-', '_')}.json"
    args.plot = args.plot or args.doc.parent / "img" / "multimodal.png"
    if args.epochs and not args.from_results and args.results.resolve().is_relative_to(REPO):
        sys.exit("--epochs is for smoke tests: give --results and --doc outside the repository (e.g. /tmp).")
    settings = parse_settings(args.settings)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]

    failures: list[str] = []
    if args.add_runs:
        added = [collected_run_row(run_dir, args.ablation) for run_dir in args.add_runs]
        update_results(args.results, added, result_key)
    elif not args.from_results:
        missing = [d for d in datasets if not (args.data_root / d).is_dir()]
        if missing:
            sys.exit(f"{', '.join(missing)}: not in {args.data_root}; run benchmarks/prepare_data.py first.")
        if args.ablation:
            unknown = [v for v in args.variants.split(",") if v not in ABLATION_VARIANTS]
            if unknown:
                sys.exit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(ABLATION_VARIANTS)}.")
            models = registered_models([ABLATION_MODEL])
            jobs = [
                (d, m, v, ABLATION_VARIANTS[v][1]) for d in datasets for m in models for v in args.variants.split(",")
            ]
        else:
            models = registered_models([m.strip() for m in args.models.split(",") if m.strip()])
            jobs = [(d, m, None, {}) for d in datasets for m in models]
        _, failures = run_jobs(jobs, args, settings)

    rows = load_results(args.results)
    if not rows:
        sys.exit(f"{args.results}: no results; nothing written to {args.doc}.")
    if args.ablation:
        write_section(args.doc, section, ablation_content(rows, args.results.name))
    else:
        # The tables list the models in one fixed order, whichever models this command ran.
        reference = None
        if plot_results(rows, DEFAULT_MODELS, TABLE_ORDER, args.plot):
            reference = os.path.relpath(args.plot.resolve(), args.doc.resolve().parent)
        write_section(args.doc, section, section_content(rows, DEFAULT_MODELS, reference, args.results.name))
    print(f"wrote {args.results} and the '{section}' section of {args.doc}")
    if failures:
        sys.exit(f"{len(failures)} run(s) failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
