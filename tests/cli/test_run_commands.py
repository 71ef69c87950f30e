"""The ``sigerec`` run commands through the command line: train, evaluate, compare, models.

Every bad input ends with exit code 2 and one ``error:`` message that names the problem,
never a traceback. Training uses BPR for 1-2 epochs on the first 400 Baby users.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(arg) for arg in args])


def assert_usage_error(result, *fragments: str) -> None:
    """Exit code 2, an ``error:`` line holding every fragment, and no traceback."""
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    for fragment in fragments:
        assert fragment in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def trained(baby_subset_dir, tmp_path_factory):
    """One finished BPR run (2 epochs) and the output of the command that trained it."""
    runs = tmp_path_factory.mktemp("runs")
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--epochs", "2", "--quiet", "--out", runs)
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    return run_dir, result.output


@pytest.fixture
def finished_run(trained, tmp_path) -> Path:
    """A private copy of the finished run, free to change."""
    return Path(shutil.copytree(trained[0], tmp_path / trained[0].name))


# --- models ------------------------------------------------------------------------------


def test_models_lists_each_registered_model_on_its_own_line():
    result = invoke("models")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    assert "bpr" in names and "lightgcn" in names
    assert len(names) == len(set(names))


# --- train, evaluate, compare ------------------------------------------------------------


def test_train_writes_a_run_folder_with_config_metrics_checkpoints_and_summary(trained):
    run_dir, _ = trained
    assert run_dir.name.startswith("bpr-babysub-")
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run_dir / name).is_file(), name
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_train_prints_the_run_folder_and_a_table_of_test_metrics(trained):
    run_dir, output = trained
    assert f"run folder: {run_dir}" in output
    header = next(line for line in output.splitlines() if line.split()[:2] == ["run", "model"])
    assert "test recall@20" in header and "test ndcg@20" in header
    assert any(line.startswith(run_dir.name) for line in output.splitlines())


def test_evaluate_prints_one_row_for_valid_and_one_for_test(trained):
    result = invoke("evaluate", trained[0])
    assert result.exit_code == 0, result.output
    first_cells = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    assert first_cells[0] == "split" and first_cells[2:] == ["valid", "test"]
    assert "recall@20" in result.output.splitlines()[0]


def test_compare_as_markdown_prints_a_pipe_table_with_one_row_per_run(trained):
    run_dir = trained[0]
    result = invoke("compare", run_dir, run_dir, "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("| run | model | dataset | test recall@10")
    assert set(lines[1]) <= {"|", "-"}
    assert lines[2:] == [lines[2]] * 2 and lines[2].startswith(f"| {run_dir.name} | bpr | babysub |")


def test_compare_as_csv_prints_a_header_and_one_line_per_run(trained):
    run_dir = trained[0]
    result = invoke("compare", run_dir, run_dir, "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("run,model,dataset,test recall@10,")
    assert len(lines) == 3 and lines[1].startswith(f"{run_dir.name},bpr,babysub,")
    assert all(line.count(",") == lines[0].count(",") for line in lines)


def test_resume_of_a_finished_run_exits_0_without_training_again(finished_run):
    metrics_before = (finished_run / "metrics.jsonl").read_text()
    summary_before = (finished_run / "summary.json").read_text()
    result = invoke("train", "--resume", finished_run, "--quiet")
    assert result.exit_code == 0, result.output
    assert (finished_run / "metrics.jsonl").read_text() == metrics_before
    assert (finished_run / "summary.json").read_text() == summary_before
    assert "already finished" in result.output


def test_resume_of_a_run_stopped_before_its_summary_writes_the_summary(finished_run):
    # Killed after the last epoch but before the test evaluation: resume only finishes it.
    metrics_before = (finished_run / "metrics.jsonl").read_text()
    (finished_run / "summary.json").unlink()
    result = invoke("train", "--resume", finished_run, "--quiet")
    assert result.exit_code == 0, result.output
    assert (finished_run / "summary.json").is_file()
    assert (finished_run / "metrics.jsonl").read_text() == metrics_before


# --- bad input: exit code 2, a message, no traceback -------------------------------------


def test_unknown_model_suggests_the_closest_name(baby_subset_dir, tmp_path):
    result = invoke("train", "--data", baby_subset_dir, "--model", "lightgc", "--out", tmp_path)
    assert_usage_error(result, "unknown model 'lightgc'", "Did you mean 'lightgcn'?")


def test_misspelt_setting_suggests_the_known_one(baby_subset_dir, tmp_path):
    result = invoke("train", "--data", baby_subset_dir, "--model", "lightgcn", "--set", "n_layer=2", "--out", tmp_path)
    assert_usage_error(result, "unknown setting 'n_layer'", "Did you mean 'n_layers'?")


def test_a_model_that_needs_features_is_refused_before_any_run_folder_or_progress_bar(baby_subset_dir, tmp_path):
    result = invoke("train", "--data", baby_subset_dir, "--model", "sige", "--out", tmp_path / "runs")
    assert_usage_error(result, "SIGE needs item content features", "sigerec encode")
    assert not (tmp_path / "runs").exists() and "epoch" not in result.output


def test_an_out_of_range_setting_is_refused_with_the_range(baby_subset_dir, tmp_path):
    result = invoke(
        "train", "--data", baby_subset_dir, "--model", "sige", "--set", "infusion_alpha=2", "--out", tmp_path
    )
    assert_usage_error(result, "--set: setting 'infusion_alpha' must be in [0, 1], got 2.0.")


def test_set_without_equals_sign_asks_for_key_value(baby_subset_dir, tmp_path):
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--set", "foo", "--out", tmp_path)
    assert_usage_error(result, "--set 'foo'", "expected key=value")


def test_missing_data_folder_is_named(tmp_path):
    result = invoke("train", "--data", tmp_path / "nowhere", "--model", "bpr", "--out", tmp_path)
    assert_usage_error(result, str(tmp_path / "nowhere"), "no such dataset folder")
    assert not list(tmp_path.glob("bpr-*")), "no run folder is made for data that cannot load"


def test_train_without_data_or_model_says_which_options_it_needs():
    assert_usage_error(invoke("train", "--model", "bpr"), "give --data and --model")


def test_resume_of_a_folder_that_is_not_a_run_says_so(baby_subset_dir):
    result = invoke("train", "--resume", baby_subset_dir)
    assert_usage_error(result, str(baby_subset_dir), "not a run folder (no config.yaml)")


def test_compare_of_an_unfinished_run_suggests_resuming_it(finished_run):
    (finished_run / "summary.json").unlink()
    result = invoke("compare", finished_run)
    assert_usage_error(result, "the run has not finished", f"sigerec train --resume {finished_run}")


def test_compare_with_an_unknown_format_lists_the_known_ones(trained):
    result = invoke("compare", trained[0], "--format", "html")
    assert_usage_error(result, "unknown table format 'html'", "text, markdown or csv")


def test_evaluate_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    result = invoke("evaluate", tmp_path)
    assert_usage_error(result, str(tmp_path), "not a run folder")


def test_evaluate_with_an_unknown_checkpoint_names_the_choices(trained):
    result = invoke("evaluate", trained[0], "--checkpoint", "worst")
    assert_usage_error(result, "--checkpoint must be best or last")


def test_missing_config_file_is_named(baby_subset_dir, tmp_path):
    missing = tmp_path / "missing.yaml"
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--config", missing, "--out", tmp_path)
    assert_usage_error(result, str(missing), "cannot read the config file")


def test_invalid_yaml_config_is_named_with_the_parser_position(baby_subset_dir, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("n_layers: [1, 2\nepochs: 3\n")
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--config", config, "--out", tmp_path)
    assert_usage_error(result, str(config), "not valid YAML", "line")


def test_config_that_is_not_a_mapping_asks_for_key_value_settings(baby_subset_dir, tmp_path):
    config = tmp_path / "list.yaml"
    config.write_text("- n_layers\n- 2\n")
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--config", config, "--out", tmp_path)
    assert_usage_error(result, str(config), "expected a mapping of 'key: value' settings")


# --- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["train"], ["evaluate"], ["compare"], ["models"], ["demo"], ["data", "import"], ["data", "stats"]],
    ids=" ".join,
)
def test_every_command_help_exits_0_and_shows_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
