"""Tables of finished runs (read from their run folders): the rows `sigerec compare` and the benchmarks print."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sigerec.errors import SigerecError
from sigerec.training.run_directory import RunDirectory

DEFAULT_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def run_row(run_path: str | Path, metrics: Sequence[str] = DEFAULT_METRICS, split: str = "test") -> dict[str, Any]:
    """One table row from a finished run's ``summary.json``."""
    run = RunDirectory.existing(run_path)
    summary = run.read_summary()
    if summary is None:
        raise SigerecError(
            f"{run.path}: the run has not finished (no summary.json). Resume it with "
            f"`sigerec train --resume {run.path}`."
        )
    values = summary.get(split, {})
    row: dict[str, Any] = {"run": run.path.name, "model": summary["model"], "dataset": summary["dataset"]}
    for metric in metrics:
        if metric not in values:
            raise SigerecError(f"{run.path}: metric '{metric}' is not in the {split} results ({', '.join(values)}).")
        row[f"{split} {metric}"] = values[metric]
    row["best epoch"] = summary["best_epoch"]
    row["epochs"] = summary["epochs"]
    row["s/epoch"] = summary["train_seconds_per_epoch"]
    row["eval s"] = summary["eval_seconds"]
    return row


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def format_table(rows: list[dict[str, Any]], style: str = "text") -> str:
    """Rows as aligned text, Markdown or CSV (all rows share the first row's columns)."""
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [[_format_cell(row.get(c, "")) for c in columns] for row in rows]
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buffer.getvalue()
    if style == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if style != "text":
        raise SigerecError(f"unknown table format '{style}'; use text, markdown or csv.")
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"
