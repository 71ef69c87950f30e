"""The same settings trained under several seeds: parsing ``--seeds`` and the group's aggregate.

A group folder (``sigerec train --seeds``) holds one ordinary run folder per seed and
``aggregate.json``: the mean and standard deviation of every metric over the seeds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sigerec.errors import SigerecError
from sigerec.safe_write import atomic_write

AGGREGATE_FILE = "aggregate.json"
STD_NOTE = "sample standard deviation over seeds (ddof=1); null for a single seed"


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> ``(1, 2, 3)``; the error names the bad entry."""
    seeds: list[int] = []
    for part in text.split(","):
        try:
            seed = int(part.strip())
        except ValueError:
            raise SigerecError(
                f"--seeds {text!r}: {part.strip()!r} is not an integer; give a comma-separated list, e.g. --seeds 1,2,3."
            ) from None
        if seed in seeds:
            raise SigerecError(f"--seeds {text!r}: seed {seed} is given twice; each seed trains one run.")
        seeds.append(seed)
    return tuple(seeds)


def mean_and_std(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (ddof=1; None for one value)."""
    array = np.asarray(values, dtype=np.float64)
    std = float(np.std(array, ddof=1)) if len(array) > 1 else None
    return float(np.mean(array)), std


def _mean_std_dict(values: Sequence[float]) -> dict[str, float | None]:
    mean, std = mean_and_std(values)
    return {"mean": mean, "std": std}


def aggregate_summaries(seeds: Sequence[int], run_names: Sequence[str], summaries: Sequence[dict]) -> dict[str, Any]:
    """``aggregate.json`` of a group: per split and metric, the mean and std over the seeds' summaries."""
    first = summaries[0]
    aggregate: dict[str, Any] = {
        "model": first["model"],
        "dataset": first["dataset"],
        "seeds": list(seeds),
        "runs": list(run_names),
        "std": STD_NOTE,
        "best_epoch": _mean_std_dict([s["best_epoch"] for s in summaries]),
    }
    for split in ("valid", "test"):
        aggregate[split] = {metric: _mean_std_dict([s[split][metric] for s in summaries]) for metric in first[split]}
    return aggregate


def write_aggregate(group: Path, aggregate: dict[str, Any]) -> None:
    text = json.dumps(aggregate, indent=2) + "\n"
    atomic_write(group / AGGREGATE_FILE, lambda p: p.write_text(text))
