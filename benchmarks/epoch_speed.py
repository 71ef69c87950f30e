"""Seconds per training epoch of SIGE and MGCN (and LightGCN) on a real dataset, for two code
versions and several thread counts, each in a fresh process.

    python benchmarks/epoch_speed.py --data .bench_data/baby-official --codes f855f38,current --threads 1,2

An epoch is the median of its steps' times x its number of steps (the first two steps, which
allocate buffers, are not timed; ``scaling_stage.py``'s epoch stage), at the model's default
settings, batch 2048, seed 0. ``current`` is this checkout; a revision's ``src/`` is extracted
with ``git archive``. Versions alternate within each round so that load from other processes
falls on both alike. Rows merge into benchmarks/results/epoch_speed.json; docs/scaling.md gets
the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import common
from same_numbers import extract_revision
from scaling import run_stage

RESULTS_FILE = common.RESULTS / "epoch_speed.json"
DOC = common.REPO / "docs" / "scaling.md"


def measure(args) -> None:
    codes = args.codes.split(",")
    # "current:batch" is this checkout with step_scope=batch (batch-local steps, LazyAdam).
    sources = {
        code: None
        if code.startswith("current")
        else extract_revision(code, common.REPO / ".bench_data" / "code") / "src"
        for code in codes
    }
    extras = {code: ("--step-scope", code.partition(":")[2]) if ":" in code else () for code in codes}
    for model in args.models.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
            times: dict[str, list[float]] = {code: [] for code in codes}
            for _ in range(args.rounds):
                for code in codes:
                    row = run_stage(f"epoch-{model}", args.data, sources[code], 3600, args.steps, extras[code])
                    if row["status"] != "ok":
                        raise RuntimeError(f"{model} with {code}: {row['status']}")
                    times[code].append(row["seconds"])
            for code in codes:
                seconds = statistics.median(times[code])
                print(f"{model} threads={threads} {code}: {seconds:.2f} s/epoch ({times[code]})", flush=True)
                row = {"dataset": args.data.name, "model": model, "threads": threads, "code": code}
                row |= {"seconds_per_epoch": seconds, "rounds": times[code], **common.provenance()}
                key = ("dataset", "model", "threads", "code")
                common.update_results(args.results, [row], key=lambda r: tuple(r[k] for k in key))


def section_content(rows: list[dict]) -> str:
    if not rows:
        return "Not measured yet."
    codes = list(dict.fromkeys(row["code"] for row in rows))
    table = []
    for dataset, model, threads in dict.fromkeys((r["dataset"], r["model"], r["threads"]) for r in rows):
        cells = {
            r["code"]: r["seconds_per_epoch"]
            for r in rows
            if (r["dataset"], r["model"], r["threads"]) == (dataset, model, threads)
        }
        speedup = cells[codes[0]] / cells["current"] if codes[0] in cells and "current" in cells else None
        table.append(
            [
                dataset,
                model,
                threads,
                *(f"{cells[c]:.2f}" if c in cells else "" for c in codes),
                f"{speedup:.2f}x" if speedup else "",
            ]
        )
    columns = ["dataset", "model", "threads", *(f"s/epoch ({c})" for c in codes), f"{codes[0]} / current"]
    return common.markdown_table(columns, table) + "\n\n" + common.provenance_list(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=common.REPO / ".bench_data" / "baby-official")
    parser.add_argument("--models", default="sige,mgcn")
    parser.add_argument("--codes", default="f855f38,current")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000, help="Steps timed (an epoch of Baby has 58).")
    common.add_output_options(parser, RESULTS_FILE, doc=DOC)
    args = parser.parse_args()
    if not args.from_results:
        measure(args)
    common.write_section(args.doc, "epoch-speed", section_content(common.load_results(args.results)))


if __name__ == "__main__":
    main()
