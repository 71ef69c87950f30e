"""The same settings trained under several seeds: parsing ``--seeds``, the group folder and its aggregate.

A group folder (``sigerec train --seeds``) holds one ordinary run folder per seed
(``seed-<n>``, all made when the group is, so ``sigerec train --resume GROUP`` can finish an
interrupted group) and, once every seed has finished, ``aggregate.json``: the mean and
standard deviation of every metric over the seeds.
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
SEED_FOLDER_PREFIX = "seed-"
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


def seed_folder(seed: int) -> str:
    """The run folder of ``seed`` inside its group: ``seed-<n>``."""
    return f"{SEED_FOLDER_PREFIX}{seed}"


def group_seeds(path: Path) -> list[int]:
    """The seeds of a group folder, ascending (the order they train in); empty for any other folder."""
    from sigerec.training.run_directory import CONFIG_FILE  # torch stays out of the CLI's start

    path = Path(path)
    if (path / CONFIG_FILE).is_file() or not path.is_dir():
        return []
    seeds = []
    for config in path.glob(f"{SEED_FOLDER_PREFIX}*/{CONFIG_FILE}"):
        number = config.parent.name.removeprefix(SEED_FOLDER_PREFIX)
        if number.lstrip("-").isdigit():
            seeds.append(int(number))
    return sorted(seeds)


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
