"""`sigerec encode` on the command line: success path and bad input (exit code 2, no traceback)."""

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("sentence_transformers")

from sigerec.cli.main import app

runner = CliRunner()


def _run(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_encode_text_writes_features_and_reports_coverage(tiny_dataset_dir, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,title\n0,Baby monitor\n1,Nursing pillow\n2,\n")
    code, output = _run(
        "encode", "text", str(items), "--data", str(tiny_dataset_dir), "--id-col", "id", "--text-cols", "title", "-q"
    )
    assert code == 0, output
    assert "encoded 2" in output and "33.3% coverage" in output
    metadata = json.loads((tiny_dataset_dir / "text_feat.json").read_text())
    assert metadata["dim"] == 384 and metadata["mean_filled"] == 4
    code, output = _run("data", "stats", str(tiny_dataset_dir))
    assert "dim 384, coverage 33.3%" in output


@pytest.mark.parametrize(
    "content, options, expected",
    [
        ("id,title\n0,a\n", ["--id-col", "sku"], "no column 'sku'"),
        ("id,title\n0,a\n", ["--id-col", "id", "--text-cols", "titel"], "Did you mean 'title'"),
        ("id,title\nx7,a\n", ["--id-col", "id"], "line 2"),
        ("id,title\n99,a\n", ["--id-col", "id"], "no row's 'id' matches an item"),
    ],
)
def test_bad_item_files_are_explained_with_exit_code_2(tiny_dataset_dir, tmp_path, content, options, expected):
    items = tmp_path / "items.csv"
    items.write_text(content)
    options = options if "--text-cols" in options else [*options, "--text-cols", "title"]
    code, output = _run("encode", "text", str(items), "--data", str(tiny_dataset_dir), *options, "-q")
    assert code == 2 and expected in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("command", "columns", "missing_path_option"),
    [("text", ["--text-cols", "title"], "--model-path"), ("image", ["--image-col", "title"], "--images-root")],
)
def test_a_missing_model_or_images_folder_names_its_option(
    tiny_dataset_dir, tmp_path, command, columns, missing_path_option
):
    items = tmp_path / "items.csv"
    items.write_text("id,title\n0,a.png\n")
    options = ["--id-col", "id", *columns, missing_path_option, str(tmp_path / "nowhere")]
    code, output = _run("encode", command, str(items), "--data", str(tiny_dataset_dir), *options)
    assert code == 2 and missing_path_option in output


@pytest.mark.parametrize("command", ["text", "image"])
def test_help_shows_an_example(command):
    code, output = _run("encode", command, "--help")
    assert code == 0 and "Example" in output
