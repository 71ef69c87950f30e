"""``sigerec data import --split cold-items`` and what ``data stats`` says of its cold items."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app
from sigerec.data.atomic import load_dataset

runner = CliRunner()


def test_cold_items_import_prints_cold_and_warm_items_and_stats_count_them(tmp_path):
    source = tmp_path / "ratings.csv"
    # 12 users each rate all 10 items: every user keeps training rows whatever items are cold.
    source.write_text("user,item\n" + "".join(f"u{u},i{i}\n" for u in range(12) for i in range(10)))
    out = tmp_path / "shop"
    command = ["data", "import", str(source), "--user-col", "user", "--item-col", "item", "--out", str(out)]
    result = runner.invoke(app, [*command, "--split", "cold-items", "--cold-fraction", "0.4", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "split cold-items (seed 5): train 72, valid 24, test 24" in result.output
    assert "cold items: 2 in valid, 2 in test; warm items (in train): 6" in result.output

    stats = json.loads(runner.invoke(app, ["data", "stats", str(out), "--json"]).stdout)
    assert (stats["warm_items"], stats["cold_items"]) == (6, 4)
    assert "warm items" in runner.invoke(app, ["data", "stats", str(out)]).output


def test_bad_cold_fraction_exits_with_code_2(tmp_path):
    source = tmp_path / "ratings.csv"
    source.write_text("user,item\nu,a\nu,b\nv,a\n")
    command = ["data", "import", str(source), "--user-col", "user", "--item-col", "item", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*command, "--split", "cold-items", "--cold-fraction", "1.5"])
    assert result.exit_code == 2
    assert "--cold-fraction is 1.5" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_ml100k_cold_items_split(shared_data, tmp_path):
    """MovieLens-100k, all ratings, 20% cold: int(0.2 * 1,682) = 336 items, 168 to valid and 168 to test."""
    out = tmp_path / "ml100k-cold"
    source = shared_data / "ml-100k" / "ml-100k.inter"
    options = ["--user-col", "user_id", "--item-col", "item_id", "--split", "cold-items", "--seed", "0"]
    result = runner.invoke(app, ["data", "import", str(source), *options, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cold items: 168 in valid, 168 in test; warm items (in train): 1,346" in result.output

    dataset = load_dataset(out)
    assert (dataset.n_users, dataset.n_items) == (943, 1682)
    assert dataset.train.nnz + dataset.valid.nnz + dataset.test.nnz == 100_000  # no user lost all items
    held_out = set(dataset.valid.indices.tolist()) | set(dataset.test.indices.tolist())
    assert len(held_out) == 336 and not held_out & set(dataset.train.indices.tolist())
