import json
import os
import signal
import subprocess
import sys
import time

import pytest

from model_checks import InterruptAfter
from sigerec.errors import SigerecError
from sigerec.training import runner
from sigerec.training.run_directory import BEST_CHECKPOINT, LAST_CHECKPOINT, RunDirectory


def _config(data, model="lightgcn", **overrides):
    settings = {"epochs": 6, "stopping_step": 2, "train_batch_size": 512, **overrides}
    return runner.resolve_config(model, str(data), overrides=settings)


def test_run_folder_holds_config_metrics_checkpoints_and_summary(baby_subset_dir, tmp_path):
    run, summary = runner.train(_config(baby_subset_dir, epochs=3), tmp_path)
    for name in ("config.yaml", "metrics.jsonl", "summary.json", BEST_CHECKPOINT, LAST_CHECKPOINT):
        assert run.file(name).exists(), name
    records = run.read_metrics()
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert {"loss", "train_seconds", "eval_seconds", "valid"} <= set(records[0])
    for key in ("model", "dataset", "seed", "best_epoch", "epochs", "train_seconds_per_epoch", "eval_seconds"):
        assert key in summary
    assert summary["model"] == "lightgcn" and summary["dataset"] == "babysub" and summary["epochs"] == 3
    assert set(summary["test"]) >= {"recall@20", "ndcg@20", "precision@5", "map@50", "hit@10"}
    assert summary["valid"] == records[summary["best_epoch"]]["valid"]


def test_same_seed_gives_identical_metrics(baby_subset_dir, tmp_path):
    _, first = runner.train(_config(baby_subset_dir, model="bpr", seed=3), tmp_path / "a")
    _, second = runner.train(_config(baby_subset_dir, model="bpr", seed=3), tmp_path / "b")
    _, other = runner.train(_config(baby_subset_dir, model="bpr", seed=4), tmp_path / "c")
    assert first["valid"] == second["valid"] and first["test"] == second["test"]
    assert first["test"] != other["test"]


def test_early_stopping_stops_after_stopping_step_evaluations_without_improvement(baby_subset_dir, tmp_path):
    config = _config(baby_subset_dir, model="bpr", epochs=200, stopping_step=1, learning_rate=0.05)
    _, summary = runner.train(config, tmp_path)
    assert summary["stopped_early"]
    assert summary["epochs"] == summary["best_epoch"] + 3  # the best epoch, then 2 (> stopping_step) worse


def test_interrupted_run_resumes_to_the_same_metrics(baby_subset_dir, tmp_path):
    config = _config(baby_subset_dir, stopping_step=20)
    _, uninterrupted = runner.train(config, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        runner.train(config, tmp_path / "cut", progress=InterruptAfter(2))
    (cut_run,) = list((tmp_path / "cut").iterdir())
    assert not (cut_run / "summary.json").exists()
    _, resumed = runner.resume(cut_run)
    assert resumed["test"] == uninterrupted["test"]
    assert resumed["valid"] == uninterrupted["valid"]
    assert resumed["best_epoch"] == uninterrupted["best_epoch"]
    losses = [r["loss"] for r in RunDirectory(cut_run).read_metrics()]
    assert len(losses) == 6


@pytest.mark.slow
def test_run_killed_by_sigkill_resumes_from_its_last_checkpoint(baby_subset_dir, tmp_path):
    command = [sys.executable, "-m", "sigerec.cli.main", "train", "--data", str(baby_subset_dir), "--model", "bpr"]
    command += ["--epochs", "12", "--set", "stopping_step=50", "--quiet", "--out"]
    subprocess.run(command + [str(tmp_path / "full")], check=True, capture_output=True)
    process = subprocess.Popen(command + [str(tmp_path / "cut")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cut").glob("*/checkpoints/last.pt")):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (cut_run,) = list((tmp_path / "cut").iterdir())
    assert not (cut_run / "summary.json").exists()
    subprocess.run(
        [sys.executable, "-m", "sigerec.cli.main", "train", "--resume", str(cut_run), "--quiet"],
        check=True,
        capture_output=True,
    )
    (full_run,) = list((tmp_path / "full").iterdir())
    full = json.loads((full_run / "summary.json").read_text())
    resumed = json.loads((cut_run / "summary.json").read_text())
    assert resumed["test"] == full["test"] and resumed["best_epoch"] == full["best_epoch"]


def test_nan_loss_aborts_with_a_clear_error(baby_subset_dir, tmp_path):
    with pytest.raises(SigerecError, match="loss became"):
        runner.train(_config(baby_subset_dir, model="bpr", learning_rate=1e30, epochs=3), tmp_path)
