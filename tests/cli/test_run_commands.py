"""The ``sigerec`` run commands through the command line: train, evaluate, compare, models.

Every bad input ends with exit code 2 and one ``error:`` message that names the problem,
never a traceback. Training uses BPR for 1-2 epochs on the first 400 Baby users.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_split_of_training_items
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


def test_compare_per_run_as_markdown_prints_a_pipe_table_with_one_row_per_run(trained):
    run_dir = trained[0]
    result = invoke("compare", run_dir, run_dir, "--format", "markdown", "--per-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("| run | model | dataset | test recall@10")
    assert set(lines[1]) <= {"|", "-"}
    assert lines[2:] == [lines[2]] * 2 and lines[2].startswith(f"| {run_dir.name} | bpr | babysub |")


def test_compare_per_run_as_csv_prints_a_header_and_one_line_per_run(trained):
    run_dir = trained[0]
    result = invoke("compare", run_dir, run_dir, "--format", "csv", "--per-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("run,model,dataset,test recall@10,")
    assert len(lines) == 3 and lines[1].startswith(f"{run_dir.name},bpr,babysub,")
    assert all(line.count(",") == lines[0].count(",") for line in lines)


# --- several seeds and significance --------------------------------------------------------


@pytest.fixture(scope="module")
def seed_groups(baby_subset_dir, tmp_path_factory):
    """Group folders of BPR and LightGCN, each trained under seeds 1 and 2 (2 epochs), and the
    output of the command that trained BPR's."""
    runs = tmp_path_factory.mktemp("seed-runs")
    outputs = {}
    for model in ("bpr", "lightgcn"):
        result = invoke(
            "train", "--data", baby_subset_dir, "--model", model, "--epochs", "2", "--seeds", "1,2", "-q", "--out", runs
        )
        assert result.exit_code == 0, result.output
        outputs[model] = result.output
    bpr_group, lightgcn_group = (next(runs.glob(f"{model}-babysub-seeds-*")) for model in ("bpr", "lightgcn"))
    return bpr_group, lightgcn_group, outputs["bpr"]


def test_train_with_seeds_writes_a_run_folder_per_seed_and_the_aggregate(seed_groups):
    bpr_group, _, output = seed_groups
    assert sorted(p.name for p in bpr_group.iterdir()) == ["aggregate.json", "seed-1", "seed-2"]
    assert (bpr_group / "seed-2" / "summary.json").is_file()
    assert f"group folder: {bpr_group}" in output
    test_row = next(line for line in output.splitlines() if line.startswith("test "))
    assert "±" in test_row


def test_compare_of_two_group_folders_as_markdown_shows_mean_std_and_a_p_value(seed_groups):
    bpr_group, lightgcn_group, _ = seed_groups
    result = invoke("compare", bpr_group, lightgcn_group, "--format", "markdown", "--metrics", "recall@20,ndcg@20")
    assert result.exit_code == 0, result.output
    header, _, *rows = result.output.splitlines()[:4]
    assert header == (
        "| model | dataset | settings | runs | test recall@20 | test ndcg@20 | p (Holm) vs best recall@20 |"
    )
    assert [row.split(" | ")[0] for row in rows] == ["| bpr", "| lightgcn"]
    assert all(" ± " in row and row.split(" | ")[3] == "2" for row in rows)
    p_cells = [row.rstrip(" |").rsplit("| ", 1)[-1] for row in rows]
    assert p_cells.count("best") == 1
    assert 0 < float(next(cell for cell in p_cells if cell != "best")) <= 1
    assert "paired Wilcoxon signed-rank test over the test users of recall@20" in result.output


def test_compare_as_csv_puts_mean_and_std_in_columns_and_notes_on_stderr(seed_groups):
    result = invoke("compare", *seed_groups[:2], "--format", "csv", "--metrics", "recall@20")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header == "model,dataset,settings,runs,test recall@20 mean,test recall@20 std,p (Holm) vs best recall@20"
    assert len(rows) == 2 and all(row.count(",") == header.count(",") for row in rows)
    assert "Holm" in result.stderr


def test_compare_without_per_user_metrics_says_why_there_is_no_p_value(seed_groups, tmp_path):
    bpr_group, lightgcn_group, _ = seed_groups
    older = Path(shutil.copytree(bpr_group / "seed-1", tmp_path / "older"))
    (older / "test_per_user.csv").unlink()
    result = invoke("compare", lightgcn_group, older, "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "test_per_user.csv" in result.output and "n/a" in result.output


def test_compare_per_run_of_a_group_folder_lists_each_seeds_run(seed_groups):
    result = invoke("compare", seed_groups[0], "--per-run", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert [line.split(",")[0] for line in result.output.splitlines()[1:]] == ["seed-1", "seed-2"]


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


def test_data_on_which_every_user_has_every_item_is_refused_not_trained_on_silently(tmp_path):
    """No negative item exists, so BPR-style training has no step to take: say so, train nothing."""
    data = write_split_of_training_items(tmp_path / "tiny", {u: range(4) for u in range(6)})
    result = invoke("train", "--data", data, "--model", "bpr", "--epochs", "1", "--out", tmp_path / "runs")
    assert_usage_error(result, "nothing to train on", "with every item that occurs in training (4)")
    assert not (tmp_path / "runs").exists()


def test_users_with_every_item_are_named_as_left_out_of_training(tmp_path):
    data = write_split_of_training_items(tmp_path / "tiny", {0: range(4), 1: range(2), 2: range(1, 3)})
    result = invoke("train", "--data", data, "--model", "bpr", "--epochs", "1", "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 user(s) interacted in training with every item that occurs in training (4)" in text
    assert "training leaves out their 4 pairs" in text


def test_tune_names_the_users_left_out_of_training_once_per_search(tmp_path):
    data = write_split_of_training_items(tmp_path / "tiny", {0: range(4), 1: range(2), 2: range(1, 3)})
    search = ["--model", "lightgcn", "--trials", "3", "--set", "epochs=1", "--out", tmp_path / "t"]
    result = invoke("tune", "--data", data, *search)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "t" / "runs").iterdir())) >= 2  # several trials trained, so several prepares
    text = " ".join(result.output.split())
    assert text.count("training leaves out their 4 pairs") == 1


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


@pytest.mark.parametrize("other", [["--seed", "3"], ["--resume", "somewhere"]], ids=["seed", "resume"])
def test_seeds_with_seed_or_resume_is_refused(baby_subset_dir, tmp_path, other):
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--seeds", "1,2", *other, "--out", tmp_path)
    assert_usage_error(result, "--seeds trains one run per seed")
    assert not list(tmp_path.iterdir())


def test_seeds_that_are_not_integers_are_named(baby_subset_dir, tmp_path):
    result = invoke("train", "--data", baby_subset_dir, "--model", "bpr", "--seeds", "1,two", "--out", tmp_path)
    assert_usage_error(result, "'two' is not an integer")


def test_compare_of_a_folder_without_runs_says_so(tmp_path):
    assert_usage_error(invoke("compare", tmp_path), "neither a run folder", "group folder")


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


def test_error_messages_print_brackets_as_text_not_markup(tmp_path):
    from sigerec.cli.errors import report_errors
    from sigerec.errors import SigerecError

    @report_errors
    def failing():
        raise SigerecError("install the extra: pip install 'sigerec[ray]'")

    import typer

    app_with_error = typer.Typer()
    app_with_error.command()(failing)
    result = runner.invoke(app_with_error, [])
    assert result.exit_code == 2 and "pip install 'sigerec[ray]'" in result.output
