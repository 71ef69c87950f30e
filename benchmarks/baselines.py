"""Train BPR and LightGCN with default settings on Amazon Baby, Sports and Clothing and write
the test-metric table into docs/benchmarks.md.

Example: python benchmarks/baselines.py                                  (CPU, one run at a time)
         python benchmarks/baselines.py --device cuda --parallel 6       (GPU, six runs at once)
         python benchmarks/baselines.py --datasets sports --models lightgcn   (one row)
         python benchmarks/baselines.py --from-results                    (only rewrite the table)

Runs use ../shared/data (the LATTICE 8:1:1 splits), seed 999, early stopping on valid
Recall@20 (patience 20), and report test metrics at the best valid epoch. No content
features are involved: these are ID-only models.

CPU runs go to benchmarks/results/baselines_cpu.json and the "baselines-cpu" section of the
docs, GPU runs to baselines.json and the "baselines" section. Each finished run is merged into
that file (it replaces the row of the same dataset and model; other rows are kept), with the
command that reproduces it, the machine, the git commit and the date.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from common import (
    DEFAULT_DATA_ROOT,
    REPO,
    RESULTS,
    add_output_options,
    default_order,
    device_label,
    load_results,
    provenance,
    provenance_list,
    train_in_subprocess,
    update_results,
    write_section,
)

DATASETS = "baby,sports,clothing"
MODELS = "bpr,lightgcn"


def results_path(device: str) -> Path:
    """Where runs on ``device`` are recorded: CPU and GPU runs have a table each."""
    return RESULTS / ("baselines_cpu.json" if device == "cpu" else "baselines.json")


def section_name(device: str) -> str:
    return "baselines-cpu" if device == "cpu" else "baselines"


def row_key(row: dict) -> tuple:
    """A run replaces the earlier row of the same dataset and model."""
    return row["dataset"], row["model"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--section", default=None, help="Marker name of the docs section (default: by --device).")
    parser.add_argument("--epochs", type=int, default=None, help="Epoch cap (smoke tests only).")
    parser.add_argument("--parallel", type=int, default=1, help="Runs at a time (e.g. several on one GPU).")
    add_output_options(
        parser, None, runs=REPO / "runs" / "benchmarks", results_help="Default: by --device (see above)."
    )
    args = parser.parse_args()
    args.results = args.results or results_path(args.device)
    args.section = args.section or section_name(args.device)
    if args.epochs and not args.from_results and args.results.resolve().is_relative_to(REPO):
        sys.exit("--epochs is for smoke tests: give --results and --doc outside the repository (e.g. /tmp).")

    if not args.from_results:
        jobs = [(d, m) for d in args.datasets.split(",") for m in args.models.split(",")]
        record = provenance(args.device)

        def run(job):
            dataset, model = job
            out = args.out / f"{dataset}-{model}"
            extra = ["--device", args.device] + (["--epochs", str(args.epochs)] if args.epochs else [])
            summary = train_in_subprocess(args.data_root / dataset, model, out, extra=extra)
            return {**summary, **record, "epoch_cap": args.epochs}

        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            for future in as_completed([pool.submit(run, job) for job in jobs]):
                summary = future.result()
                print(
                    f"{summary['model']} on {summary['dataset']}: test recall@20 "
                    f"{summary['test']['recall@20']:.4f} at epoch {summary['best_epoch']}",
                    flush=True,
                )
                update_results(args.results, [summary], row_key)
    rows = load_results(args.results)
    if not rows:
        sys.exit(f"{args.results}: no results; nothing written to {args.doc}.")
    write_section(args.doc, args.section, section_content(rows))
    print(f"wrote {args.results} and the '{args.section}' section of {args.doc}")


def ordered(rows: list[dict]) -> list[dict]:
    """Rows by dataset, then model, in the order of :data:`DATASETS` and :data:`MODELS`."""
    return sorted(rows, key=lambda s: (default_order(s["dataset"], DATASETS), default_order(s["model"], MODELS)))


def describe_runs(rows: list[dict]) -> str:
    models = sorted({r["model"] for r in rows}, key=lambda name: default_order(name, MODELS))
    datasets = sorted({r["dataset"] for r in rows}, key=lambda name: default_order(name, DATASETS))
    return f"{len(rows)} run{'s' * (len(rows) != 1)}: {', '.join(models)} on {', '.join(datasets)}"


def section_content(rows: list[dict]) -> str:
    """The table of ``rows`` (a results file), after the commands, machines, commits and dates
    they were measured with."""
    text = provenance_list(rows, describe_runs)
    caps = sorted({row["epoch_cap"] for row in rows if row.get("epoch_cap")})
    if caps:
        text += f"\n\n**Smoke run: epochs capped at {', '.join(map(str, caps))}; not a benchmark result.**"
    return f"Measured with:\n\n{text}\n\n{baseline_table(ordered(rows))}"


def baseline_table(summaries: list[dict]) -> str:
    lines = [
        "| dataset | model | test R@10 | test R@20 | test N@10 | test N@20 | best epoch | epochs | s/epoch | eval s | peak MB | device |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        t = s["test"]
        lines.append(
            f"| {s['dataset']} | {s['model']} | {t['recall@10']:.4f} | {t['recall@20']:.4f} | {t['ndcg@10']:.4f} | "
            f"{t['ndcg@20']:.4f} | {s['best_epoch']} | {s['epochs']} | {s['train_seconds_per_epoch']:.2f} | "
            f"{s['eval_seconds']:.2f} | {s['peak_memory_mb']:.0f} | {device_label(s)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
