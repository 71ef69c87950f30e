"""Files from elsewhere cannot run code: a checkpoint crafted to run a shell command on load is
refused, and the command does not run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sigerec.cli.main import app
from sigerec.errors import SigerecError
from sigerec.training.run_directory import BEST_CHECKPOINT, LAST_CHECKPOINT, RunDirectory

runner = CliRunner()


class RunsACommandWhenUnpickled:
    """What an attacker would put in a checkpoint: unpickling it calls ``os.system``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def plant_malicious_checkpoint(path: Path, marker: Path) -> None:
    torch.save({"epoch": 0, "model": RunsACommandWhenUnpickled(f"touch {marker}")}, path)


@pytest.fixture(scope="module")
def trained_run(baby_subset_dir, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = runner.invoke(
        app, ["train", "--data", str(baby_subset_dir), "--model", "bpr", "--epochs", "1", "--quiet", "--out", str(runs)]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    return run_dir


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def test_evaluate_refuses_a_checkpoint_that_would_run_a_command_and_the_command_does_not_run(run_copy, tmp_path):
    marker = tmp_path / "the-command-ran"
    plant_malicious_checkpoint(run_copy / BEST_CHECKPOINT, marker)

    result = runner.invoke(app, ["evaluate", str(run_copy)])

    assert result.exit_code != 0
    assert "refused" in result.output and "best.pt" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()
    # The file really is malicious: loading it the unsafe way runs the command.
    torch.load(run_copy / BEST_CHECKPOINT, weights_only=False)
    assert marker.exists()


def test_resuming_from_a_crafted_last_checkpoint_is_refused(run_copy, tmp_path):
    marker = tmp_path / "the-command-ran"
    plant_malicious_checkpoint(run_copy / LAST_CHECKPOINT, marker)

    with pytest.raises(SigerecError, match="refused"):
        RunDirectory.existing(run_copy).load_checkpoint(LAST_CHECKPOINT)
    assert not marker.exists()


def test_export_refuses_a_crafted_checkpoint(run_copy, tmp_path):
    marker = tmp_path / "the-command-ran"
    plant_malicious_checkpoint(run_copy / BEST_CHECKPOINT, marker)

    result = runner.invoke(app, ["export", str(run_copy), "--out", str(tmp_path / "model")])

    assert result.exit_code != 0 and "refused" in result.output
    assert not marker.exists() and not (tmp_path / "model").exists()


def test_checkpoints_written_by_training_load_under_the_safe_loader(trained_run):
    run = RunDirectory.existing(trained_run)
    for name in (LAST_CHECKPOINT, BEST_CHECKPOINT):
        state = run.load_checkpoint(name)
        assert "model" in state and all(isinstance(v, torch.Tensor) for v in state["model"].values())
