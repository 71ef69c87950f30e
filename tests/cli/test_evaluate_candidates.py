"""Cold and warm items in `sigerec train` and `sigerec evaluate --candidates`.

A hand-made dataset of 6 users and 8 items: items 0-5 are trained on (warm), items 6 and 7
appear only in valid and test (cold). BPR trains for one epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app

runner = CliRunner()

TRAIN = {user: [user % 6, (user + 1) % 6, (user + 2) % 6] for user in range(6)}
VALID = {0: [6], 2: [0], 3: [1]}  # cold: user 0; warm: users 2, 3
TEST = {0: [7], 1: [6, 4], 2: [5], 3: [0], 4: [1], 5: [2]}  # cold: users 0, 1; warm: users 1-5


def _write_dataset(folder: Path, extra_train: dict[int, list[int]]) -> Path:
    folder.mkdir(parents=True)
    lines = ["userID\titemID\tx_label"]
    for label, split in enumerate((TRAIN, VALID, TEST)):
        for user, items in split.items():
            lines += [f"{user}\t{item}\t{label}" for item in items]
    lines += [f"{user}\t{item}\t0" for user, items in extra_train.items() for item in items]
    (folder / f"{folder.name}.inter").write_text("\n".join(lines) + "\n")
    return folder


def _train(data: Path, runs: Path):
    result = runner.invoke(
        app, ["train", "--data", str(data), "--model", "bpr", "--epochs", "1", "-q", "--out", str(runs)]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    return run_dir, result.output


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold")
    return _train(_write_dataset(root / "handcold", {}), root / "runs")


@pytest.fixture(scope="module")
def warm_only_run(tmp_path_factory):
    """The same data with one training row for each of items 6 and 7: no cold item."""
    root = tmp_path_factory.mktemp("warm")
    return _train(_write_dataset(root / "handwarm", {4: [6], 5: [7]}), root / "runs")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.strip()]


def test_summary_of_a_dataset_with_cold_items_gives_cold_and_warm_metrics_and_user_counts(cold_run):
    summary = _summary(cold_run[0])
    for key in ("test", "test_cold", "test_warm", "valid_cold", "valid_warm"):
        assert "recall@20" in summary[key], key
    assert summary["candidate_users"] == {
        "valid": {"evaluated": 3, "skipped": 0},
        "test": {"evaluated": 6, "skipped": 0},
        "valid_cold": {"evaluated": 1, "skipped": 2},
        "test_cold": {"evaluated": 2, "skipped": 4},
        "valid_warm": {"evaluated": 2, "skipped": 1},
        "test_warm": {"evaluated": 5, "skipped": 1},
    }
    # Two cold items and K=20: every cold test user finds its cold item.
    assert summary["test_cold"]["recall@20"] == 1.0


def test_summary_of_a_dataset_without_cold_items_has_only_the_all_item_metrics(warm_only_run):
    summary = _summary(warm_only_run[0])
    assert not any(key.endswith(("_cold", "_warm")) or key == "candidate_users" for key in summary)
    assert "candidate sets" not in warm_only_run[1] and "candidates" not in warm_only_run[1]


def test_train_prints_a_row_per_candidate_set_with_its_test_users(cold_run):
    output = cold_run[1]
    rows = _rows(output.split("test over each candidate set")[1])
    header = rows[1]
    assert header[:5] == ["run", "model", "candidates", "test", "users"]
    assert [(row[2], row[3]) for row in rows[3:]] == [("all", "6"), ("cold", "2"), ("warm", "5")]


def test_evaluate_with_cold_candidates_counts_evaluated_and_skipped_users(cold_run):
    result = runner.invoke(app, ["evaluate", str(cold_run[0]), "--candidates", "cold", "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, valid, test = (line.split(",") for line in result.output.splitlines())
    assert header[:4] == ["split", "candidates", "users", "skipped users"]
    assert valid[:4] == ["valid", "cold", "1", "2"] and test[:4] == ["test", "cold", "2", "4"]
    recall = header.index("recall@20")
    assert float(test[recall]) == pytest.approx(_summary(cold_run[0])["test_cold"]["recall@20"], abs=1e-4)


def test_evaluate_with_warm_candidates_matches_the_summary(cold_run):
    result = runner.invoke(app, ["evaluate", str(cold_run[0]), "--candidates", "warm", "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, _, test = (line.split(",") for line in result.output.splitlines())
    assert test[:4] == ["test", "warm", "5", "1"]
    ndcg = header.index("ndcg@10")
    assert float(test[ndcg]) == pytest.approx(_summary(cold_run[0])["test_warm"]["ndcg@10"], abs=1e-4)


def test_evaluate_with_all_candidates_prints_the_usual_table(cold_run):
    default = runner.invoke(app, ["evaluate", str(cold_run[0])])
    explicit = runner.invoke(app, ["evaluate", str(cold_run[0]), "--candidates", "all"])
    assert explicit.exit_code == 0 and explicit.output == default.output
    assert "candidates" not in default.output


def test_evaluate_cold_candidates_of_a_dataset_without_cold_items_says_how_to_get_them(warm_only_run):
    result = runner.invoke(app, ["evaluate", str(warm_only_run[0]), "--candidates", "cold"])
    assert result.exit_code == 2, result.output
    assert "has no cold items" in result.output and "--split cold-items" in result.output
    assert "Traceback" not in result.output


def test_evaluate_with_an_unknown_candidate_set_names_the_choices(cold_run):
    result = runner.invoke(app, ["evaluate", str(cold_run[0]), "--candidates", "hot"])
    assert result.exit_code == 2, result.output
    assert "all, cold, warm" in result.output


def test_valid_candidates_cold_stops_on_the_cold_valid_metric(tmp_path):
    data = _write_dataset(tmp_path / "handcold2", {})
    runs = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["train", "--data", str(data), "--model", "bpr", "--epochs", "2", "-q", "--out", str(runs)]
        + ["--set", "valid_candidates=cold"],
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    summary = _summary(run_dir)
    assert summary["valid_candidates"] == "cold"
    # The valid metrics that chose the best epoch are the cold ones.
    assert summary["valid"] == summary["valid_cold"]
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert history[summary["best_epoch"]]["valid"] == summary["valid_cold"]


def test_valid_candidates_cold_on_a_dataset_without_cold_items_is_refused_before_training(tmp_path):
    data = _write_dataset(tmp_path / "handwarm2", {4: [6], 5: [7]})
    result = runner.invoke(
        app,
        ["train", "--data", str(data), "--model", "bpr", "--epochs", "1", "-q", "--out", str(tmp_path / "runs")]
        + ["--set", "valid_candidates=cold"],
    )
    assert result.exit_code == 2 and "no cold items" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.fixture(scope="module")
def cold_content_run(tmp_path_factory):
    """The cold dataset with a content modality, VBPR for one epoch (default rule warm_neighbours)."""
    root = tmp_path_factory.mktemp("coldcontent")
    data = _write_dataset(root / "handcoldcontent", {})
    np.save(data / "genre_feat.npy", np.eye(8, 3, dtype=np.float32) + np.eye(8, 3, k=-5, dtype=np.float32))
    result = runner.invoke(
        app, ["train", "--data", str(data), "--model", "vbpr", "--epochs", "1", "-q", "--out", str(root / "runs")]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "runs").iterdir()
    return run_dir


def test_evaluate_with_the_runs_own_cold_item_rule_gives_the_runs_numbers(cold_content_run):
    plain = runner.invoke(app, ["evaluate", str(cold_content_run), "--candidates", "cold", "--format", "csv"])
    same = runner.invoke(
        app,
        [
            "evaluate",
            str(cold_content_run),
            "--candidates",
            "cold",
            "--format",
            "csv",
            "--cold-item-rule",
            "warm_neighbours",
        ],
    )
    other = runner.invoke(
        app, ["evaluate", str(cold_content_run), "--candidates", "cold", "--format", "csv", "--cold-item-rule", "none"]
    )
    assert plain.exit_code == same.exit_code == other.exit_code == 0, other.output
    assert plain.output == same.output
    assert _rows(other.output)[0] == _rows(plain.output)[0]  # same table, numbers of another rule


def test_evaluate_refuses_an_unknown_cold_item_rule_naming_the_choices(cold_content_run):
    result = runner.invoke(app, ["evaluate", str(cold_content_run), "--cold-item-rule", "nearest"])
    assert result.exit_code == 2
    assert (
        "--cold-item-rule" in result.output and "warm_neighbours" in result.output and "Traceback" not in result.output
    )


def test_evaluate_with_a_cold_item_rule_on_a_model_without_one_says_so(cold_run):
    result = runner.invoke(app, ["evaluate", str(cold_run[0]), "--cold-item-rule", "none"])
    assert result.exit_code == 2
    assert "bpr has no cold-item rule" in result.output


def test_evaluate_with_the_neighbours_norm_changes_only_cold_scores(cold_content_run):
    base = ["evaluate", str(cold_content_run), "--candidates", "warm", "--format", "csv"]
    warm_plain, warm_scaled = runner.invoke(app, base), runner.invoke(app, [*base, "--cold-item-norm", "neighbours"])
    assert warm_plain.exit_code == warm_scaled.exit_code == 0, warm_scaled.output
    assert warm_plain.output == warm_scaled.output  # warm-only rankings never see a cold vector
    bad = runner.invoke(app, [*base, "--cold-item-norm", "longest"])
    assert bad.exit_code == 2 and "--cold-item-norm" in bad.output and "neighbours" in bad.output
