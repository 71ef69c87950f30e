"""Training the same settings under several seeds: the group folder, its runs and aggregate.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sigerec.errors import SigerecError
from sigerec.training import runner
from sigerec.training.run_directory import RunDirectory
from sigerec.training.run_report import expand_run_folders, group_runs
from sigerec.training.seeds import AGGREGATE_FILE, parse_seeds


def _config(data, model="bpr", **overrides):
    return runner.resolve_config(model, str(data), overrides={"epochs": 2, **overrides})


@pytest.fixture
def two_seeds(tiny_dataset_dir, tmp_path):
    """BPR for 2 epochs under seeds 1 and 2: the group folder and its aggregate."""
    return runner.train_seeds(_config(tiny_dataset_dir), [1, 2], tmp_path / "runs")


def test_train_seeds_writes_one_run_folder_per_seed_inside_a_group_folder(two_seeds, tmp_path):
    group, aggregate = two_seeds
    assert group.parent == tmp_path / "runs" and group.name.startswith("bpr-tiny-seeds-")
    assert sorted(p.name for p in group.iterdir() if p.is_dir()) == ["seed-1", "seed-2"]
    for seed in (1, 2):
        summary = json.loads((group / f"seed-{seed}" / "summary.json").read_text())
        assert summary["seed"] == seed
        assert (group / f"seed-{seed}" / "test_per_user.csv").is_file()
    assert aggregate["model"] == "bpr" and aggregate["dataset"] == "tiny"
    assert aggregate["seeds"] == [1, 2] and aggregate["runs"] == ["seed-1", "seed-2"]


def test_aggregate_holds_numpys_mean_and_sample_std_of_the_seeds_summaries(two_seeds):
    group, aggregate = two_seeds
    summaries = [json.loads((group / name / "summary.json").read_text()) for name in aggregate["runs"]]
    for split in ("valid", "test"):
        assert set(aggregate[split]) == set(summaries[0][split])
        for metric, stats in aggregate[split].items():
            values = [s[split][metric] for s in summaries]
            assert stats["mean"] == pytest.approx(np.mean(values))
            assert stats["std"] == pytest.approx(np.std(values, ddof=1))
    assert aggregate["best_epoch"]["mean"] == pytest.approx(np.mean([s["best_epoch"] for s in summaries]))
    assert "ddof=1" in aggregate["std"]
    assert json.loads((group / AGGREGATE_FILE).read_text()) == aggregate


def test_each_seeds_run_is_the_run_that_seed_alone_trains(two_seeds, tiny_dataset_dir, tmp_path):
    group, _ = two_seeds
    _, alone = runner.train(_config(tiny_dataset_dir, seed=2), tmp_path / "alone")
    in_group = json.loads((group / "seed-2" / "summary.json").read_text())
    assert in_group["valid"] == alone["valid"] and in_group["test"] == alone["test"]


def test_more_seeds_later_train_only_the_seeds_the_group_lacks(two_seeds, tiny_dataset_dir, tmp_path):
    group, _ = two_seeds
    before = {seed: (group / f"seed-{seed}" / "summary.json").read_text() for seed in (1, 2)}
    same_group, aggregate = runner.extend_seeds(group, [1, 2, 3])
    assert same_group == group and aggregate["seeds"] == [1, 2, 3]
    assert all((group / f"seed-{seed}" / "summary.json").read_text() == before[seed] for seed in (1, 2))
    _, alone = runner.train(_config(tiny_dataset_dir, seed=3), tmp_path / "alone")
    added = json.loads((group / "seed-3" / "summary.json").read_text())
    assert added["valid"] == alone["valid"] and added["test"] == alone["test"]
    assert json.loads((group / AGGREGATE_FILE).read_text()) == aggregate
    assert len(group_runs(expand_run_folders([group]), ["recall@20"], "test")) == 1


def test_seeds_added_to_a_group_saved_by_an_older_version_show_its_settings(two_seeds):
    """A setting added since the group was saved is absent from its files; the new seed's file
    must not gain it, or `compare` would see two experiments in one group."""
    group, _ = two_seeds
    for seed in (1, 2):
        config = RunDirectory(group / f"seed-{seed}").read_config()
        del config["training"]["valid_candidates"]  # as written before that setting existed
        RunDirectory(group / f"seed-{seed}").write_config(config)
    runner.extend_seeds(group, [3])
    added = RunDirectory(group / "seed-3").read_config()
    assert "valid_candidates" not in added["training"] and added["training"]["seed"] == 3
    assert len(group_runs(expand_run_folders([group]), ["recall@20"], "test")) == 1


def test_one_seed_has_no_std(tiny_dataset_dir, tmp_path):
    _, aggregate = runner.train_seeds(_config(tiny_dataset_dir), [5], tmp_path)
    assert aggregate["test"]["recall@20"]["std"] is None


def test_a_refused_model_leaves_no_group_folder(tiny_dataset_dir, tmp_path):
    with pytest.raises(SigerecError, match="needs item content features"):
        runner.train_seeds(_config(tiny_dataset_dir, model="sige"), [1, 2], tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_parse_seeds_reads_a_comma_separated_list():
    assert parse_seeds("1, 2,3") == (1, 2, 3)


@pytest.mark.parametrize(("text", "fragment"), [("1,x", "'x' is not an integer"), ("1,2,1", "seed 1 is given twice")])
def test_parse_seeds_names_the_bad_entry(text, fragment):
    with pytest.raises(SigerecError, match=fragment):
        parse_seeds(text)
