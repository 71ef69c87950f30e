"""Item cold-start benchmark: how well each model recommends items nobody trained on.

Example: python benchmarks/cold_start.py                          (both datasets, every row)
         python benchmarks/cold_start.py --datasets ml100k-cold --models sige,pop
         python benchmarks/cold_start.py --from-results           (only rewrite the docs)

The datasets come from `python benchmarks/prepare_data.py --datasets ml100k-cold,baby-cold`:
an item cold-start split (LATTICE/MMHCL protocol, `sigerec data import --split cold-items`) of
ML-100k (ratings >= 4; text + genre features, 100% coverage) and of Amazon Baby's official pairs
(text features of the titled 48.5% of items; cold items drawn among titled items only), 20% of
the items held out with seed 0, half to valid and half to test. Every held-out interaction is
with a cold item, so the test metrics are "cold" (ranking among the cold items, the usual
cold-start number) and "all" (cold items ranked among every item, warm ones included); the
warm-only ranking has no held-out items by construction. What the warm items lose when cold
items compete with them shows on ml100k-mixed (`prepare_data.py`): ml100k-cold whose users' warm
interactions are also split 8:1:1, so valid and test hold both; there the epoch is chosen on the
all-item valid ranking and the warm-only ranking is reported too.

Every run uses seed 999, each model's default settings and `valid_candidates=cold`: early
stopping and the reported epoch follow valid Recall@20 over the cold items (the valid set's
items are all cold). Rows: every model that can score cold items, trained once with its default
rule (`cold_item_rule=warm_neighbours`) and the plain mean (`cold_item_norm=mean`, so the epoch
is not chosen in favour of the default norm); the same weights scored with the default
`cold_item_norm=neighbours` and with each of its other rules (`sigerec evaluate
--cold-item-rule/--cold-item-norm`, no retraining, so the rows of a model differ by that setting
alone; `--rescore` re-evaluates trained rows already in the results); SIGE with the epoch chosen
on the all-item valid ranking instead (skipped with --skip-variants); and the references
`contentknn` and `pop`. Results are merged into
benchmarks/results/cold_start.json (a row replaces the row of the same dataset, model and
settings) and docs/benchmarks.md's cold-start section is rewritten from it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from common import (
    BENCH_DATA,
    REPO,
    RESULTS,
    add_output_options,
    describe_features,
    feature_sources,
    load_results,
    markdown_table,
    provenance,
    provenance_list,
    train_in_subprocess,
    update_results,
    write_section,
)

SEED = 999
DATASETS = "ml100k-cold,baby-cold,ml100k-mixed"
SELECT_ON_COLD = {"valid_candidates": "cold"}
# Datasets whose valid and test hold warm items too: the epoch is chosen on the all-item valid
# ranking, and the warm-only ranking is reported as well.
MIXED = {"ml100k-mixed"}
# Trained rows (model, settings added to SELECT_ON_COLD), in table order; each model with its
# default rule (warm_neighbours where it has one).
# Content models train once, the epoch chosen with the plain mean (cold_item_norm=mean), and the
# same weights are then scored with the default norm (neighbours) and the other rules, so the
# rows of one model differ by the scoring setting alone and the default is not favoured.
PLAIN_MEAN = {"cold_item_norm": "mean"}
TRAINED = [
    ("sige", PLAIN_MEAN),
    ("mgcn", PLAIN_MEAN),
    ("freedom", PLAIN_MEAN),
    ("lgmrec", PLAIN_MEAN),
    ("bm3", PLAIN_MEAN),
    ("vbpr", PLAIN_MEAN),
    ("alpharec", PLAIN_MEAN),
    ("contentknn", {}),
    ("pop", {}),
    ("sige", {**PLAIN_MEAN, "valid_candidates": "all"}),  # the epoch chosen on the all-item valid ranking
]
# Scoring settings applied to a trained row's best checkpoint (they replace its own).
NEIGHBOURS_NORM = {"cold_item_norm": "neighbours"}  # the default
BEHAVIOUR, NONE = {"cold_item_rule": "behaviour_neighbours"}, {"cold_item_rule": "none"}
RESCORED = {
    "sige": [NEIGHBOURS_NORM, BEHAVIOUR, NONE],
    "mgcn": [NEIGHBOURS_NORM, BEHAVIOUR, NONE],
    "freedom": [NEIGHBOURS_NORM, NONE],
    "lgmrec": [NEIGHBOURS_NORM, NONE],
    "bm3": [NEIGHBOURS_NORM, NONE],
    "vbpr": [NEIGHBOURS_NORM, {"cold_item_rule": "content_factors"}, NONE],
    "alpharec": [NEIGHBOURS_NORM, {"cold_item_rule": "content_branch"}, NONE],
}
DOC_SECTION = "cold-start"
DOC_HEADING = "## Item cold-start"
INTRODUCTION = (
    "Can a model recommend an item that no one has interacted with yet? Produced by "
    "`python benchmarks/cold_start.py` (see its docstring for the protocol). The data are "
    "item cold-start splits: 20% of the items are held out with seed 0, and half of them "
    "go to valid, half to test. In ml100k-cold and baby-cold every held-out interaction is with such an "
    "item; ml100k-mixed also holds out 20% of each user's other interactions, so its test has warm "
    "items too. Columns:\n\n"
    "- **cold:** the test items ranked among the cold items only, the usual cold-start number.\n"
    "- **warm** (ml100k-mixed): the test items ranked among the warm items only.\n"
    "- **all:** the test items ranked among every item, warm and cold together, as a server ranks them.\n\n"
    "Settings: seed 999, every model's defaults, and `valid_candidates=cold`, so the epoch "
    "is chosen on valid cold Recall@20 (on ml100k-mixed: on the all-item valid ranking). Each content "
    "model is trained once, its epoch chosen with `cold_item_norm=mean`; the rows marked *same weights* "
    "score that checkpoint with another setting (`sigerec evaluate --cold-item-rule/--cold-item-norm`), "
    "so they differ by that setting alone. `cold_item_norm=neighbours` is the default. "
    "s/epoch was measured on a shared 2-core machine and is only indicative.\n"
)


def row_key(row: dict) -> tuple:
    return (row["dataset"], row["model"], json.dumps(row.get("overrides", {}), sort_keys=True))


def run_row(dataset: str, model: str, overrides: dict, out: Path, epochs: int | None) -> dict:
    """Train one row and return its results."""
    settings = {**({} if dataset in MIXED else SELECT_ON_COLD), **overrides}
    extra = ["--seed", str(SEED)] + (["--epochs", str(epochs)] if epochs else [])
    summary = train_in_subprocess(BENCH_DATA / dataset, model, out / dataset, settings, extra=extra)
    keep = ("best_epoch", "epochs", "train_seconds_per_epoch", "device", "torch_threads", "run_dir")
    return {
        "dataset": dataset,
        "model": model,
        "overrides": overrides,
        "valid_cold": summary.get("valid_cold", {}),
        # The summary's "valid" is the ranking the epoch was chosen on (cold here): re-evaluate.
        "valid_all": evaluate_in_subprocess(summary["run_dir"], "all", scoring_settings(overrides))["valid"],
        "test_cold": summary.get("test_cold", {}),
        "test_all": summary.get("test", {}),
        "test_warm": summary.get("test_warm"),
        "candidate_users": summary.get("candidate_users"),
        **{key: summary.get(key) for key in keep},
        "features": [describe_features(m) for m in feature_sources(BENCH_DATA / dataset)],
        **provenance(),
    }


def rescored_row(trained: dict, settings: dict) -> dict:
    """``trained``'s best weights scored with other cold-item settings (`sigerec evaluate
    --cold-item-rule/--cold-item-norm`): no training, so the rows differ by the settings alone."""
    metrics = {}
    scoring = scoring_settings({**trained["overrides"], **settings})
    for candidates in ("cold", "warm", "all") if trained["dataset"] in MIXED else ("cold", "all"):
        for split, values in evaluate_in_subprocess(trained["run_dir"], candidates, scoring).items():
            metrics[f"{split}_{candidates}"] = values
    return {
        **trained,
        "overrides": {**trained["overrides"], **settings},
        "rescored_from": trained["run_dir"],
        "valid_cold": metrics["valid_cold"],
        "valid_all": metrics["valid_all"],
        "test_cold": metrics["test_cold"],
        "test_all": metrics["test_all"],
        "test_warm": metrics.get("test_warm"),
        **provenance(),
    }


def scoring_settings(settings: dict) -> dict:
    """The cold-item settings among ``settings``: passed to every re-evaluation explicitly, so a
    run is scored as it was trained even if a default changed since."""
    return {key: value for key, value in settings.items() if key.startswith("cold_item_")}


def evaluate_in_subprocess(run_dir: str, candidates: str, settings: dict) -> dict[str, dict]:
    """``sigerec evaluate`` as a user runs it: {split: {metric: value}} from its CSV output."""
    command = [sys.executable, "-m", "sigerec.cli.main", "evaluate", run_dir, "--format", "csv"]
    command += ["--candidates", candidates]
    for key, value in settings.items():
        command += [f"--{key.replace('_', '-')}", value]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    return {row["split"]: {k: float(v) for k, v in row.items() if "@" in k and v != ""} for row in rows}


def rescore_existing(results: Path, datasets: list[str], models: str | None) -> None:
    """Complete the trained rows in ``results``: their all-item valid metrics and RESCORED rows,
    where missing (from the run folders; nothing is trained)."""
    wanted = set(models.split(",")) if models else None
    rows = load_results(results)
    done = {row_key(row) for row in rows if row.get("valid_all")}
    for trained in rows:
        if trained["dataset"] not in datasets or "rescored_from" in trained:
            continue
        if wanted is not None and trained["model"] not in wanted:
            continue
        if row_key(trained) not in done:
            scoring = scoring_settings(trained["overrides"])
            trained["valid_all"] = evaluate_in_subprocess(trained["run_dir"], "all", scoring)["valid"]
        others = RESCORED.get(trained["model"], []) if is_plain_training(trained["overrides"]) else []
        rescored = [
            rescored_row(trained, other)
            for other in others
            if row_key({**trained, "overrides": {**trained["overrides"], **other}}) not in done
        ]
        update_results(results, [trained, *rescored], row_key)


def is_plain_training(overrides: dict) -> bool:
    """A model's main trained row (not a variant such as another valid ranking)."""
    return overrides in ({}, PLAIN_MEAN)


def table_order(row: dict) -> tuple:
    """Models in TRAINED order: each model's trained row, its rescored rows, then variants."""
    models = list(dict.fromkeys(model for model, _ in TRAINED))
    overrides = row["overrides"]
    rank = 2 if "valid_candidates" in overrides else 1 if "rescored_from" in row else 0
    return (models.index(row["model"]) if row["model"] in models else len(models), rank, json.dumps(overrides))


def tables(rows: list[dict]) -> str:
    parts = [
        DOC_HEADING + "\n",
        INTRODUCTION,
    ]
    for dataset in [d for d in DATASETS.split(",") if any(r["dataset"] == d for r in rows)]:
        of_dataset = [r for r in rows if r["dataset"] == dataset]
        parts.append(f"### {dataset}\n")
        parts.append("Content features:\n\n" + "\n".join(f"- {line}" for line in of_dataset[0]["features"]) + "\n")
        of_dataset.sort(key=table_order)
        with_warm = dataset in MIXED
        table = []
        for row in of_dataset:
            settings = ", ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "defaults"
            settings += " (same weights)" if "rescored_from" in row else ""
            valid = [(row.get(key) or {}).get("recall@20") for key in ("valid_cold", "valid_all")]
            tested = ["test_cold"] + (["test_warm"] if with_warm else []) + ["test_all"]
            table.append(
                [row["model"], settings, *(f"{value:.4f}" if value is not None else "" for value in valid)]
                + [f"{(row.get(key) or {}).get(m, 0):.4f}" for key in tested for m in ("recall@20", "ndcg@20")]
                + [row["best_epoch"], row["epochs"], f"{row['train_seconds_per_epoch'] or 0:.2f}"]
            )
        columns = ["model", "settings", "valid cold R@20", "valid all R@20", "cold R@20", "cold N@20"]
        columns += (["warm R@20", "warm N@20"] if with_warm else []) + ["all R@20", "all N@20"]
        parts.append(markdown_table(columns + ["best epoch", "epochs", "s/epoch"], table) + "\n")
    parts.append(provenance_list(rows))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--models", default=None, help="Only rows of these models (comma list).")
    parser.add_argument("--epochs", type=int, default=None, help="Cap on epochs (default: the protocol's).")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="No training: complete the trained rows in --results (all-item valid metrics, RESCORED rows).",
    )
    parser.add_argument("--skip-variants", action="store_true", help="Only the defaults rows (and their rules).")
    add_output_options(parser, RESULTS / "cold_start.json", runs=REPO / "runs" / "cold_start")
    args = parser.parse_args()

    if args.rescore:
        rescore_existing(args.results, args.datasets.split(","), args.models)
    elif not args.from_results:
        models = set(args.models.split(",")) if args.models else None
        for dataset in args.datasets.split(","):
            if not (BENCH_DATA / dataset).is_dir():
                sys.exit(f"{BENCH_DATA / dataset}: missing; run python benchmarks/prepare_data.py --datasets {dataset}")
            for model, overrides in TRAINED:
                if models is not None and model not in models:
                    continue
                if not is_plain_training(overrides) and args.skip_variants:
                    continue
                trained = run_row(dataset, model, overrides, args.out, args.epochs)
                others = RESCORED.get(model, []) if is_plain_training(overrides) else []
                rows = [trained] + [rescored_row(trained, other) for other in others]
                for row in rows:
                    print(f"{dataset} {model} {row['overrides']}: cold R@20 {row['test_cold'].get('recall@20', 0):.4f}")
                update_results(args.results, rows, row_key)
    write_section(args.doc, DOC_SECTION, tables(load_results(args.results)))


if __name__ == "__main__":
    main()
