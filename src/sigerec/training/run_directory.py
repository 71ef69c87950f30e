"""The files of one training run: config, per-epoch metrics, checkpoints and summary."""

from __future__ import annotations

import itertools
import json
import pickle
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from sigerec.errors import SigerecError
from sigerec.safe_write import atomic_write, create_folder

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
# Each test user's metrics at the best-valid epoch: what paired significance tests compare.
PER_USER_TEST_FILE = "test_per_user.csv"
LAST_CHECKPOINT = "checkpoints/last.pt"
BEST_CHECKPOINT = "checkpoints/best.pt"


def run_folder_names(model: str, dataset: str) -> Iterator[str]:
    """``<model>-<dataset>-<YYYYmmdd-HHMMSS>``, then the same with ``-2``, ``-3``, ... (the first free one is used)."""
    base = f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    yield base
    for n in itertools.count(2):
        yield f"{base}-{n}"


class RunDirectory:
    """Paths and atomic reads/writes of one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_root: str | Path, model: str, dataset: str, config: dict[str, Any]) -> RunDirectory:
        """A new folder ``<root>/<model>-<dataset>-<YYYYmmdd-HHMMSS>[-n]`` that appears with its
        ``config.yaml`` already in it (so a kill leaves no folder, or one ``--resume`` finishes)."""
        return cls.create_named(runs_root, run_folder_names(model, dataset), config)

    @classmethod
    def create_named(cls, runs_root: str | Path, names: Iterable[str], config: dict[str, Any]) -> RunDirectory:
        """As `create`, under the first free name of ``names``; never an existing folder."""
        return cls(create_folder(Path(runs_root), names, lambda staging: cls(staging).write_config(config)))

    @classmethod
    def existing(cls, path: str | Path) -> RunDirectory:
        run = cls(path)
        if not (run.path / CONFIG_FILE).is_file():
            raise SigerecError(
                f"{run.path}: not a run folder (no {CONFIG_FILE}). Give a folder made by `sigerec train`."
            )
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, config: dict[str, Any]) -> None:
        text = yaml.safe_dump(config, sort_keys=False)
        atomic_write(self.file(CONFIG_FILE), lambda p: p.write_text(text))

    def read_config(self) -> dict[str, Any]:
        try:
            return yaml.safe_load(self.file(CONFIG_FILE).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise SigerecError(f"{self.file(CONFIG_FILE)}: cannot be read ({error}).") from None

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        """Rewrite the per-epoch log from the checkpointed history (exact after a resume)."""
        text = "".join(json.dumps(record) + "\n" for record in history)
        atomic_write(self.file(METRICS_FILE), lambda p: p.write_text(text))

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.file(METRICS_FILE)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def save_checkpoint(self, name: str, state: dict[str, Any]) -> None:
        atomic_write(self.file(name), lambda p: torch.save(state, p))

    def load_checkpoint(self, name: str, device: str = "cpu") -> dict[str, Any] | None:
        """The checkpoint's tensors and plain values; anything else in the file is refused.

        ``weights_only=True`` makes torch's unpickler accept only tensors, containers and
        numbers, so a checkpoint crafted to run code when loaded (a pickle ``__reduce__``) fails
        here instead of running. Checkpoints hold nothing else (see ``Trainer._state``).
        """
        path = self.file(name)
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError as error:
            # torch's message is a paragraph; the line naming what the file wanted to import says why.
            culprit = next((line.strip().rstrip(".") for line in str(error).splitlines() if "GLOBAL" in line), "")
            raise SigerecError(
                f"{path}: refused: the checkpoint holds objects other than tensors and plain values, "
                f"which could run code when loaded{f' ({culprit})' if culprit else ''}. Use checkpoints written "
                "by `sigerec train` only; delete this one to restart the run."
            ) from None
        except Exception as error:  # noqa: BLE001 - torch.load raises many types for a bad file
            raise SigerecError(
                f"{path}: the checkpoint cannot be read ({error}). Delete it to restart the run."
            ) from None

    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(self.file(SUMMARY_FILE), lambda p: p.write_text(text))

    def write_per_user_test(self, per_user: dict[str, Any]) -> None:
        """``user`` (the dataset's internal user index) and every test metric at every K, a row per user."""
        import pandas as pd

        table = pd.DataFrame(per_user)
        atomic_write(self.file(PER_USER_TEST_FILE), lambda p: table.to_csv(p, index=False, float_format="%.10g"))

    def read_per_user_test(self):
        """The table of :meth:`write_per_user_test` (a pandas DataFrame), or None for older runs."""
        import pandas as pd

        path = self.file(PER_USER_TEST_FILE)
        return pd.read_csv(path) if path.exists() else None

    def read_summary(self) -> dict[str, Any] | None:
        path = self.file(SUMMARY_FILE)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SigerecError(f"{path}: cannot be read ({error}).") from None
