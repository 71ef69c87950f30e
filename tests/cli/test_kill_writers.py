"""Every command that writes, killed with SIGKILL mid-way, leaves its old output or its whole new one,
and the same command run again finishes the job.

Each command runs as its own process (``python -m sigerec.cli.main``) with
``SIGEREC_KILL_AT_WRITE_STEP=N``: it sends itself SIGKILL at its N-th write step
(``sigerec.safe_write``). What a kill can leave on disk depends only on which write steps
finished, so killing at steps spread over the run (while a folder is built, after it is built,
after it is swapped in, between epochs, while the summary is written) reaches every state a kill
at a random moment can. A clean run of the same command, here in the test's process with the
step log on, counts the steps and gives the output to compare with.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sigerec.cli.main import app
from sigerec.safe_write import ASIDE_MARK, KILL_STEP_VARIABLE, STAGING_MARK, STEP_LOG_VARIABLE, TEMPORARY_MARK
from sigerec.serving.model_folder import ModelFolder

# Values a rerun writes differently from a clean run: when it ran and how long it took.
VOLATILE = {"created", "timing", "train_seconds_per_epoch", "eval_seconds", "test_eval_seconds", "peak_memory_mb"}


def sigerec(*args) -> None:
    """The command in this process (clean runs and reruns); it must succeed."""
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output


def write_steps(monkeypatch, log: Path, *args) -> list[str]:
    """Every write step of a clean run of the command (which runs here): "<label> <path>"."""
    monkeypatch.setenv(STEP_LOG_VARIABLE, str(log))
    sigerec(*args)
    monkeypatch.delenv(STEP_LOG_VARIABLE)
    return [" ".join(line.split("\t")[1:]) for line in log.read_text().splitlines()]


def kill_at(step: int, *args) -> None:
    """Run the command as its own process and let it SIGKILL itself at write step ``step``."""
    environment = {**os.environ, KILL_STEP_VARIABLE: str(step)}
    environment.pop(STEP_LOG_VARIABLE, None)
    command = [sys.executable, "-m", "sigerec.cli.main", *map(str, args)]
    result = subprocess.run(command, check=False, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr


def step_of(steps: list[str], label: str, inside: str = "", nth: int = 0) -> int:
    """The number (from 1) of the ``nth`` step called ``label`` whose path holds ``inside``:
    ``step_of(steps, "swapped")`` is the step after which a folder was swapped in."""
    found = [i for i, step in enumerate(steps, 1) if step.startswith(label + " ") and inside in step]
    return found[nth]


def files(folder: Path, skip: str | None = None) -> dict[str, object]:
    """Every file under ``folder`` by relative path: bytes, or JSON without its volatile values."""
    contents = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if not path.is_file() or (skip and name.startswith(skip)):
            continue
        contents[name] = (
            _without_volatile(json.loads(path.read_text())) if path.suffix == ".json" else path.read_bytes()
        )
    return contents


def _without_volatile(value):
    if isinstance(value, dict):
        return {key: _without_volatile(item) for key, item in value.items() if key not in VOLATILE}
    return value


def leftovers(*roots: Path) -> list[Path]:
    """Temporary files and staging folders of killed writers under ``roots``."""
    marks = (TEMPORARY_MARK, STAGING_MARK, ASIDE_MARK)
    return [p for root in roots for p in root.rglob("*") if any(mark in p.name for mark in marks)]


def copy(folder: Path, destination: Path) -> Path:
    shutil.copytree(folder, destination, symlinks=True)
    return destination


# --- data import, data synth, encode: a dataset folder replaced in one step --------------------


def _interactions(path: Path, users: int, items: int, seed: int) -> Path:
    rows = [(f"u{u}", f"i{(u * seed + k) % items}") for u in range(users) for k in range(5)]
    path.write_text("user,item\n" + "".join(f"{user},{item}\n" for user, item in rows))
    return path


def test_data_import_killed_at_any_step_leaves_the_old_or_the_new_dataset(tmp_path, monkeypatch):
    command = ["data", "import", _interactions(tmp_path / "new.csv", 12, 9, 2), "--user-col", "user"]
    command += ["--item-col", "item", "--force", "--out"]
    base = tmp_path / "base" / "shop"
    sigerec(
        "data",
        "import",
        _interactions(tmp_path / "old.csv", 10, 7, 1),
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--out",
        base,
    )
    (base / "notes.txt").write_text("kept")
    old = files(base)
    clean = copy(base, tmp_path / "clean" / "shop")
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *command, clean)
    new = files(clean)
    assert new != old and new["notes.txt"] == b"kept"
    for step in range(1, len(steps) + 1):  # every write step
        out = copy(base, tmp_path / f"kill-{step}" / "shop")
        kill_at(step, *command, out)
        assert files(out) in (old, new)
        sigerec(*command, out)
        assert files(out) == new and not leftovers(out.parent)


def test_data_synth_killed_at_any_step_leaves_the_old_or_the_new_dataset(tmp_path, monkeypatch):
    size = ["--users", "40", "--items", "30", "--interactions", "400", "--modalities", "text:4"]
    base = tmp_path / "base" / "synth-x"
    sigerec("data", "synth", *size, "--seed", "1", "--out", base)
    (base / "notes.txt").write_text("kept")
    old = files(base)
    command = ["data", "synth", *size, "--seed", "2", "--parquet", "--force", "--out"]
    clean = copy(base, tmp_path / "clean" / "synth-x")
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *command, clean)
    new = files(clean)
    assert new != old and "interactions.parquet" in new and new["notes.txt"] == b"kept"
    for step in range(1, len(steps) + 1):  # every write step
        out = copy(base, tmp_path / f"kill-{step}" / "synth-x")
        kill_at(step, *command, out)
        assert files(out) in (old, new)
        sigerec(*command, out)
        assert files(out) == new and not leftovers(out.parent)


def test_encode_killed_at_any_step_leaves_the_old_or_the_new_features(tiny_dataset_dir, tmp_path, monkeypatch):
    (tmp_path / "old.tsv").write_text("item\tgenres\n0\ta b\n1\tb\n")
    (tmp_path / "new.tsv").write_text("item\tgenres\n0\ta\n2\tb c\n3\tc\n")
    base = copy(tiny_dataset_dir, tmp_path / "base" / "tiny")
    encode = ["encode", "categories", "--id-col", "item", "--category-col", "genres", "-q", "--data"]
    sigerec(*encode, base, tmp_path / "old.tsv")
    old = files(base)
    clean = copy(base, tmp_path / "clean" / "tiny")
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *encode, clean, tmp_path / "new.tsv")
    new = files(clean)
    assert new["category_feat.npy"] != old["category_feat.npy"]
    for step in range(1, len(steps) + 1):  # every write step
        data = copy(base, tmp_path / f"kill-{step}" / "tiny")
        kill_at(step, *encode, data, tmp_path / "new.tsv")
        # The encoder's batch cache (resume) may be there; the feature files are all old or all new.
        assert files(data, skip=".sigerec-cache") in (old, new)
        sigerec(*encode, data, tmp_path / "new.tsv")
        assert files(data) == new and not leftovers(data.parent)


# --- train: run folders resume from their last checkpoint --------------------------------------


@pytest.fixture
def content_dataset(tmp_path) -> Path:
    """A small synthetic dataset with text features, so training builds (and caches) item graphs."""
    folder = tmp_path / "content" / "synth-content"
    size = ["--users", "40", "--items", "30", "--interactions", "400", "--modalities", "text:8"]
    sigerec("data", "synth", *size, "--seed", "3", "--out", folder)
    return folder


def _run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def _result(run: Path) -> tuple:
    """What a run computed: its summary and every epoch's losses and valid metrics."""
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summary = files(run)["summary.json"]
    return summary, [(r["loss"], r.get("valid")) for r in metrics], (run / "test_per_user.csv").read_bytes()


def test_train_killed_at_any_step_is_finished_by_resume(content_dataset, tmp_path, monkeypatch):
    """FREEDOM caches its item graph in the dataset folder, then trains 3 epochs; kills fall while
    the graph is written, between epochs and while the summary is written."""

    def command(name: str) -> tuple[list, Path, Path]:
        data, runs = copy(content_dataset, tmp_path / name / "data"), tmp_path / name / "runs"
        return ["train", "--data", data, "--model", "freedom", "--epochs", "3", "-q", "--out", runs], data, runs

    clean_command, _, clean_runs = command("clean")
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *clean_command)
    (clean_run,) = _run_folders(clean_runs)
    graph_write = step_of(steps, "writing", inside="graphs/text-knn")
    for step in (graph_write, len(steps) // 2, step_of(steps, "writing", inside="summary.json")):
        arguments, data, runs = command(f"kill-{step}")
        kill_at(step, *arguments)
        run_folders = _run_folders(runs)
        assert len(run_folders) <= 1  # no folder yet, or one that resume can finish
        if run_folders:
            assert (run_folders[0] / "config.yaml").is_file() and not (run_folders[0] / "summary.json").exists()
            sigerec("train", "--resume", run_folders[0], "-q")
        else:
            sigerec(*arguments)
        (run,) = _run_folders(runs)
        assert _result(run) == _result(clean_run)
        assert not leftovers(runs, data)


def test_train_seeds_killed_at_any_step_is_finished_by_resuming_the_group(tiny_dataset_dir, tmp_path, monkeypatch):
    def command(name: str) -> tuple[list, Path]:
        runs = tmp_path / name
        return [
            "train",
            "--data",
            tiny_dataset_dir,
            "--model",
            "bpr",
            "--epochs",
            "2",
            "--seeds",
            "2,1",
            "-q",
            "--out",
            runs,
        ], runs

    clean_command, clean_runs = command("clean")
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *clean_command)
    (clean_group,) = _run_folders(clean_runs)
    seed_2_trains = step_of(steps, "replaced", inside="seed-2/metrics.jsonl")
    for step in (seed_2_trains, step_of(steps, "writing", inside="aggregate.json")):
        arguments, runs = command(f"kill-{step}")
        kill_at(step, *arguments)
        (group,) = _run_folders(runs)
        assert sorted(p.name for p in _run_folders(group)) == ["seed-1", "seed-2"]
        assert not (group / "aggregate.json").exists()
        sigerec("train", "--resume", group, "-q")
        assert files(group)["aggregate.json"] == files(clean_group)["aggregate.json"]
        assert not leftovers(runs)


# --- export: a model folder swapped in whole ---------------------------------------------------


@pytest.fixture(scope="module")
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


def test_export_killed_at_any_step_leaves_the_old_or_the_new_model_folder(two_trained_runs, tmp_path, monkeypatch):
    run_a, run_b = two_trained_runs
    base = tmp_path / "base" / "model"
    sigerec("export", run_a, "--out", base)
    old = files(base)
    command = ["export", run_b, "--force", "--out"]
    clean = copy(base, tmp_path / "clean" / "model")
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *command, clean)
    new = files(clean)
    assert new["item_vectors.npy"] != old["item_vectors.npy"]
    for step in range(1, len(steps)):  # every write step (after the last one the export is done)
        out = copy(base, tmp_path / f"kill-{step}" / "model")
        kill_at(step, *command, out)
        assert files(out) in (old, new)
        ModelFolder.load(out)  # whole and consistent: every checksum matches
        sigerec(*command, out)
        assert files(out) == new and not leftovers(out.parent)


# --- tune: the study continues, interrupted trials resume their run folders --------------------


def _trials(out: Path) -> list[dict]:
    """trials.csv without run folder names (they carry the time) and trial numbers (a rerun
    trial is a new Optuna trial)."""
    with open(out / "trials.csv") as handle:
        return [{k: v for k, v in row.items() if k not in {"run", "trial"}} for row in csv.DictReader(handle)]


def test_tune_killed_at_any_step_continues_to_the_results_of_an_uninterrupted_search(
    tiny_dataset_dir, tmp_path, monkeypatch
):
    space = tmp_path / "space.yaml"
    space.write_text("n_layers: {choices: [1, 2], source: test}\n")
    command = ["tune", "--data", tiny_dataset_dir, "--model", "lightgcn", "--space", space, "--trials", "2"]
    command += ["--set", "epochs=2", "--out"]
    steps = write_steps(monkeypatch, tmp_path / "steps.log", *command, tmp_path / "clean")
    second_trial_trains = step_of(steps, "replaced", inside="last.pt", nth=2)
    for step in (second_trial_trains, step_of(steps, "writing", inside="trials.csv")):
        out = tmp_path / f"kill-{step}"
        kill_at(step, *command, out)
        assert not (out / "best.yaml").exists()
        sigerec(*command, out)
        assert _trials(out) == _trials(tmp_path / "clean")
        assert yaml.safe_load((out / "best.yaml").read_text()) == yaml.safe_load(
            (tmp_path / "clean" / "best.yaml").read_text()
        )
        assert not leftovers(out)
