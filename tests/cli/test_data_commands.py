"""``sigerec data import`` and ``sigerec data stats`` through the command line."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from sigerec.cli.data_commands import data_app
from sigerec.data.atomic import load_dataset

try:
    from sigerec.cli.main import app
except ImportError:  # the rest of the CLI is still being written; test the data commands alone
    app = typer.Typer()
    app.add_typer(data_app, name="data")

runner = CliRunner()
ML100K_IMPORT = [
    "--user-col", "user_id", "--item-col", "item_id", "--time-col", "timestamp",
    "--rating-col", "rating", "--min-rating", "4", "--split", "mmrec", "--seed", "999",
]  # fmt: skip


def test_bad_input_exits_with_code_2_and_no_traceback(tmp_path):
    source = tmp_path / "ratings.csv"
    source.write_text("user_id,item\nu,a\n")
    result = runner.invoke(
        app, ["data", "import", str(source), "--user-col", "userid", "--item-col", "item", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "line 1: no column 'userid'" in result.output


def test_missing_dataset_folder_for_stats_exits_with_code_2(tmp_path):
    result = runner.invoke(app, ["data", "stats", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no such dataset folder" in result.output
    assert "Traceback" not in result.output


def test_import_warnings_are_printed(tmp_path):
    source = tmp_path / "ratings.csv"
    source.write_text("user,item\nu,a\nu,a\nu,b\nu,c\n")
    result = runner.invoke(
        app, ["data", "import", str(source), "--user-col", "user", "--item-col", "item", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "1 repeated (user, item) rows" in result.output


def test_help_shows_an_example():
    result = runner.invoke(app, ["data", "import", "--help"])
    assert result.exit_code == 0
    assert "sigerec data import ml-100k.inter" in result.output


@pytest.mark.slow
def test_real_ml100k_imports_loads_and_describes(shared_data, tmp_path):
    """End to end on MovieLens-100k: 55,375 ratings >= 4 by 942 users on 1,447 items."""
    out = tmp_path / "ml100k"
    source = shared_data / "ml-100k" / "ml-100k.inter"
    result = runner.invoke(app, ["data", "import", str(source), *ML100K_IMPORT, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "read 100,000 rows" in result.output
    assert "dropped 44,625 below --min-rating 4" in result.output
    assert "942 users, 1,447 items, 55,375 interactions" in result.output

    dataset = load_dataset(out)
    # Split sizes follow from each user's count alone (MMRec's rule), whatever the seed.
    assert (dataset.n_users, dataset.n_items) == (942, 1447)
    assert (dataset.train.nnz, dataset.valid.nnz, dataset.test.nnz) == (44630, 5156, 5589)

    table = runner.invoke(app, ["data", "stats", str(out)])
    assert table.exit_code == 0, table.output
    assert "55,375" in table.output and "44,630" in table.output

    as_json = runner.invoke(app, ["data", "stats", str(out), "--json"])
    stats = json.loads(as_json.stdout)
    assert (stats["users"], stats["items"], stats["test"]) == (942, 1447, 5589)


# --- synth -------------------------------------------------------------------------------------

TINY_SYNTH = ["--users", "120", "--items", "80", "--interactions", "1200", "--modalities", "text:8,image:4"]


def test_synth_writes_a_labelled_dataset_that_stats_describes_and_lightgcn_trains_on(tmp_path):
    out = tmp_path / "synth-tiny"
    result = runner.invoke(app, ["data", "synth", *TINY_SYNTH, "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC dataset synth-tiny (seed 2)" in result.output
    assert "120 users, 80 items" in result.output

    stats = runner.invoke(app, ["data", "stats", str(out)])
    assert stats.exit_code == 0, stats.output
    assert "SYNTHETIC data made by sigerec data synth" in stats.output
    as_json = json.loads(runner.invoke(app, ["data", "stats", str(out), "--json"]).stdout)
    assert as_json["synthetic"]["parameters"]["seed"] == 2

    runs = tmp_path / "runs"
    train = ["train", "--model", "lightgcn", "--data", str(out), "--set", "epochs=1", "--quiet", "--out", str(runs)]
    trained = runner.invoke(app, train)
    assert trained.exit_code == 0, trained.output
    (run_dir,) = runs.iterdir()
    assert "synth-tiny" in run_dir.name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (["--modalities", "text:abc"], "--modalities: 'text:abc' is not NAME:DIM"),
        (["--interactions", "100"], "--interactions (100) must be at least --users x --min-user-interactions"),
        (["--users", "-5"], "--users must be at least 1"),
        (["--clusters", "81"], "--clusters must be between 1 and --items (80)"),
    ],
)
def test_synth_refuses_impossible_settings_with_exit_code_2(tmp_path, changes, message):
    result = runner.invoke(app, ["data", "synth", *TINY_SYNTH, *changes, "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


def test_synth_help_shows_an_example():
    result = runner.invoke(app, ["data", "synth", "--help"])
    assert result.exit_code == 0
    assert "sigerec data synth --users 2000000" in result.output
