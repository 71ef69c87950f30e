"""Choose SIGE's defaults on validation data across several datasets, and check that they hold
on a dataset they were not chosen on (leave-one-dataset-out).

Example: python benchmarks/sige_defaults.py --candidates unit,unit-w0.1 --datasets ml100k,baby-official
         python benchmarks/sige_defaults.py --from-results        (only rewrite the tables)

Each candidate is a full set of SIGE's contrastive-training settings (named below, every key
given explicitly, so a row keeps its meaning when the defaults change). Every (candidate,
dataset) run is trained as `benchmarks/multimodal.py` trains (seed 999, MMRec's protocol) and
stored in benchmarks/results/sige_defaults.json. The baselines are the rows of
benchmarks/results/multimodal.json trained at their defaults (run them with multimodal.py).

Selection uses VALID Recall@20 only. On each dataset a candidate is ranked among the baselines
(rank 1: above all of them); candidates are ordered by their mean rank over the datasets, ties
broken by the mean ratio of their valid Recall@20 to the best baseline's. Leave-one-dataset-out:
for each dataset D, the candidate chosen on the other datasets is then read on D, against the
baselines, on valid and on test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import REPO, RESULTS, add_output_options, markdown_table, provenance_list, write_section
from multimodal import _order, load_results, run_jobs

SECTION = "sige-defaults"
SELECTION_DATASETS = "ml100k,ml100k-s1,ml100k-kg,baby-official,sports-official"
# ML-100k under split seeds the defaults were not chosen on (SIGE's rows come from multimodal.py).
CHECK_DATASETS = "ml100k-s2,ml100k-s3"
# The settings every candidate states explicitly (the others stay at SIGE's defaults).
_OLD = {
    "cosine_gradient": "exact",
    "contrastive_rows": "batch",
    "contrastive_warmup": 0,
    "pert_weight": 0.01,
    "anchor_weight": 0.01,
    "align_weight": 0.01,
    "temperature": 0.2,
}
CANDIDATES = {
    "exact": _OLD,  # the defaults before this selection
    "exact-align0.001": {**_OLD, "align_weight": 0.001},
    "exact-unique": {**_OLD, "contrastive_rows": "unique"},
    "exact-warmup10": {**_OLD, "contrastive_warmup": 10},
    "unit": {**_OLD, "cosine_gradient": "unit"},
    "unit-unique": {**_OLD, "cosine_gradient": "unit", "contrastive_rows": "unique"},
    "unit-w0.1": {**_OLD, "cosine_gradient": "unit", "pert_weight": 0.1, "anchor_weight": 0.1, "align_weight": 0.1},
    "unit-w0.001": {
        **_OLD,
        "cosine_gradient": "unit",
        "pert_weight": 1e-3,
        "anchor_weight": 1e-3,
        "align_weight": 1e-3,
    },
    "unit-tau0.5": {**_OLD, "cosine_gradient": "unit", "temperature": 0.5},
    "bounded": {**_OLD, "cosine_gradient": "bounded"},
}
# Unit gradients with unique rows (5x faster than batch rows on ML-100k), with one part changed.
_UNIT_UNIQUE = CANDIDATES["unit-unique"]
CANDIDATES.update(
    {
        "uu-no-infusion": {**_UNIT_UNIQUE, "infusion_alpha": 0.0},
        "uu-cosine-cooc": {**_UNIT_UNIQUE, "cooccurrence_weighting": "cosine"},
        "uu-no-perturbation": {**_UNIT_UNIQUE, "perturbation": "none"},
        "uu-no-anchor": {**_UNIT_UNIQUE, "modality_alignment": "none"},
        "uu-no-align": {**_UNIT_UNIQUE, "align_weight": 0.0},
        "uu-w0.003": {**_UNIT_UNIQUE, "pert_weight": 0.003, "anchor_weight": 0.003, "align_weight": 0.003},
        "uu-tau0.5": {**_UNIT_UNIQUE, "temperature": 0.5},
        "uu-bounded": {**_UNIT_UNIQUE, "cosine_gradient": "bounded"},
    }
)


def default_rows(path: Path) -> list[dict]:
    """The runs of ``path`` (multimodal.py's results) made at their model's defaults."""
    return [r for r in load_results(path) if not r.get("overrides") and not r.get("variant")]


def baseline_rows(path: Path, datasets: list[str]) -> dict[str, list[dict]]:
    """Each dataset's baseline runs at their defaults (every model but SIGE)."""
    rows = [r for r in default_rows(path) if r["model"] != "sige"]
    return {d: [r for r in rows if r["dataset"] == d] for d in datasets}


def rank_among(value: float, baselines: list[dict]) -> int:
    """1 + the number of baselines whose valid Recall@20 is at least ``value``."""
    return 1 + sum(b["valid"]["recall@20"] >= value for b in baselines)


def score_candidates(rows: list[dict], baselines: dict[str, list[dict]], datasets: list[str]) -> list[dict]:
    """Per candidate with a run on every dataset: its ranks, mean rank and mean ratio to the best baseline."""
    by_key = {(r["dataset"], r["variant"]): r for r in rows}
    scored = []
    for name in CANDIDATES:
        runs = [by_key.get((d, name)) for d in datasets]
        if any(run is None for run in runs) or any(not baselines[d] for d in datasets):
            continue
        ranks = [rank_among(run["valid"]["recall@20"], baselines[d]) for run, d in zip(runs, datasets)]
        ratios = [
            run["valid"]["recall@20"] / max(b["valid"]["recall@20"] for b in baselines[d])
            for run, d in zip(runs, datasets)
        ]
        scored.append(
            {"name": name, "ranks": ranks, "mean_rank": sum(ranks) / len(ranks), "ratio": sum(ratios) / len(ratios)}
        )
    return sorted(scored, key=lambda s: (s["mean_rank"], -s["ratio"]))


def selection_table(rows: list[dict], baselines: dict[str, list[dict]], datasets: list[str]) -> str:
    by_key = {(r["dataset"], r["variant"]): r for r in rows}
    scores = {s["name"]: s for s in score_candidates(rows, baselines, datasets)}
    table_rows = []
    for name in sorted(CANDIDATES, key=lambda n: (n not in scores, scores.get(n, {}).get("mean_rank", 0))):
        cells = [name]
        for dataset in datasets:
            run = by_key.get((dataset, name))
            if run is None:
                cells.append("")
                continue
            value = run["valid"]["recall@20"]
            rank = rank_among(value, baselines[dataset]) if baselines[dataset] else "?"
            cells.append(f"{value:.4f} ({rank}) ep {run['best_epoch']}")
        score = scores.get(name)
        cells += [f"{score['mean_rank']:.2f}", f"{score['ratio']:.3f}"] if score else ["", ""]
        table_rows.append(cells)
    best_cells = ["best baseline"]
    for dataset in datasets:
        if baselines[dataset]:
            best = max(baselines[dataset], key=lambda b: b["valid"]["recall@20"])
            best_cells.append(f"{best['valid']['recall@20']:.4f} ({best['model']})")
        else:
            best_cells.append("")
    table_rows.append(best_cells + ["", ""])
    columns = ["candidate"] + [f"{d}: valid R@20 (rank)" for d in datasets] + ["mean rank", "× best baseline"]
    return markdown_table(columns, table_rows)


def standing_table(results_path: Path, datasets: list[str]) -> str:
    """SIGE at its defaults against every baseline at theirs, on test, per dataset of
    ``results_path`` (benchmarks/multimodal.py's results), with its rank among all models."""
    rows = default_rows(results_path)
    table_rows = []
    for dataset in datasets:
        sige = next((r for r in rows if r["dataset"] == dataset and r["model"] == "sige"), None)
        others = [r for r in rows if r["dataset"] == dataset and r["model"] != "sige"]
        if sige is None or not others:
            continue
        recall, ndcg = sige["test"]["recall@20"], sige["test"]["ndcg@20"]
        best_recall = max(others, key=lambda r: r["test"]["recall@20"])
        best_ndcg = max(others, key=lambda r: r["test"]["ndcg@20"])
        rank = 1 + sum(r["test"]["recall@20"] > recall for r in others)
        gap = recall - best_recall["test"]["recall@20"]
        table_rows.append(
            [
                dataset,
                f"{recall:.4f} / {ndcg:.4f}",
                f"{sige['best_epoch']} of {sige['epochs']}",
                f"{best_recall['test']['recall@20']:.4f} ({best_recall['model']})",
                f"{best_ndcg['test']['ndcg@20']:.4f} ({best_ndcg['model']})",
                f"{rank} of {len(others) + 1}",
                f"{gap:+.4f}",
                ", ".join(sorted(r["model"] for r in others)),
            ]
        )
    columns = ["dataset", "SIGE test R@20 / N@20", "SIGE best epoch", "best baseline test R@20"]
    columns += ["best baseline test N@20", "SIGE's rank (test R@20)", "SIGE - best (R@20)", "baselines run"]
    return markdown_table(columns, table_rows)


def leave_one_out_table(rows: list[dict], baselines: dict[str, list[dict]], datasets: list[str]) -> str:
    """For each held-out dataset: the candidate chosen on the others, and how it does there."""
    by_key = {(r["dataset"], r["variant"]): r for r in rows}
    table_rows = []
    for held_out in datasets:
        others = [d for d in datasets if d != held_out]
        if not others:
            continue
        ranking = score_candidates(rows, baselines, others)
        ranking = [s for s in ranking if (held_out, s["name"]) in by_key]
        if not ranking or not baselines[held_out]:
            continue
        chosen = ranking[0]["name"]
        run = by_key[(held_out, chosen)]
        best_valid = max(baselines[held_out], key=lambda b: b["valid"]["recall@20"])
        best_test = max(baselines[held_out], key=lambda b: b["test"]["recall@20"])
        wins = run["test"]["recall@20"] > best_test["test"]["recall@20"]
        table_rows.append(
            [
                held_out,
                chosen,
                f"{run['valid']['recall@20']:.4f} / {best_valid['valid']['recall@20']:.4f} ({best_valid['model']})",
                f"{run['test']['recall@20']:.4f} / {best_test['test']['recall@20']:.4f} ({best_test['model']})",
                f"{run['test']['ndcg@20']:.4f}",
                "yes" if wins else f"no ({run['test']['recall@20'] - best_test['test']['recall@20']:+.4f})",
            ]
        )
    columns = ["held-out dataset", "chosen on the others", "valid R@20: SIGE / best baseline"]
    columns += ["test R@20: SIGE / best baseline", "SIGE test N@20", "SIGE above every baseline (test R@20)"]
    return markdown_table(columns, table_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=REPO / ".bench_data", help="From prepare_data.py.")
    parser.add_argument("--datasets", default=SELECTION_DATASETS)
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="Comma list of candidate names.")
    parser.add_argument("--baselines", type=Path, default=REPO / "benchmarks" / "results" / "multimodal.json")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel", type=int, default=1)
    add_output_options(
        parser, RESULTS / "sige_defaults.json", doc=REPO / "docs" / "sige.md", runs=REPO / "runs" / "sige-defaults"
    )
    args = parser.parse_args()
    args.epochs = None
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        sys.exit(f"unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}.")

    if not args.from_results:
        missing = [d for d in datasets if not (args.data_root / d).is_dir()]
        if missing:
            sys.exit(f"{', '.join(missing)}: not in {args.data_root}; run benchmarks/prepare_data.py first.")
        done = {(r["dataset"], r["variant"]) for r in load_results(args.results)}
        jobs = [(d, "sige", n, CANDIDATES[n]) for d in datasets for n in names if (d, n) not in done]
        _, failures = run_jobs(jobs, args, settings={})
        if failures:
            print(f"{len(failures)} run(s) failed: " + "; ".join(failures))

    write_section(args.doc, SECTION, section_content(load_results(args.results), args.baselines, datasets))
    print(f"wrote {args.results} and the '{SECTION}' section of {args.doc}")


def section_content(results: list[dict], baselines_path: Path, datasets: list[str] | None = None) -> str:
    """The ``sige-defaults`` section of docs/sige.md from the rows of sige_defaults.json."""
    rows = [r for r in results if r.get("variant") in CANDIDATES]
    shown = _order(sorted({r["dataset"] for r in rows} | set(datasets or [])), SELECTION_DATASETS)
    shown = [d for d in shown if d in set(SELECTION_DATASETS.split(","))]
    baselines = baseline_rows(baselines_path, shown)
    settings = "\n".join(f"- **{name}**: `{json.dumps(values)}`" for name, values in CANDIDATES.items())
    return "\n\n".join(
        [
            (
                f"Seed 999. Baselines: the default-settings rows of `{baselines_path.relative_to(REPO)}`. "
                "Measured with:\n\n" + provenance_list(rows, lambda group: f"{len(group)} run{'s' * (len(group) != 1)}")
            ),
            "Candidates (every other setting at SIGE's defaults):\n\n" + settings,
            (
                "Valid Recall@20 of each candidate, its rank among the baselines (1 = above all of them) "
                "and its best epoch; candidates ordered by mean rank:"
            ),
            selection_table(rows, baselines, shown),
            (
                "Leave one dataset out: the candidate with the best mean rank on the other datasets, "
                "read on the held-out one:"
            ),
            leave_one_out_table(rows, baselines, shown),
            (
                "SIGE at its defaults against every baseline at theirs (test; the rows of "
                f"`{baselines_path.relative_to(REPO)}`), on the selection datasets and on "
                f"{', '.join(CHECK_DATASETS.split(','))}, which no candidate was run on:"
            ),
            standing_table(baselines_path, SELECTION_DATASETS.split(",") + CHECK_DATASETS.split(",")),
        ]
    )


if __name__ == "__main__":
    main()
