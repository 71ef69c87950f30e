"""Progress reporting for training: rich bars on a terminal, nothing when quiet."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class SilentProgress:
    """Reports nothing; the default for library use and tests."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start_epoch(self, epoch: int, n_batches: int) -> None:
        pass

    def batch_done(self, loss: float) -> None:
        pass

    def epoch_done(self, record: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass


class RichProgress(SilentProgress):
    """An epoch bar and a batch bar showing the running loss and the current valid metric."""

    def __init__(self, total_epochs: int, valid_metric: str, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.valid_metric = valid_metric
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
        )
        self.epochs_task = self.progress.add_task("epochs", total=total_epochs, status="")
        self.batches_task = self.progress.add_task("batches", total=1, status="", visible=False)
        self._loss_sum = 0.0
        self._batches = 0
        self._valid = "-"

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, n_batches: int) -> None:
        self._loss_sum, self._batches = 0.0, 0
        self.progress.reset(self.batches_task, total=n_batches, visible=True, status="")
        self.progress.update(self.batches_task, description=f"epoch {epoch}")
        self.progress.update(self.epochs_task, completed=epoch)

    def batch_done(self, loss: float) -> None:
        self._loss_sum += loss
        self._batches += 1
        status = f"loss {self._loss_sum / self._batches:.4f}  valid {self.valid_metric} {self._valid}"
        self.progress.update(self.batches_task, advance=1, status=status)

    def epoch_done(self, record: dict[str, Any]) -> None:
        if "valid" in record:
            self._valid = f"{record['valid'][self.valid_metric]:.4f}"
        status = f"loss {record['loss']:.4f}  valid {self.valid_metric} {self._valid}"
        self.progress.update(self.epochs_task, completed=record["epoch"] + 1, status=status)

    def message(self, text: str) -> None:
        self.progress.console.print(text)
