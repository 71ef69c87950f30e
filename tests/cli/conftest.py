"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app


@pytest.fixture(scope="session")
def two_trained_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two finished BPR runs (seeds 1 and 2, one epoch) of 4 users and 6 items: inputs of `sigerec export`."""
    root = tmp_path_factory.mktemp("two-runs")
    (root / "tiny").mkdir()
    rows = [(user, (user + offset) % 6, min(max(offset - 3, 0), 2)) for user in range(4) for offset in range(6)]
    lines = ["userID\titemID\tx_label", *(f"{user}\t{item}\t{label}" for user, item, label in rows)]
    (root / "tiny" / "tiny.inter").write_text("\n".join(lines) + "\n")
    runs = []
    for seed in (1, 2):
        out = root / f"runs-{seed}"
        arguments = ["train", "--data", root / "tiny", "--model", "bpr", "--epochs", "1", "-q", "--seed", seed]
        result = CliRunner().invoke(app, [str(argument) for argument in [*arguments, "--out", out]])
        assert result.exit_code == 0, result.output
        (run,) = out.iterdir()
        runs.append(run)
    return runs[0], runs[1]
