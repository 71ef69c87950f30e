"""How sigerec's costs grow with the catalogue: time and peak memory of every stage, 10k to 1M items.

    python benchmarks/scaling.py                                   (sizes 10k..1M, this checkout)
    python benchmarks/scaling.py --sizes 10000,30000,100000 --code f855f38   (an older src/)
    python benchmarks/scaling.py --from-results                    (only rewrite docs/scaling.md)

Data: SYNTHETIC (`sigerec data synth`, seed 0): I items, 2I users, 15 interactions per user
(30I in all), text:384 and image:512 features drawn from item clusters; made once per size
under --data-root. No real users, items or content: the numbers are costs, not accuracy.

Each stage runs in its own process (``benchmarks/scaling_stage.py``) with the sigerec of
``--code`` (default: this checkout's ``src/``; a revision is extracted with ``git archive``),
so its peak memory is its own: import from Parquet, each modality's kNN graph, the
co-occurrence graph, one training epoch of LightGCN, MGCN and SIGE (projected from timed
steps), one full test evaluation (ranking projected from a sample of users), export, and
serving p99 at 8 clients (``benchmarks/serving_load.py``'s client). A stage that runs past
``--stage-timeout`` is recorded as such and not tried at larger sizes. Each code version gets
its own view of the data (symlinks), so graph caches of one do not serve the other.

Rows merge into benchmarks/results/scaling.json (key: code, size, stage); docs/scaling.md
gets the table, the fitted exponents (slope of log time against log items) and a log-log
plot per stage (docs/img/scaling.png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    REPO,
    RESULTS,
    add_output_options,
    load_results,
    markdown_table,
    provenance,
    provenance_list,
    update_results,
    write_section,
)
from same_numbers import extract_revision

RESULTS_FILE = RESULTS / "scaling.json"
DOC = REPO / "docs" / "scaling.md"
PLOT = REPO / "docs" / "img" / "scaling.png"
SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
MODALITIES = (("text", 384), ("image", 512))
STAGES = (
    "import",
    "knn-text",
    "knn-image",
    "cooccurrence",
    "epoch-lightgcn",
    "epoch-mgcn",
    "epoch-sige",
    "evaluate",
    "export",
    "serve",
)
MEMORY_LIMIT_MB = 24 * 1024
TIME_LIMIT_S = 3600


def synthetic_data(root: Path, items: int) -> Path:
    """The synthetic dataset of ``items`` items (made once)."""
    folder = root / f"items-{items}"
    if not (folder / "synthetic.json").exists():
        command = [sys.executable, "-m", "sigerec.cli.main", "data", "synth", "--items", str(items)]
        command += ["--users", str(2 * items), "--interactions", str(30 * items), "--seed", "0", "--parquet"]
        command += ["--modalities", ",".join(f"{m}:{d}" for m, d in MODALITIES), "--out", str(folder), "--force"]
        subprocess.run(command, check=True, env=_env(None))
    return folder


def code_view(data: Path, code: str) -> Path:
    """A folder of symlinks to ``data``'s files for one code version, with its own graph cache,
    emptied here: the kNN and co-occurrence stages build and time the graphs, later stages reuse them."""
    view = data.parent / f"{data.name}@{code}"
    view.mkdir(exist_ok=True)
    shutil.rmtree(view / ".sigerec-cache", ignore_errors=True)  # graphs are built (and timed) afresh
    for source in data.iterdir():
        if source.is_file() and not (view / source.name).exists():
            (view / source.name).symlink_to(source.resolve())
    return view


def _env(src: Path | None) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def run_stage(stage: str, data: Path, src: Path | None, timeout: float, steps: int, extra: tuple = ()) -> dict:
    """One stage in a fresh process: its JSON line, or a status saying why there is none."""
    command = [sys.executable, str(REPO / "benchmarks" / "scaling_stage.py"), stage, str(data), "--steps", str(steps)]
    command += list(extra)
    started = time.perf_counter()
    try:
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout, env=_env(src))
    except subprocess.TimeoutExpired:
        return {"status": f"over {timeout:.0f} s"}
    wall = time.perf_counter() - started
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return {"status": f"failed (exit {result.returncode}): {reason[:200]}", "wall_seconds": wall}
    return {"status": "ok", "wall_seconds": wall, **json.loads(result.stdout.strip().splitlines()[-1])}


def serve_stage(data: Path, clients: int = 8, duration: float = 10.0) -> dict:
    """p50/p99 of GET /users/{id}/recommendations at ``clients`` clients on the exported model."""
    from serving_load import _free_port, build_requests, measure, start_server, stop_server

    model = data.parent / f"{data.name}-model"
    if not (model / "manifest.json").exists():
        return {"status": "no export (the export stage did not finish)"}
    manifest = json.loads((model / "manifest.json").read_text())
    port = _free_port("127.0.0.1")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        server = start_server(model, "127.0.0.1", port, 1, "exact", Path(folder) / "server.log")
        load_seconds = time.perf_counter() - started
        try:
            users = [str(u) for u in range(0, manifest["n_users"], max(1, manifest["n_users"] // 5000))]
            items = [str(i) for i in range(0, manifest["n_items"], max(1, manifest["n_items"] // 5000))]
            requests = build_requests(users, items, "user", "127.0.0.1", 20000, 10, 0)
            measure("127.0.0.1", port, requests, clients, 200, 2.0)  # warm-up
            figures = measure("127.0.0.1", port, requests, clients, 100_000, duration, server.pid)
        finally:
            stop_server(server)
    figures = {f"load_{key}": value for key, value in figures.items()}  # its "seconds" is the test's length
    return {"status": "ok", "seconds": figures["load_p99_ms"] / 1000, "startup_seconds": load_seconds, **figures}


def fitted_exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """The slope of log(seconds) against log(items): 1 = linear, 2 = quadratic."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def measure_code(args, code: str, src: Path | None) -> None:
    stages = args.stages.split(",")
    stopped: set[str] = set()
    for items in [int(size) for size in args.sizes.split(",")]:
        data = code_view(synthetic_data(args.data_root, items), code)
        for stage in stages:
            if stage in stopped:
                row = {"status": "not run: stopped at a smaller size"}
            elif stage == "serve":
                row = serve_stage(data)
            else:
                extra = ("--fanout", str(args.fanout)) if args.fanout and stage.startswith("epoch") else ()
                row = run_stage(stage, data, src, args.stage_timeout, args.steps, extra)
                row |= {"neighbour_fanout": args.fanout} if extra else {}
            if row["status"] != "ok" and not row["status"].startswith("not run"):
                stopped.add(stage)
            row = {"code": code, "items": items, "stage": stage, **row, **provenance()}
            print(json.dumps({k: row[k] for k in ("code", "items", "stage", "status")} | _figures(row)), flush=True)
            update_results(args.results, [row], key=lambda r: (r["code"], r["items"], r["stage"]))


def _figures(row: dict) -> dict:
    return {k: round(row[k], 2) for k in ("seconds", "peak_mb") if k in row}


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    if row["status"] != "ok":
        return row["status"]
    text = f"{row['seconds']:.3g} s, {row['peak_mb'] / 1024:.2g} GB" if "peak_mb" in row else f"{row['seconds']:.3g} s"
    if "step_scope" in row:
        fanout = f", fanout {row['neighbour_fanout']}" if row.get("neighbour_fanout") else ""
        text += f" ({row['step_scope']}{fanout})"
    return text + (" *" if "projected_from_steps" in row or "ranking_projected_from_users" in row else "")


def _first_over(rows: list[dict]) -> str:
    for row in sorted(rows, key=lambda r: r["items"]):
        if row["status"] != "ok" and not row["status"].startswith("not run"):
            return f"{row['items']:,} ({row['status']})"
        if row["status"] == "ok" and (row.get("peak_mb", 0) > MEMORY_LIMIT_MB or row["seconds"] > TIME_LIMIT_S):
            return f"{row['items']:,}"
    return "none measured"


def section_content(rows: list[dict]) -> str:
    if not rows:
        return "Not measured yet."
    parts = []
    for code in dict.fromkeys(row["code"] for row in rows):
        mine = [row for row in rows if row["code"] == code]
        sizes = sorted({row["items"] for row in mine})
        table = []
        for stage in dict.fromkeys(row["stage"] for row in mine):
            by_size = {row["items"]: row for row in mine if row["stage"] == stage}
            ok = [by_size[s] for s in sizes if s in by_size and by_size[s]["status"] == "ok"]
            exponent = fitted_exponent([r["items"] for r in ok], [r["seconds"] for r in ok])
            exponent_text = "" if exponent is None else f"{exponent:.2f}"
            table.append(
                [stage, *(_cell(by_size.get(s)) for s in sizes), exponent_text, _first_over(list(by_size.values()))]
            )
        columns = ["stage", *(f"{s:,} items" for s in sizes), "exponent", "first size over 24 GB or 1 h"]
        parts.append(f"### Code: {code}\n\n{markdown_table(columns, table)}")
    return "\n\n".join([*parts, provenance_list(rows)])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(row["stage"] for row in rows))
    columns = 4
    figure, axes = plt.subplots(
        (len(stages) + columns - 1) // columns, columns, figsize=(16, 3.4 * len(stages) / columns + 1)
    )
    for axis, stage in zip(axes.flat, stages):
        for code in dict.fromkeys(row["code"] for row in rows):
            ok = sorted(
                (r["items"], r["seconds"])
                for r in rows
                if r["code"] == code and r["stage"] == stage and r["status"] == "ok"
            )
            if ok:
                exponent = fitted_exponent(*zip(*ok)) if len(ok) > 1 else None
                label = code + ("" if exponent is None else f" (slope {exponent:.2f})")
                axis.loglog(*zip(*ok), marker="o", label=label)
        axis.set_title(stage + (" (p99 s)" if stage == "serve" else " (s)"))
        axis.set_xlabel("items (synthetic)")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(stages) :]:
        axis.axis("off")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--code", default="current", help="'current' (this checkout) or a git revision.")
    parser.add_argument("--data-root", type=Path, default=REPO / ".bench_data" / "scaling")
    parser.add_argument("--stage-timeout", type=float, default=1800.0)
    parser.add_argument("--fanout", type=int, default=0, help="neighbour_fanout of the epoch stages (0: exact).")
    parser.add_argument("--steps", type=int, default=10, help="Training steps timed per epoch stage.")
    parser.add_argument("--plot", type=Path, default=PLOT)
    add_output_options(parser, RESULTS_FILE, doc=DOC)
    args = parser.parse_args()
    if not args.from_results:
        src = None if args.code == "current" else extract_revision(args.code, args.data_root / "code") / "src"
        measure_code(args, args.code, src)
    rows = load_results(args.results)
    write_section(args.doc, "scaling", section_content(rows))
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
