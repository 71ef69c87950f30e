"""Training and evaluation speed of LightGCN (n_layers=1) on Amazon Baby, on one core and on all.

Example: python benchmarks/speed.py --epochs 5
One core means `taskset -c 0` with one torch thread. Figures are means over the epochs run:
seconds per training epoch, seconds per full evaluation of the valid split (19,445 users x
7,050 items, training items masked), and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from common import (
    DEFAULT_DATA_ROOT,
    REPO,
    machine_description,
    markdown_table,
    save_results,
    train_in_subprocess,
    write_section,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "speed")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "speed.json")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()

    all_cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    settings = {"n_layers": 1, "epochs": args.epochs, "stopping_step": 1000}
    rows = []
    for label, cpus, threads in [("1 core", "0", 1), (f"{len(all_cores.split(','))} cores", all_cores, None)]:
        summary = train_in_subprocess(args.data_root / "baby", "lightgcn", args.out, settings, cpus, threads)
        rows.append(
            {
                "cores": label,
                **{
                    k: summary[k]
                    for k in ("train_seconds_per_epoch", "eval_seconds", "peak_memory_mb", "torch_threads", "epochs")
                },
            }
        )
        print(rows[-1], flush=True)
    save_results(args.results, rows)
    table = markdown_table(
        [
            "LightGCN n_layers=1, Baby",
            "s / training epoch",
            "s / full valid evaluation",
            "peak memory MB",
            "torch threads",
        ],
        [
            [
                r["cores"],
                f"{r['train_seconds_per_epoch']:.2f}",
                f"{r['eval_seconds']:.2f}",
                f"{r['peak_memory_mb']:.0f}",
                r["torch_threads"],
            ]
            for r in rows
        ],
    )
    intro = f"Machine: {machine_description()}. Command: `python benchmarks/speed.py --epochs {args.epochs}`."
    write_section(args.doc, "speed", f"{intro}\n\n{table}")


if __name__ == "__main__":
    main()
