"""Grouping finished runs by settings and testing each group against the best one, on run
folders written by hand (config.yaml, summary.json and test_per_user.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sigerec.errors import SigerecError
from sigerec.evaluation.significance import holm, paired_wilcoxon
from sigerec.training.run_report import compare_groups, comparison_rows, expand_run_folders

USERS = list(range(8))


def make_run(
    folder: Path,
    model: str,
    seed: int,
    recall: list[float] | None,
    dataset: str = "tiny",
    reg_weight: float = 1e-4,
) -> Path:
    """A finished run whose users' test recall@20 is ``recall`` (None: no per-user file, as
    runs of an earlier sigerec) and whose summary holds its mean."""
    folder.mkdir(parents=True)
    config = {
        "model": model,
        "data": dataset,
        "training": {"seed": seed, "epochs": 2},
        "model_params": {"reg_weight": reg_weight},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    values = recall if recall is not None else [0.5] * len(USERS)
    summary = {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "best_epoch": 1,
        "epochs": 2,
        "train_seconds_per_epoch": 0.1,
        "eval_seconds": 0.1,
        "valid": {"recall@20": 0.5},
        "test": {"recall@20": float(np.mean(values))},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    if recall is not None:
        lines = ["user,recall@20"] + [f"{u},{v}" for u, v in zip(USERS, recall)]
        (folder / "test_per_user.csv").write_text("\n".join(lines) + "\n")
    return folder


# Per-user recall@20 of two seeds of "strong" (their mean is STRONG) and of two other models.
STRONG_SEED_1 = [1.0, 1.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.5]
STRONG_SEED_2 = [1.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.5, 0.5]
STRONG = [(a + b) / 2 for a, b in zip(STRONG_SEED_1, STRONG_SEED_2)]
WEAK = [0.0, 0.0, 0.5, 0.0, 0.5, 0.0, 0.0, 0.5]
MIDDLE = [1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.5, 0.0]


@pytest.fixture
def three_groups(tmp_path) -> list[Path]:
    return [
        make_run(tmp_path / "weak", "weak", 1, WEAK),
        make_run(tmp_path / "strong-1", "strong", 1, STRONG_SEED_1),
        make_run(tmp_path / "middle", "middle", 1, MIDDLE),
        make_run(tmp_path / "strong-2", "strong", 2, STRONG_SEED_2),
    ]


def test_runs_that_differ_only_in_their_seed_form_one_group_with_mean_and_sample_std(three_groups):
    comparison = compare_groups(three_groups, ["recall@20"])
    assert [(g.model, len(g.runs)) for g in comparison.groups] == [("weak", 1), ("strong", 2), ("middle", 1)]
    mean, std = comparison.summaries[1]["recall@20"]
    seed_means = [np.mean(STRONG_SEED_1), np.mean(STRONG_SEED_2)]
    assert mean == pytest.approx(np.mean(seed_means)) and std == pytest.approx(np.std(seed_means, ddof=1))
    assert comparison.summaries[0]["recall@20"][1] is None  # one run: no std


def test_other_settings_make_another_group(tmp_path):
    runs = [
        make_run(tmp_path / "a", "bpr", 1, WEAK),
        make_run(tmp_path / "b", "bpr", 2, WEAK, reg_weight=1e-3),
    ]
    comparison = compare_groups(runs, ["recall@20"])
    assert len(comparison.groups) == 2
    assert [row["settings"] for row in comparison_rows(comparison)] == ["reg_weight=0.0001", "reg_weight=0.001"]


def test_a_setting_missing_from_an_older_run_counts_at_its_default(tmp_path):
    """A run saved before ``reg_weight`` existed trained at its default: it joins the runs that
    state that default, and not those that changed it."""
    older = make_run(tmp_path / "older", "bpr", 1, WEAK)
    config = yaml.safe_load((older / "config.yaml").read_text())
    del config["model_params"]["reg_weight"]
    (older / "config.yaml").write_text(yaml.safe_dump(config))
    runs = [
        older,
        make_run(tmp_path / "newer", "bpr", 2, MIDDLE),
        make_run(tmp_path / "c", "bpr", 3, WEAK, reg_weight=1e-3),
    ]
    comparison = compare_groups(runs, ["recall@20"])
    assert [len(group.runs) for group in comparison.groups] == [2, 1]
    assert [row["settings"] for row in comparison_rows(comparison)] == ["reg_weight=0.0001", "reg_weight=0.001"]


def test_each_group_is_tested_against_the_best_over_users_averaged_over_seeds_holm_corrected(three_groups):
    comparison = compare_groups(three_groups, ["recall@20"])
    expected_weak, expected_middle = holm([paired_wilcoxon(STRONG, WEAK), paired_wilcoxon(STRONG, MIDDLE)])
    assert comparison.p_values == [pytest.approx(expected_weak), "best", pytest.approx(expected_middle)]


def test_a_group_alone_on_its_dataset_gets_no_p_value(tmp_path):
    runs = [make_run(tmp_path / "a", "bpr", 1, WEAK), make_run(tmp_path / "b", "bpr", 1, STRONG, dataset="other")]
    comparison = compare_groups(runs, ["recall@20"])
    assert not comparison.tested and comparison.p_values == [None, None]
    assert not any(column.startswith("p ") for column in comparison_rows(comparison)[0])


def test_runs_without_per_user_metrics_get_no_p_value_and_a_note_that_says_why(three_groups, tmp_path):
    older = make_run(tmp_path / "older", "older", 1, None)
    comparison = compare_groups([*three_groups, older], ["recall@20"])
    assert comparison.p_values[-1] == "n/a"
    assert isinstance(comparison.p_values[0], float)
    assert any("n/a" in note and "test_per_user.csv" in note for note in comparison.notes)


def test_valid_split_shows_no_p_values_and_says_why(three_groups):
    comparison = compare_groups(three_groups, ["recall@20"], split="valid")
    assert not comparison.tested
    assert any("test split only" in note for note in comparison.notes)


def test_a_run_given_twice_counts_once(three_groups):
    comparison = compare_groups([three_groups[0], three_groups[0]], ["recall@20"])
    assert len(comparison.groups[0].runs) == 1


def test_csv_rows_hold_mean_and_std_in_separate_columns_and_p_as_a_number(three_groups):
    rows = comparison_rows(compare_groups(three_groups, ["recall@20"]), style="csv")
    assert list(rows[1]) == [
        "model",
        "dataset",
        "settings",
        "runs",
        "test recall@20 mean",
        "test recall@20 std",
        "p (Holm) vs best recall@20",
    ]
    assert rows[0]["test recall@20 std"] == "" and rows[1]["p (Holm) vs best recall@20"] == ""
    assert 0 < float(rows[0]["p (Holm) vs best recall@20"]) <= 1


def test_text_rows_show_mean_plus_minus_std(three_groups):
    rows = comparison_rows(compare_groups(three_groups, ["recall@20"]))
    seed_means = [np.mean(STRONG_SEED_1), np.mean(STRONG_SEED_2)]
    assert rows[1]["test recall@20"] == f"{np.mean(seed_means):.4f} ± {np.std(seed_means, ddof=1):.4f}"
    assert rows[1]["p (Holm) vs best recall@20"] == "best"


def test_a_group_folder_stands_for_its_run_folders(tmp_path):
    group = tmp_path / "bpr-tiny-seeds-20260101-000000"
    runs = [make_run(group / f"seed-{seed}", "bpr", seed, WEAK) for seed in (1, 2)]
    (group / "aggregate.json").write_text("{}")
    single = make_run(tmp_path / "single", "bpr", 3, WEAK)
    assert expand_run_folders([group, single]) == [*runs, single]


def test_a_folder_without_runs_is_refused_by_name(tmp_path):
    with pytest.raises(SigerecError, match="neither a run folder"):
        expand_run_folders([tmp_path])
