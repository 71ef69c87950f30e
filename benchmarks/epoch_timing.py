"""Time a library's training epochs and evaluations the same way on both sides of a comparison.

Standard library only, so that a script running in another library's virtual environment
(``recbole_runner.py``) shares it with sigerec's side (``recbole_speed.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TIMES = ("train_seconds", "eval_seconds", "train_cpu_seconds", "eval_cpu_seconds")


def time_epochs(train_epoch: Callable[[int], Any], evaluate: Callable[[], Any], epochs: int) -> dict[str, list[float]]:
    """``train_epoch(epoch)`` then ``evaluate()``, ``epochs`` times, each timed twice: wall seconds
    (``<stage>_seconds``) and this process's CPU seconds (``<stage>_cpu_seconds``), which other
    load on a shared machine disturbs far less than the wall clock."""
    times: dict[str, list[float]] = {key: [] for key in TIMES}

    def timed(stage: str, run: Callable[[], Any]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        times[f"{stage}_seconds"].append(time.perf_counter() - wall)
        times[f"{stage}_cpu_seconds"].append(time.process_time() - cpu)

    for epoch in range(epochs):
        timed("train", lambda: train_epoch(epoch))  # noqa: B023 (called at once, in this iteration)
        timed("eval", evaluate)
    return times
