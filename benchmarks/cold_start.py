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
warm-only ranking has no held-out items by construction.

Every run uses seed 999, each model's default settings and `valid_candidates=cold`: early
stopping and the reported epoch follow valid Recall@20 over the cold items (the valid set's
items are all cold). Rows: every model that can score cold items with its default rule
(`cold_item_rule=warm_neighbours`), the other rules of SIGE, VBPR and AlphaRec, SIGE selected on
the all-item valid ranking, and the references `contentknn` and `pop`. Results are merged into
benchmarks/results/cold_start.json (a row replaces the row of the same dataset, model and
settings) and docs/benchmarks.md's cold-start section is rewritten from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import (
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
BENCH_DATA = REPO / ".bench_data"
DATASETS = "ml100k-cold,baby-cold"
SELECT_ON_COLD = {"valid_candidates": "cold"}
# (model, settings) per row, in table order; the settings add to SELECT_ON_COLD.
ROWS = [
    ("sige", {}),
    ("sige", {"cold_item_rule": "behaviour_neighbours"}),
    ("sige", {"cold_item_rule": "none"}),
    ("sige", {"valid_candidates": "all"}),
    ("mgcn", {}),
    ("freedom", {}),
    ("lgmrec", {}),
    ("bm3", {}),
    ("vbpr", {}),
    ("vbpr", {"cold_item_rule": "content_factors"}),
    ("alpharec", {}),
    ("alpharec", {"cold_item_rule": "content_branch"}),
    ("contentknn", {}),
    ("pop", {}),
]
DOC_SECTION = "cold-start"
DOC_HEADING = "## Item cold-start"
INTRODUCTION = (
    "Can a model recommend an item that no one has interacted with yet? Produced by "
    "`python benchmarks/cold_start.py` (see its docstring for the protocol). The data are "
    "item cold-start splits: 20% of the items are held out with seed 0, and half of them "
    "go to valid, half to test. Every held-out interaction is with such an item. Columns:\n\n"
    "- **cold:** the test items ranked among the cold items only, the usual cold-start number.\n"
    "- **all:** the test items ranked among every item, warm ones included.\n\n"
    "Settings: seed 999, every model's defaults, and `valid_candidates=cold`, so the epoch "
    "is chosen on valid cold Recall@20. The rule column is the model's `cold_item_rule`.\n"
)


def row_key(row: dict) -> tuple:
    return (row["dataset"], row["model"], json.dumps(row.get("overrides", {}), sort_keys=True))


def run_row(dataset: str, model: str, overrides: dict, out: Path, epochs: int | None) -> dict:
    settings = {**SELECT_ON_COLD, **overrides}
    extra = ["--seed", str(SEED)] + (["--epochs", str(epochs)] if epochs else [])
    summary = train_in_subprocess(BENCH_DATA / dataset, model, out / dataset, settings, extra=extra)
    keep = ("best_epoch", "epochs", "train_seconds_per_epoch", "device", "torch_threads")
    return {
        "dataset": dataset,
        "model": model,
        "overrides": overrides,
        "valid_cold": summary.get("valid_cold", {}),
        "test_cold": summary.get("test_cold", {}),
        "test_all": summary.get("test", {}),
        "test_warm": summary.get("test_warm"),
        "candidate_users": summary.get("candidate_users"),
        **{key: summary.get(key) for key in keep},
        "features": [describe_features(m) for m in feature_sources(BENCH_DATA / dataset)],
        **provenance(),
    }


def tables(rows: list[dict]) -> str:
    parts = [
        DOC_HEADING + "\n",
        INTRODUCTION,
    ]
    for dataset in [d for d in DATASETS.split(",") if any(r["dataset"] == d for r in rows)]:
        of_dataset = [r for r in rows if r["dataset"] == dataset]
        parts.append(f"### {dataset}\n")
        parts.append("Content features:\n\n" + "\n".join(f"- {line}" for line in of_dataset[0]["features"]) + "\n")
        order = {(m, json.dumps(o, sort_keys=True)): i for i, (m, o) in enumerate(ROWS)}
        of_dataset.sort(key=lambda r: order.get((r["model"], json.dumps(r["overrides"], sort_keys=True)), len(order)))
        table = []
        for row in of_dataset:
            cold, every = row["test_cold"], row["test_all"]
            settings = ", ".join(f"{k}={v}" for k, v in row["overrides"].items())
            table.append(
                [row["model"], settings or "defaults", f"{row['valid_cold'].get('recall@20', 0):.4f}"]
                + [f"{cold.get(m, 0):.4f}" for m in ("recall@20", "ndcg@20")]
                + [f"{every.get(m, 0):.4f}" for m in ("recall@20", "ndcg@20")]
                + [row["best_epoch"], row["epochs"], f"{row['train_seconds_per_epoch'] or 0:.2f}"]
            )
        columns = ["model", "settings", "valid cold R@20", "cold R@20", "cold N@20", "all R@20", "all N@20"]
        parts.append(markdown_table(columns + ["best epoch", "epochs", "s/epoch"], table) + "\n")
    parts.append(provenance_list(rows))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--models", default=None, help="Only rows of these models (comma list).")
    parser.add_argument("--epochs", type=int, default=None, help="Cap on epochs (default: the protocol's).")
    add_output_options(parser, RESULTS / "cold_start.json", runs=REPO / "runs" / "cold_start")
    args = parser.parse_args()

    if not args.from_results:
        models = set(args.models.split(",")) if args.models else None
        for dataset in args.datasets.split(","):
            if not (BENCH_DATA / dataset).is_dir():
                sys.exit(f"{BENCH_DATA / dataset}: missing; run python benchmarks/prepare_data.py --datasets {dataset}")
            for model, overrides in ROWS:
                if models is None or model in models:
                    row = run_row(dataset, model, overrides, args.out, args.epochs)
                    print(f"{dataset} {model} {overrides}: cold R@20 {row['test_cold'].get('recall@20', 0):.4f}")
                    update_results(args.results, [row], row_key)
    write_section(args.doc, DOC_SECTION, tables(load_results(args.results)))


if __name__ == "__main__":
    main()
