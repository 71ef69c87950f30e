"""Training and evaluation speed of LightGCN (n_layers=1) on Amazon Baby, on one core and on all.

Example: python benchmarks/speed.py --epochs 5
         python benchmarks/speed.py --from-results     (only rewrite the table)
One core means `taskset -c 0` with one torch thread. Figures are means over the epochs run:
seconds per training epoch, seconds per full evaluation of the valid split (19,445 users x
7,050 items, training items masked), and the process's peak resident memory. The results
(benchmarks/results/speed.json) record the command, machine, git commit and date.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import common

SECTION = "speed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=common.DEFAULT_DATA_ROOT)
    parser.add_argument("--epochs", type=int, default=5)
    common.add_output_options(parser, common.RESULTS / "speed.json", runs=common.REPO / "runs" / "speed")
    args = parser.parse_args()

    if not args.from_results:
        record = common.provenance()
        all_cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        settings = {"n_layers": 1, "epochs": args.epochs, "stopping_step": 1000}
        rows = []
        for label, cpus, threads in [("1 core", "0", 1), (f"{len(all_cores.split(','))} cores", all_cores, None)]:
            summary = common.train_in_subprocess(args.data_root / "baby", "lightgcn", args.out, settings, cpus, threads)
            keys = ("train_seconds_per_epoch", "eval_seconds", "peak_memory_mb", "torch_threads", "epochs")
            rows.append({"cores": label, **{k: summary[k] for k in keys}})
            print(rows[-1], flush=True)
        common.save_results(args.results, rows, record)
    common.write_section(args.doc, SECTION, section_content(json.loads(args.results.read_text())))


def section_content(results: dict) -> str:
    """The table of a results file, after its command, machine, commit and date."""
    table = common.markdown_table(
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
            for r in results["rows"]
        ],
    )
    return f"{common.provenance_sentence(results)}\n\n{table}"


if __name__ == "__main__":
    main()
