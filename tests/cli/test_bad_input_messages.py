"""Through the command line, damaged input gives one line 'error: ...' naming the file and exit
code 2, never a traceback: ``data stats``, ``data import``, ``train`` (at start-up, before any
run folder exists), ``tune --space`` and ``encode kg``. One case per kind of damage the loader
properties (tests/data/test_loader_properties.py and friends) once found to crash or mislead.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app

runner = CliRunner()
GOOD_INTER = b"userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n0\t2\t2\n1\t0\t0\n1\t1\t1\n1\t2\t2\n"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# name -> files of a damaged dataset folder, and what its message must say
DAMAGED_FOLDERS = {
    "extra_value_on_first_row": ({"shop.inter": b"userID\titemID\tx_label\n5\t0\t1\t0\n1\t1\t0\t2\n"}, "line 2"),
    "cut_gzip": ({"shop.inter.gz": gzip.compress(GOOD_INTER)[:30]}, "a .gz name needs gzip content"),
    "huge_id": ({"shop.inter": GOOD_INTER + b"2147483646\t0\t0\n"}, "line 8, column 'userID'"),
    "true_as_id": ({"shop.inter": GOOD_INTER + b"True\t0\t0\n"}, "line 8, column 'userID'"),
    "cr_line_ends": ({"shop.inter": GOOD_INTER.replace(b"\n", b"\r") + b"x\t0\t0\r"}, "line 8"),
    "empty_npy": ({"shop.inter": GOOD_INTER, "image_feat.npy": b""}, "image_feat.npy"),
    "cut_npy": ({"shop.inter": GOOD_INTER, "image_feat.npy": npy(np.ones((3, 4)))[:-5]}, "cut short"),
    "npz_as_npy": ({"shop.inter": GOOD_INTER, "image_feat.npy": b"PK\x03\x04" + b"\x00" * 40}, "image_feat.npy"),
    "complex_features": ({"shop.inter": GOOD_INTER, "image_feat.npy": npy(np.ones((3, 2), complex))}, "complex"),
    "zero_columns": ({"shop.inter": GOOD_INTER, "image_feat.npy": npy(np.ones((3, 0)))}, "0 columns"),
    "beyond_float32": ({"shop.inter": GOOD_INTER, "image_feat.npy": npy(np.full((3, 2), 1e300))}, "float32"),
}


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    folder = root / "shop"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def assert_one_line_error(result, *must_contain: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and not [line for line in lines if not line.startswith(("error:", "warning:"))], lines
    for text in must_contain:
        assert text in errors[0], errors[0]


@pytest.mark.parametrize("damage", sorted(DAMAGED_FOLDERS))
def test_data_stats_of_a_damaged_folder_prints_one_line_naming_the_file(tmp_path, damage):
    files, expected = DAMAGED_FOLDERS[damage]
    folder = write_folder(tmp_path, files)
    assert_one_line_error(runner.invoke(app, ["data", "stats", str(folder)]), str(folder), expected)


@pytest.mark.parametrize("damage", ["extra_value_on_first_row", "huge_id", "cut_npy"])
def test_train_refuses_a_damaged_folder_at_start_up_with_one_line(tmp_path, damage):
    files, expected = DAMAGED_FOLDERS[damage]
    folder = write_folder(tmp_path, files)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", "--data", str(folder), "--model", "lightgcn", "--out", str(runs), "-q"])
    assert_one_line_error(result, str(folder), expected)
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder exists


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"epochs: 1\nepochs: 2\n", "line 2, column 1: not valid YAML (the key 'epochs' is given twice)"),
        (b"epochs: .inf\n", "setting 'epochs' must be an integer"),
        (b"seed: 1 # caf\xe9\n", "not valid YAML text"),
        (b"[" * 5000, "nested too deeply"),
    ],
)
def test_train_refuses_a_bad_config_file_with_one_line(tmp_path, content, expected):
    folder = write_folder(tmp_path, {"shop.inter": GOOD_INTER})
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    runs = tmp_path / "runs"
    args = ["train", "--data", str(folder), "--model", "lightgcn", "--config", str(config), "--out", str(runs), "-q"]
    assert_one_line_error(runner.invoke(app, args), str(config), expected)


def test_tune_refuses_a_search_space_with_an_infinite_bound_with_one_line(tmp_path):
    folder = write_folder(tmp_path, {"shop.inter": GOOD_INTER})
    space = tmp_path / "space.yaml"
    space.write_text("reg_weight: {low: 1.0e-6, high: .inf, log: true}\n")
    args = ["tune", "--data", str(folder), "--model", "lightgcn", "--space", str(space), "--out", str(tmp_path / "t")]
    assert_one_line_error(runner.invoke(app, args), str(space), "finite numbers")


def test_tune_refuses_a_model_the_data_cannot_train_with_one_line(tmp_path):
    """Refused in the first trial: Optuna's report of the failed trial (a traceback) is dropped."""
    folder = write_folder(tmp_path, {"shop.inter": GOOD_INTER})
    args = ["tune", "--data", str(folder), "--model", "sige", "--trials", "1", "--out", str(tmp_path / "t")]
    assert_one_line_error(runner.invoke(app, args), "SIGE needs item content features")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("ratings.csv", b"user,item\nu1,i1,extra\nu1,i2\n", "line 2: 3 values separated by comma"),
        ("ratings.csv.gz", gzip.compress(b"user,item\n" + b"u,i\n" * 50)[:25], "needs complete gzip content"),
        ("ratings.jsonl", b'{"user": ' + b"[" * 100_000 + b"]" * 100_000 + b', "item": "i"}\n', "line 1"),
    ],
)
def test_data_import_of_a_damaged_file_prints_one_line_naming_it(tmp_path, name, content, expected):
    source = tmp_path / name
    source.write_bytes(content)
    args = ["data", "import", str(source), "--user-col", "user", "--item-col", "item", "--out", str(tmp_path / "o")]
    assert_one_line_error(runner.invoke(app, args), str(source), expected)


def test_encode_kg_with_an_item_map_of_another_length_prints_one_line(tmp_path):
    folder = write_folder(tmp_path, {"shop.inter": GOOD_INTER, "i_id_mapping.csv": b"raw_id\titemID\na\t0\nb\t1\n"})
    kg = tmp_path / "g.kg"
    kg.write_text("head_id:token\trelation_id:token\ttail_id:token\ne0\tr\tx\ne1\tr\tx\n")
    link = tmp_path / "g.link"
    link.write_text("item_id:token\tentity_id:token\na\te0\nb\te1\n")
    result = runner.invoke(app, ["encode", "kg", str(kg), "--link", str(link), "--data", str(folder)])
    assert_one_line_error(result, "i_id_mapping.csv", "maps 2 item ids but the dataset has 3 items")
