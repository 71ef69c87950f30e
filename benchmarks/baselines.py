"""Train BPR and LightGCN with default settings on Amazon Baby, Sports and Clothing and write
the test-metric table into docs/benchmarks.md.

Example: python benchmarks/baselines.py --datasets baby,sports,clothing --models bpr,lightgcn
Runs use ../shared/data (the LATTICE 8:1:1 splits), seed 999, early stopping on valid
Recall@20 (patience 20), and report test metrics at the best valid epoch. No content
features are involved: these are ID-only models.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from common import DEFAULT_DATA_ROOT, REPO, device_label, machine_description, train_in_subprocess, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--datasets", default="baby,sports,clothing")
    parser.add_argument("--models", default="bpr,lightgcn")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmarks")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "baselines.json")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--section", default="baselines", help="Marker name of the docs section to write.")
    parser.add_argument("--epochs", type=int, default=None, help="Epoch cap (smoke tests only).")
    parser.add_argument("--parallel", type=int, default=1, help="Runs at a time (e.g. several on one GPU).")
    parser.add_argument("--from-results", action="store_true", help="Only rewrite the docs from --results.")
    args = parser.parse_args()

    if args.from_results:
        summaries = json.loads(args.results.read_text())
    else:
        jobs = [(d, m) for d in args.datasets.split(",") for m in args.models.split(",")]
        summaries = []

        def run(job):
            dataset, model = job
            out = args.out / f"{dataset}-{model}"
            extra = ["--device", args.device] + (["--epochs", str(args.epochs)] if args.epochs else [])
            summary = train_in_subprocess(args.data_root / dataset, model, out, extra=extra)
            summary["machine"] = machine_description()
            return summary

        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            for future in as_completed([pool.submit(run, job) for job in jobs]):
                summary = future.result()
                summaries.append(summary)
                print(
                    f"{summary['model']} on {summary['dataset']}: test recall@20 "
                    f"{summary['test']['recall@20']:.4f} at epoch {summary['best_epoch']}",
                    flush=True,
                )
                args.results.parent.mkdir(parents=True, exist_ok=True)
                args.results.write_text(json.dumps(summaries, indent=2) + "\n")
    order = {
        (d, m): i
        for i, (d, m) in enumerate((d, m) for d in ["baby", "sports", "clothing"] for m in ["bpr", "lightgcn"])
    }
    summaries.sort(key=lambda s: order.get((s["dataset"], s["model"]), len(order)))
    write_section(args.doc, args.section, baseline_table(summaries))


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
